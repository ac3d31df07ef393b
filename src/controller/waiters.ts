/**
 * Lets a REST call wait until the loop has dealt with its generation. Wakes
 * on in-process record writes and on the store's record notifications (for a
 * standby replica whose leader is another process); after the notifications
 * were interrupted (`notifyAll`, on the watch's resync) every waiter reads
 * again. A poll is only the backstop for a notification lost some other way,
 * so it backs off (250 ms doubling to 4 s): at 250 ms flat, 1,000 REST calls
 * waiting out a fleet patch read their records 4,000 times a second, and the
 * profile of that bench put a third of the controller's CPU in those reads.
 */
export const FIRST_POLL_MS = 250;
export const MAX_POLL_MS = 4_000;

export class RecordWaiters {
  private readonly listeners = new Map<string, Set<() => void>>();

  notify(gameId: string): void {
    for (const wake of this.listeners.get(gameId) ?? []) wake();
  }

  /** Every waiter reads again: notifications may have been missed. */
  notifyAll(): void {
    for (const set of this.listeners.values()) for (const wake of set) wake();
  }

  /**
   * Calls `check` until it returns a value, or until `timeoutMs` passes
   * (then resolves undefined). `check` must read fresh state each time.
   */
  async waitFor<T>(gameId: string, check: () => Promise<T | undefined>, timeoutMs: number, pollMs = FIRST_POLL_MS): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    let wake: () => void = () => {};
    // A notification while `check` reads is not lost: the next read follows at once.
    let woken = false;
    const set = this.listeners.get(gameId) ?? new Set();
    this.listeners.set(gameId, set);
    const listener = () => {
      woken = true;
      wake();
    };
    set.add(listener);
    let nextPollMs = pollMs;
    try {
      for (;;) {
        woken = false;
        const value = await check();
        if (value !== undefined) return value;
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        if (woken) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(nextPollMs, left));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        nextPollMs = Math.min(nextPollMs * 2, Math.max(pollMs, MAX_POLL_MS));
      }
    } finally {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(gameId);
    }
  }
}
