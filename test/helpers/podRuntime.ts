/**
 * A Pod-shaped engine runtime, in memory: what the RuntimePort has to fit
 * besides Docker. A Pod has no separate pull, create and start (the kubelet
 * pulls and starts when the Pod is created), swaps its image in place,
 * restarts an exited engine itself, and streams its logs. Tests use it to
 * run the real controller code against a runtime that is not Docker.
 */
import { PassThrough } from "node:stream";
import type {
  EngineEventHandlers,
  EngineSpec,
  ImagePullPolicy,
  LogStreamOptions,
  ObservedContainer,
  EngineChange,
  RemoveOptions,
  RuntimePort,
} from "../../src/model/ports.js";
import { DECLARATIVE_VERBS } from "../../src/model/ports.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";

interface Pod {
  uid: string;
  spec: EngineSpec;
  /** Running until deleted; a stop scales the engine to zero and leaves the Pod object, as a Job would. */
  phase: "Running" | "Stopped";
  podIP: string | null;
  restarts: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  lastExitCode: number | null;
  /** Deleted, held by a finalizer (holdDeletions): it keeps its name until releaseDeletions(). */
  terminating?: boolean;
  /**
   * Removed as a replaced engine (`succeeded`) while held: once released only its last state stays (the real
   * runtime's tombstone on the Service), read as a stopped engine until a create supersedes it.
   */
  keepsLastState?: boolean;
  /** The log stream the kubelet serves; read continuously into `lines`. */
  logStream: PassThrough;
  lines: string[];
}

/** The smallest memory limit the stub API server admits, like a LimitRange would. */
const MIN_MEMORY_BYTES = 4 * 1024 * 1024;

export class StubPodRuntime implements RuntimePort {
  readonly name = "pods";
  readonly verbs = DECLARATIVE_VERBS;
  /** Calls received, in order, for assertions on what the controller asked for. */
  readonly calls: string[] = [];
  /** When set, the API server does not answer. */
  down = false;
  /** When set, a deleted Pod stays (terminating, its name taken) until releaseDeletions(), as a finalizer holds it. */
  holdDeletions = false;
  private readonly pods = new Map<string, Pod>();
  private readonly handlers = new Set<EngineEventHandlers>();
  private nextUid = 1;

  constructor(
    private readonly instance = "rtm",
    private readonly namespace = "galaxy-games",
  ) {}

  private answer(call: string): void {
    this.calls.push(call);
    if (this.down) throw new RuntimeFailure("unavailable", call, "the Kubernetes API server does not answer");
  }

  private byUid(uid: string): Pod | undefined {
    return [...this.pods.values()].find((p) => p.uid === uid);
  }

  private emit(pod: Pod, change: EngineChange, exitCode: number | null = null): void {
    for (const h of this.handlers) h.onEvent({ gameId: pod.spec.gameId, engineId: pod.uid, change, exitCode });
  }

  async ping(): Promise<void> {
    this.answer("ping");
  }

  /** The namespace exists when the API server answers in it. */
  async setupProblem(): Promise<string | null> {
    this.answer("setupProblem");
    return null;
  }

  async listManaged(): Promise<ObservedContainer[]> {
    this.answer("list");
    return [...this.pods.values()].map((p) => this.observed(p));
  }

  async listForGame(gameId: string): Promise<ObservedContainer[]> {
    this.answer("list");
    return [...this.pods.values()].filter((p) => p.spec.gameId === gameId).map((p) => this.observed(p));
  }

  /** The kubelet pulls when the Pod starts: nothing to do here, whatever the policy. */
  async ensureImage(_ref: string, _policy: ImagePullPolicy): Promise<void> {
    this.answer("ensureImage");
  }


  async create(spec: EngineSpec): Promise<string> {
    this.answer("create");
    const existing = this.pods.get(spec.name);
    if (existing?.keepsLastState && !existing.terminating) this.pods.delete(spec.name);
    if (this.pods.has(spec.name)) throw new RuntimeFailure("conflict", "create", `pods "${spec.name}" already exists`, { containerName: spec.name });
    if (spec.resources.memoryBytes < MIN_MEMORY_BYTES) {
      throw new RuntimeFailure("config_refused", "create", `Pod "${spec.name}" is invalid: memory limit below ${MIN_MEMORY_BYTES}`, { status: 422 });
    }
    const now = new Date();
    const pod: Pod = {
      uid: `pod-${this.nextUid++}`,
      spec,
      phase: "Running",
      podIP: `10.244.0.${this.nextUid}`,
      restarts: 0,
      createdAt: now,
      startedAt: now,
      finishedAt: null,
      lastExitCode: null,
      logStream: new PassThrough(),
      lines: [],
    };
    pod.logStream.setEncoding("utf8");
    pod.logStream.on("data", (chunk: string) => pod.lines.push(...chunk.split("\n").filter(Boolean)));
    this.pods.set(spec.name, pod);
    pod.logStream.write(`engine ${spec.imageRef} starting\n`);
    this.emit(pod, "created");
    this.emit(pod, "started");
    return pod.uid;
  }

