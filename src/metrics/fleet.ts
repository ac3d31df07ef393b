/**
 * Fleet gauges: counts over every record and declaration, read at scrape
 * time from the store and cached briefly, so a scrape storm costs one read.
 */
import type { Registry } from "prom-client";
import { CRASH_LOOP_THRESHOLD } from "../controller/planner.js";
import type { Declaration } from "../model/declaration.js";
import { mapLimit } from "../model/mapLimit.js";
import type { RuntimeRecord } from "../model/record.js";
import { RUNTIME_STATUSES } from "../model/status.js";
import { scrapeGauge } from "./gauge.js";

/** What the fleet gauges read at scrape time; the store and the declaration source satisfy it. */
export interface FleetSources {
  listRecords(): Promise<RuntimeRecord[]>;
  listGameIds(): Promise<string[]>;
  get(gameId: string): Promise<Declaration | null>;
}

export interface FleetSnapshot {
  byStatus: Map<string, number>;
  drift: number;
  crashLooping: number;
  degraded: number;
  /** Runtimes whose engine's node is lost (Pod runtime): reported, not recreated. */
  nodeLost: number;
}

const emptyFleet = (): FleetSnapshot => ({ byStatus: new Map(), drift: 0, crashLooping: 0, degraded: 0, nodeLost: 0 });

export class FleetGauges {
  private cache: { at: number; value: Promise<FleetSnapshot> } | null = null;
  private last: FleetSnapshot | null = null;

  constructor(
    registry: Registry,
    private readonly sources: () => FleetSources | null,
    private readonly now: () => number,
    private readonly cacheMs: number,
  ) {
    scrapeGauge(registry, { name: "rtmanager_runtimes", help: "Runtime records by observed status.", labelNames: ["status"] }, async (g) => {
      const fleet = await this.snapshot();
      for (const status of RUNTIME_STATUSES) g.set({ status }, fleet.byStatus.get(status) ?? 0);
    });
    const counts: [name: string, help: string, pick: (f: FleetSnapshot) => number][] = [
      [
        "rtmanager_runtimes_drift",
        "Runtimes whose record differs from the declaration: an older observed generation, another status, or no declaration at all.",
        (f) => f.drift,
      ],
      [
        "rtmanager_runtimes_crashlooping",
        `Runtimes declared running that the restart policy restarted ${CRASH_LOOP_THRESHOLD} or more times without a healthy period.`,
        (f) => f.crashLooping,
      ],
      [
        "rtmanager_runtimes_degraded",
        "Runtimes left degraded: a patch failed and so did its rollback (for example the previous image is gone); they stay so until a new declaration converges.",
        (f) => f.degraded,
      ],
      [
        "rtmanager_runtimes_node_lost",
        "Runtimes whose engine's node stopped answering the control plane (Pod runtime): reported, not recreated until the Node is deleted or tainted out-of-service, or the Pod is force-deleted.",
        (f) => f.nodeLost,
      ],
    ];
    for (const [name, help, pick] of counts) {
      scrapeGauge(registry, { name, help }, async (g) => {
        g.set(pick(await this.snapshot()));
      });
    }
  }

  private snapshot(): Promise<FleetSnapshot> {
    const now = this.now();
    if (this.cache && now - this.cache.at < this.cacheMs) return this.cache.value;
    const value = this.compute().then(
      (snapshot) => {
        this.last = snapshot;
        return snapshot;
      },
      // A store outage must not fail the whole scrape: serve the last good snapshot.
      () => this.last ?? emptyFleet(),
    );
    this.cache = { at: now, value };
    return value;
  }

  private async compute(): Promise<FleetSnapshot> {
    const sources = this.sources();
    if (!sources) return emptyFleet();
    const [records, ids] = await Promise.all([sources.listRecords(), sources.listGameIds()]);
    const declarations = new Map<string, Declaration | "invalid" | null>();
    await mapLimit(ids, 16, async (id) => {
      declarations.set(id, await sources.get(id).catch((): "invalid" => "invalid"));
    });
    return summarizeFleet(records, declarations);
  }
}

/** Fleet gauges from records and declarations; `invalid` is a stored declaration that fails the schema. */
export function summarizeFleet(records: RuntimeRecord[], declarations: Map<string, Declaration | "invalid" | null>): FleetSnapshot {
  const byStatus = new Map<string, number>();
  const recordOf = new Map<string, RuntimeRecord>();
  for (const r of records) {
    byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
    recordOf.set(r.gameId, r);
  }
  let drift = 0;
  let crashLooping = 0;
  const degraded = records.filter((r) => r.degraded).length;
  const nodeLost = records.filter((r) => r.lostNode !== null && r.status !== "removed").length;
  for (const gameId of new Set([...recordOf.keys(), ...declarations.keys()])) {
    const r = recordOf.get(gameId) ?? null;
    const d = declarations.get(gameId) ?? null;
    if (d === "invalid") {
      drift++;
      continue;
    }
    if (!d) {
      if (r && r.status !== "removed") drift++;
      continue;
    }
    if (!r) {
      if (d.desiredState !== "removed") drift++;
      continue;
    }
    if (r.observedGeneration < d.generation || r.status !== d.desiredState) drift++;
    if (d.desiredState === "running" && r.restartCount >= CRASH_LOOP_THRESHOLD) crashLooping++;
  }
  return { byStatus, drift, crashLooping, degraded, nodeLost };
}
