/**
 * The Kubernetes mirror (GameRuntime statuses and Events) as a leader
 * runnable. Its writers start on their own; what this adds is the flush on
 * step-down: the Manager stops it after the workers that feed it and before
 * the lease is released, so the next leader starts from what this one did.
 * A thin wrapper: the writers' insides are theirs.
 */

/** Anything that can write out what it still owes, giving up at its own deadline. */
export interface Flushable {
  flush(): Promise<void>;
}

/** The shape of the Manager's Runnable (src/controller/runnables/runnable.ts), which app.ts adds it as. */
export interface MirrorRunnable {
  readonly name: string;
  readonly needsLeadership: true;
  start(): void;
  stop(): Promise<void>;
}

export function kubernetesMirrorRunnable(writers: { status: Flushable; events: Flushable }): MirrorRunnable {
  return {
    name: "kubernetes status and event writers",
    needsLeadership: true,
    start: () => undefined,
    stop: async () => {
      await Promise.all([writers.status.flush(), writers.events.flush()]);
    },
  };
}
