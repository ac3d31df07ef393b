/**
 * "Nothing happened" means something only once the loop has provably looked
 * again: these helpers read a running rtmanager's /metrics and wait until its
 * resync passes (rtmanager_resync_total) or engine probes
 * (rtmanager_probe_total) have moved on by at least `times`, instead of
 * sleeping a fixed time that a loaded machine may not honour.
 */
import type { ManagerHooks } from "../../src/controller/manager.js";
import { waitFor } from "./docker.js";

export type LoopCounter = "resync" | "probe";

const METRIC: Record<LoopCounter, string> = { resync: "rtmanager_resync_total", probe: "rtmanager_probe_total" };

/** Anything serving rtmanager's /metrics: a URL, or { baseUrl, token } when the server wants its bearer token. */
export type MetricsTarget = string | { baseUrl: string; token?: string };

/** Sum of one metric over all its label sets, as /metrics shows it now (0 when absent). */
export async function metricValue(target: MetricsTarget, name: string): Promise<number> {
  const { baseUrl, token } = typeof target === "string" ? { baseUrl: target, token: undefined } : target;
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000), headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
  let sum = 0;
  for (const line of (await res.text()).split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m && m[1] === name) sum += Number(m[2]);
  }
  return sum;
}

/** Sum of one loop counter over all its label sets. */
export function counterValue(target: MetricsTarget, counter: LoopCounter): Promise<number> {
  return metricValue(target, METRIC[counter]);
}

/**
 * Resolves once `counter` has moved on by at least `times` from now: with the
 * default (resync, twice) at least one whole resync pass began and ended
 * after the call, so a state checked afterwards is what the loop left, not a
 * moment before it looked. Bounded by `timeoutMs` (scaled by RTMANAGER_TEST_SLACK).
 */
export async function afterLoopLookedAgain(target: MetricsTarget, times = 2, counter: LoopCounter = "resync", timeoutMs = 60_000): Promise<void> {
  const from = await counterValue(target, counter);
  await waitFor(`${METRIC[counter]} to move ${times} times past ${from}`, async () => ((await counterValue(target, counter)) >= from + times ? true : undefined), timeoutMs, 100);
}

/**
 * The same for a Manager a test runs in-process without HTTP (startController):
 * pass `hooks` to it, then `await looks.lookedAgain()` before a "nothing happened" check.
 */
export class LoopLooks {
  resyncs = 0;
  readonly hooks: ManagerHooks = {
    onResync: () => {
      this.resyncs++;
    },
  };

  async lookedAgain(times = 2, timeoutMs = 60_000): Promise<void> {
    const from = this.resyncs;
    await waitFor(`${times} resync passes past ${from}`, () => this.resyncs >= from + times, timeoutMs, 50);
  }
}
