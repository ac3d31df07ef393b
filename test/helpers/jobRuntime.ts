/**
 * A third engine runtime, in memory, shaped like a Nomad job: what the
 * runtime port has to fit besides Docker and Pods, with no controller change.
 * It is declarative: a job is registered (create) and the scheduler places an
 * allocation that runs it when the test calls `schedule()`; an update
 * (updateImage) registers a new job version, which replaces the allocation
 * (a new engine id, as Nomad's destructive updates do); the client restarts
 * a failed task itself and counts it; a stop deregisters the job but keeps
 * it listed as dead until it is purged (remove).
 */
import { DECLARATIVE_VERBS, type EngineChange, type EngineEventHandlers, type EngineSpec, type ObservedContainer, type RuntimePort } from "../../src/model/ports.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";

interface Job {
  spec: EngineSpec;
  allocId: string;
  status: "pending" | "running" | "dead";
  restarts: number;
  exitCode: number | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export class StubJobRuntime implements RuntimePort {
  readonly name = "jobs";
  readonly verbs = DECLARATIVE_VERBS;
  /** Calls received, in order ("register g1 galaxy/engine:1.0.0", "update alloc-1 …", …). */
  readonly calls: string[] = [];
  private readonly jobs = new Map<string, Job>();
  private readonly handlers = new Set<EngineEventHandlers>();
  private nextAlloc = 1;

  constructor(
    private readonly instance = "rtm",
    private readonly clock: () => Date = () => new Date(),
  ) {}

  private byAlloc(id: string): Job | undefined {
    return [...this.jobs.values()].find((j) => j.allocId === id);
  }

  private emit(job: Job, change: EngineChange): void {
    for (const h of this.handlers) h.onEvent({ gameId: job.spec.gameId, engineId: job.allocId, change, exitCode: job.exitCode });
  }

  /** The scheduler places every pending allocation, which starts running. */
  schedule(): void {
    for (const job of this.jobs.values()) {
      if (job.status !== "pending") continue;
      Object.assign(job, { status: "running", startedAt: this.clock(), exitCode: null });
      this.emit(job, "started");
    }
  }

  /** The game's task exits with `code`; the client restarts it in the same allocation and counts the restart. */
  crash(gameId: string, code: number): void {
    const job = [...this.jobs.values()].find((j) => j.spec.gameId === gameId);
    if (!job) throw new Error(`no job for ${gameId}`);
    Object.assign(job, { exitCode: code, restarts: job.restarts + 1, startedAt: this.clock() });
    this.emit(job, "exited");
    this.emit(job, "started");
  }

  ping = async (): Promise<void> => void this.calls.push("ping");
  setupProblem = async (): Promise<string | null> => null;
  listManaged = async (): Promise<ObservedContainer[]> => [...this.jobs.values()].map((j) => this.observed(j));
  listForGame = async (gameId: string): Promise<ObservedContainer[]> => [...this.jobs.values()].filter((j) => j.spec.gameId === gameId).map((j) => this.observed(j));
  /** The client pulls when it places the allocation. */
  ensureImage = async (): Promise<void> => undefined;

  create = async (spec: EngineSpec): Promise<string> => {
    this.calls.push(`register ${spec.gameId} ${spec.imageRef}`);
    if (this.jobs.has(spec.name)) throw new RuntimeFailure("conflict", "register", `job "${spec.name}" already exists`, { containerName: spec.name });
    const job: Job = { spec, allocId: `alloc-${this.nextAlloc++}`, status: "pending", restarts: 0, exitCode: null, createdAt: this.clock(), startedAt: null, finishedAt: null };
    this.jobs.set(spec.name, job);
    this.emit(job, "created");
    return job.allocId;
  };

  /** A new job version: the allocation is replaced by a new, pending one. */
  updateImage = async (id: string, spec: EngineSpec): Promise<void> => {
    this.calls.push(`update ${id} ${spec.imageRef}`);
    const job = this.byAlloc(id) ?? this.jobs.get(spec.name);
    if (!job) throw new RuntimeFailure("not_found", "update", `no job runs ${id}`, { containerId: id });
    this.emit(job, "removed");
    Object.assign(job, { spec: { ...job.spec, imageRef: spec.imageRef, generation: spec.generation, configHash: spec.configHash, restartToken: spec.restartToken }, allocId: `alloc-${this.nextAlloc++}`, status: "pending", createdAt: this.clock(), startedAt: null, exitCode: null });
    this.emit(job, "created");
  };

  /** Nothing to start: the scheduler places what is registered. Fails for an allocation it does not know. */
  start = async (id: string): Promise<void> => {
    this.calls.push(`start ${id}`);
    if (!this.byAlloc(id)) throw new RuntimeFailure("start_failed", "start", `no allocation ${id}`, { containerId: id });
  };

  /** Deregisters the job; it stays listed, dead, until purged. */
  stop = async (id: string): Promise<void> => {
    this.calls.push(`stop ${id}`);
    const job = this.byAlloc(id);
    if (!job || job.status === "dead") return;
    Object.assign(job, { status: "dead", exitCode: 0, finishedAt: this.clock() });
    this.emit(job, "exited");
  };

  /** Purges the job. */
  remove = async (id: string): Promise<void> => {
    this.calls.push(`purge ${id}`);
    const job = this.byAlloc(id);
    if (!job) return;
    this.jobs.delete(job.spec.name);
    this.emit(job, "removed");
  };

  watchEvents = (handlers: EngineEventHandlers): (() => void) => {
    this.handlers.add(handlers);
    return () => void this.handlers.delete(handlers);
  };

  logStream = async (id: string): Promise<AsyncIterable<Buffer>> => {
    if (!this.byAlloc(id)) throw new RuntimeFailure("not_found", "logs", `no allocation ${id}`, { containerId: id });
    return (async function* () {})();
  };

  probeAddress = (engine: ObservedContainer): string | null => engine.networkAddresses.jobs ? `${engine.networkAddresses.jobs}:8080` : null;

  /** The allocation as the controller sees any engine; the client's health check is its readiness. */
  private observed(j: Job): ObservedContainer {
    const running = j.status === "running";
    return {
      id: j.allocId,
      name: j.spec.name,
      gameId: j.spec.gameId,
      instance: this.instance,
      generation: j.spec.generation,
      imageRef: j.spec.imageRef,
      restartToken: j.spec.restartToken,
      configHash: j.spec.configHash,
      phase: j.status === "pending" ? "pending" : running ? "running" : "exited",
      restarting: false,
      exitCode: j.status === "dead" ? j.exitCode : null,
      oomKilled: false,
      createdAt: j.createdAt,
      startedAt: j.startedAt,
      finishedAt: j.finishedAt,
      publishedPort: null,
      networkAddresses: running ? { jobs: `10.8.0.${j.allocId.slice("alloc-".length)}` } : {},
      restartCount: j.restarts,
      ready: running,
      restartPolicy: null,
      lostPlacement: null,
      problem: null,
    };
  }
}
