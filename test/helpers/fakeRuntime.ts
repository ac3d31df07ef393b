/**
 * One in-memory engine runtime for unit tests, typed against the port: a new
 * port member fails to compile here, not silently at run time in a test's
 * cast. Configurable by capability: `verbs` picks the imperative vocabulary
 * (Docker's: the controller pulls, creates, starts) or the declarative one (a
 * Pod's: created engines are accepted and start by themselves, an image is
 * swapped in place). Every method is an instance property, so a test
 * replaces one with a type-checked function of its own.
 */
import { IMPERATIVE_VERBS, isDeclarative, type EngineEventHandlers, type ObservedContainer, type RuntimePort, type RuntimeVerbs } from "../../src/model/ports.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { observedContainer } from "./fixtures.js";

export interface FakeRuntimeOptions {
  name?: string;
  /** The vocabulary the runtime offers; imperative (Docker's) unless told. */
  verbs?: RuntimeVerbs;
  /** The engines it reports: its own list, or a function returning the test's list (create and remove change that list in place). */
  engines?: ObservedContainer[] | (() => ObservedContainer[]);
  /** Images that can be had; absent: every image. ensureImage of another fails with image_not_found. */
  images?: Iterable<string>;
  /** When the fake stamps engines it creates. */
  now?: Date;
}

export class FakeRuntime implements RuntimePort {
  readonly name: string;
  readonly verbs: RuntimeVerbs;
  /** Calls received, in order ("create galaxy/engine:1.0.0", "start c1", …). */
  readonly calls: string[] = [];
  images: Set<string> | null;
  readonly handlers = new Set<EngineEventHandlers>();
  private readonly own: ObservedContainer[];
  private readonly source: (() => ObservedContainer[]) | null;
  private readonly now: Date;
  private seq = 0;

  constructor(options: FakeRuntimeOptions = {}) {
    this.name = options.name ?? "fake";
    this.verbs = options.verbs ?? IMPERATIVE_VERBS;
    this.own = Array.isArray(options.engines) ? options.engines : [];
    this.source = typeof options.engines === "function" ? options.engines : null;
    this.images = options.images ? new Set(options.images) : null;
    this.now = options.now ?? new Date();
    // Only a declarative runtime swaps an image in place.
    this.updateImage = isDeclarative(this.verbs) ? this.swapImage : undefined;
  }

  /** The engines as the fake holds them (the objects themselves: a test may change them). */
  get engines(): ObservedContainer[] {
    return this.source ? this.source() : this.own;
  }

  /** The engine `id`; throws when there is none. */
  engine(id: string): ObservedContainer {
    const c = this.engines.find((x) => x.id === id);
    if (!c) throw new Error(`no engine ${id}`);
    return c;
  }

  ping = async (): Promise<void> => void this.calls.push("ping");
  setupProblem = async (): Promise<string | null> => null;
  listManaged = async (): Promise<ObservedContainer[]> => this.engines.map((c) => ({ ...c }));
  listForGame = async (gameId: string): Promise<ObservedContainer[]> => this.engines.filter((c) => c.gameId === gameId).map((c) => ({ ...c }));

  ensureImage: RuntimePort["ensureImage"] = async (ref) => {
    this.calls.push(`ensureImage ${ref}`);
    if (this.images && !this.images.has(ref)) throw new RuntimeFailure("image_not_found", "pull", `image ${ref} not found`);
  };

  imageMetadata?: RuntimePort["imageMetadata"] = async () => ({});

  create: RuntimePort["create"] = async (spec) => {
    this.calls.push(`create ${spec.imageRef}`);
    const id = `c${++this.seq}`;
    // A declarative runtime accepted it and starts it itself; an imperative one waits for start().
    this.engines.push(observedContainer({ id, gameId: spec.gameId, name: spec.name, imageRef: spec.imageRef, generation: spec.generation, restartToken: spec.restartToken, configHash: spec.configHash, phase: "pending", startedAt: null }, this.now));
    return id;
  };

  updateImage?: RuntimePort["updateImage"];

  private readonly swapImage: NonNullable<RuntimePort["updateImage"]> = async (id, spec) => {
    this.calls.push(`updateImage ${id} ${spec.imageRef}`);
    Object.assign(this.engine(id), { imageRef: spec.imageRef, generation: spec.generation, configHash: spec.configHash });
  };

  start: RuntimePort["start"] = async (id) => {
    this.calls.push(`start ${id}`);
    const c = this.engine(id);
    Object.assign(c, { phase: "running", startedAt: this.now, exitCode: null });
  };

  stop: RuntimePort["stop"] = async (id) => {
    this.calls.push(`stop ${id}`);
    const c = this.engines.find((x) => x.id === id);
    if (c && c.phase === "running") Object.assign(c, { phase: "exited", exitCode: 0, finishedAt: this.now });
  };

  remove: RuntimePort["remove"] = async (id) => {
    this.calls.push(`remove ${id}`);
    const list = this.engines;
    const i = list.findIndex((x) => x.id === id);
    if (i >= 0) list.splice(i, 1);
  };

  watchEvents: RuntimePort["watchEvents"] = (handlers) => {
    this.handlers.add(handlers);
    return () => void this.handlers.delete(handlers);
  };

  logStream: RuntimePort["logStream"] = async (id) => {
    this.engine(id);
    return (async function* () {})();
  };

  probeAddress: RuntimePort["probeAddress"] = (engine) => (engine.phase === "running" ? `127.0.0.1:${engine.publishedPort ?? 8080}` : null);
}

/** A FakeRuntime with some members replaced, each checked against the port's type. */
export function fakeRuntime(options: FakeRuntimeOptions = {}, overrides: Partial<RuntimePort> = {}): FakeRuntime {
  return Object.assign(new FakeRuntime({ ...options, verbs: overrides.verbs ?? options.verbs }), overrides);
}
