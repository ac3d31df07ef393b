/**
 * What the Manager hosts: one piece of the loop with a start and a stop
 * (controller-runtime's manager.Runnable with NeedLeaderElection). A group
 * starts its runnables in the order they were added and stops them in
 * reverse, so what starts later may rely on what started earlier (the
 * watches feed the workers' queue, the workers feed the status writer).
 */
import type { Logger } from "../../log.js";
import { withTimeout } from "../../model/timeout.js";

export interface RunnableContext {
  /**
   * Aborted when this run ends (step-down or shutdown), just before `stop`
   * is called: work already in flight (a probe pass, a resync) ends early.
   */
  readonly signal: AbortSignal;
}

export interface Runnable {
  /** For logs: which piece did not start or stop. */
  readonly name: string;
  /** True: runs only while this replica leads. False: runs for the life of the Manager. */
  readonly needsLeadership: boolean;
  /** Starts the work and resolves once it runs (not when it ends). Throwing means it did not start. */
  start(ctx: RunnableContext): Promise<void> | void;
  /** Stops the work; resolves when it has stopped. Called once after every successful start. */
  stop(): Promise<void>;
}

/** A runnable that did not start; the group stopped the ones it had started. */
export class RunnableStartError extends Error {
  override readonly name = "RunnableStartError";
  constructor(
    readonly runnable: string,
    override readonly cause: unknown,
  ) {
    super(`${runnable} did not start: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

class StopTimeout extends Error {
  override readonly name = "StopTimeout";
}

interface Running {
  runnable: Runnable;
  abort: AbortController;
}

/**
 * Runnables started and stopped together. A stop is bounded: past
 * `stopTimeoutMs` (for the whole group) a runnable still stopping is left to
 * finish on its own and the next ones are stopped without waiting. The next
 * start waits for such stragglers first, so one runnable never runs twice at
 * once (two workers pools would reconcile one game side by side).
 */
export class RunnableGroup {
  private readonly members: Runnable[] = [];
  private running: Running[] = [];
  private stragglers: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly logger: Logger,
    private readonly stopTimeoutMs: number,
  ) {}

  add(runnable: Runnable): void {
    this.members.push(runnable);
  }

  get names(): string[] {
    return this.members.map((r) => r.name);
  }

  get isRunning(): boolean {
    return this.running.length > 0;
  }

  /** Starts every runnable in order; when one fails, stops those already started and throws RunnableStartError. */
  async start(): Promise<void> {
    await this.stragglers;
    for (const runnable of this.members) {
      const abort = new AbortController();
      try {
        await runnable.start({ signal: abort.signal });
      } catch (err) {
        await this.stop();
        throw new RunnableStartError(runnable.name, err);
      }
      this.running.push({ runnable, abort });
    }
  }

  /** Stops the started runnables in reverse order within the group's bound. Never throws. */
  async stop(): Promise<void> {
    const toStop = this.running.reverse();
    this.running = [];
    const deadline = performance.now() + this.stopTimeoutMs;
    const late: Promise<unknown>[] = [];
    for (const { runnable, abort } of toStop) {
      abort.abort(new Error(`${runnable.name} stopping`));
      const stopping = Promise.resolve()
        .then(() => runnable.stop())
        .catch((err: unknown) => this.logger.error({ err, runnable: runnable.name }, "runnable failed to stop cleanly"));
      const left = deadline - performance.now();
      try {
        await withTimeout(stopping, left, () => new StopTimeout(`${runnable.name} did not stop within ${this.stopTimeoutMs} ms`));
      } catch (err) {
        this.logger.warn({ err, runnable: runnable.name }, "runnable still stopping past the bound; going on without it");
        late.push(stopping);
      }
    }
    if (late.length > 0) this.stragglers = Promise.all([this.stragglers, ...late]);
  }
}
