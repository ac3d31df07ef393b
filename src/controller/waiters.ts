/**
 * Lets a REST call wait until the loop has dealt with its generation. Wakes
 * on in-process record writes and on the store's record notifications (for a
 * standby replica whose leader is another process), with a poll as backstop.
 */
export class RecordWaiters {
  private readonly listeners = new Map<string, Set<() => void>>();

  notify(gameId: string): void {
    for (const wake of this.listeners.get(gameId) ?? []) wake();
  }

  /**
   * Calls `check` until it returns a value, or until `timeoutMs` passes
   * (then resolves undefined). `check` must read fresh state each time.
   */
  async waitFor<T>(gameId: string, check: () => Promise<T | undefined>, timeoutMs: number, pollMs = 250): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    let wake: () => void = () => {};
    const set = this.listeners.get(gameId) ?? new Set();
    this.listeners.set(gameId, set);
    const listener = () => wake();
    set.add(listener);
    try {
      for (;;) {
        const value = await check();
        if (value !== undefined) return value;
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(pollMs, left));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(gameId);
    }
  }
}