  /** Created Pods are already running; starting a stopped one scales it back up. */
  async start(id: string): Promise<void> {
    this.answer("start");
    const pod = this.byUid(id);
    if (!pod) throw new RuntimeFailure("start_failed", "start", `no Pod ${id} to start`, { containerId: id });
    if (pod.phase === "Running") return;
    pod.phase = "Running";
    pod.startedAt = new Date();
    this.emit(pod, "started");
  }

  async updateImage(id: string, spec: EngineSpec): Promise<void> {
    this.answer("updateImage");
    const pod = this.byUid(id);
    if (!pod) throw new RuntimeFailure("not_found", "updateImage", `no Pod ${id}`, { containerId: id });
    pod.spec = { ...pod.spec, imageRef: spec.imageRef, generation: spec.generation, configHash: spec.configHash };
    pod.restarts++;
    pod.logStream.write(`engine ${spec.imageRef} starting\n`);
  }

  async stop(id: string): Promise<void> {
    this.answer("stop");
    const pod = this.byUid(id);
    if (!pod || pod.phase === "Stopped") return;
    pod.phase = "Stopped";
    pod.finishedAt = new Date();
    pod.lastExitCode = 0;
    this.emit(pod, "exited", 0);
      }

  async remove(id: string, options?: RemoveOptions): Promise<void> {
    this.answer("remove");
    const pod = this.byUid(id);
    if (!pod) return;
    if (this.holdDeletions) {
      pod.terminating = true;
      pod.keepsLastState = options?.succeeded ?? false;
      pod.phase = "Stopped";
      pod.finishedAt ??= new Date();
      return;
    }
    this.pods.delete(pod.spec.name);
    pod.logStream.end();
    this.emit(pod, "removed");
  }

  /** The finalizer goes: every held Pod is gone. */
  releaseDeletions(): void {
    this.holdDeletions = false;
    for (const pod of [...this.pods.values()].filter((p) => p.terminating)) {
      pod.terminating = false;
      if (pod.keepsLastState) continue;
      this.pods.delete(pod.spec.name);
      pod.logStream.end();
      this.emit(pod, "removed");
    }
  }

  /** The engine in `id` exits with `code`; the kubelet starts it again at once. */
  crash(id: string, code: number): void {
    const pod = this.byUid(id);
    if (!pod) throw new Error(`no Pod ${id}`);
    pod.lastExitCode = code;
    pod.finishedAt = new Date();
    this.emit(pod, "exited", code);
    pod.restarts++;
    pod.startedAt = new Date();
    this.emit(pod, "started");
  }

  watchEvents(handlers: EngineEventHandlers): () => void {
    this.handlers.add(handlers);
    return () => void this.handlers.delete(handlers);
  }

  /** The last lines as text: what a test asserts on. */
  async logs(id: string, tail: number): Promise<string> {
    this.answer("logs");
    const pod = this.byUid(id);
    if (!pod) throw new RuntimeFailure("not_found", "logs", `no Pod ${id}`, { containerId: id });
    return pod.lines.slice(-tail).join("\n");
  }

  /** As the kubelet serves `pods/log?tailLines=&follow=`: the stored lines, then (following) new output until the Pod ends. */
  async logStream(id: string, options: LogStreamOptions): Promise<AsyncIterable<Buffer>> {
    this.answer("logs");
    const pod = this.byUid(id);
    if (!pod) throw new RuntimeFailure("not_found", "logs", `no Pod ${id}`, { containerId: id });
    const backlog = pod.lines.slice(-options.tail).map((l) => Buffer.from(`${l}\n`));
    if (!options.follow || pod.logStream.writableEnded) return (async function* () {
      yield* backlog;
    })();
    const live = new PassThrough();
    const forward = (chunk: string) => live.write(chunk);
    const finish = () => {
      pod.logStream.off("data", forward);
      pod.logStream.off("end", finish);
      live.end();
    };
    pod.logStream.on("data", forward);
    pod.logStream.on("end", finish);
    options.signal.addEventListener("abort", finish, { once: true });
    return (async function* () {
      yield* backlog;
      for await (const chunk of live as AsyncIterable<Buffer>) yield chunk;
    })();
  }

  probeAddress(engine: ObservedContainer): string | null {
    const pod = this.byUid(engine.id);
    return pod?.phase === "Running" && pod.podIP ? `${pod.podIP}:8080` : null;
  }

  /** The Pod as the controller sees any engine. Its address is the Pod IP, not a published port. */
  private observed(p: Pod): ObservedContainer {
    const running = p.phase === "Running";
    return {
      id: p.uid,
      name: p.spec.name,
      gameId: p.spec.gameId,
      instance: this.instance,
      generation: p.spec.generation,
      imageRef: p.spec.imageRef,
      restartToken: p.spec.restartToken,
      configHash: p.spec.configHash,
      phase: running ? "running" : "exited",
      restarting: false,
      exitCode: running ? null : p.lastExitCode,
      oomKilled: false,
      createdAt: p.createdAt,
      startedAt: p.startedAt,
      finishedAt: p.finishedAt,
      publishedPort: null,
      networkAddresses: running && p.podIP ? { [this.namespace]: p.podIP } : {},
      // This stub reports neither its own restarts nor readiness: the controller probes and counts.
      restartCount: null,
      ready: null,
      restartPolicy: null,
      lostPlacement: null,
      problem: null,
      terminating: p.terminating ?? false,
    };
  }
}
