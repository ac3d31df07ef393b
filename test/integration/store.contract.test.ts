import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Declaration, RuntimeSpec } from "../../src/model/declaration.js";
import { RtmError } from "../../src/model/errors.js";
import type { DeclarationWatch, WriteMeta } from "../../src/model/ports.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { derivedChecks } from "../../src/store/derivedSchema.js";
import { applyMigrations, MIGRATIONS } from "../../src/store/migrations.js";
import { openStore } from "../../src/store/open.js";
import { sqlState } from "../../src/store/sqlClient.js";
import type { SqlStore } from "../../src/store/sqlStore.js";
import { waitFor as pollUntil } from "../helpers/docker.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { slack } from "../helpers/slack.js";

interface Fixture {
  store: SqlStore;
  /** Closes nothing itself: the caller closes the old store first when the backend needs it. */
  reopen(): Promise<SqlStore>;
  dispose(): Promise<void>;
}

const meta = (opId = "op-test"): WriteMeta => ({ opId, opSource: "admin_rest" });

const spec = (gameId: string, extra: Partial<RuntimeSpec> = {}): RuntimeSpec => ({
  gameId,
  imageRef: "registry.local/galaxy/engine:1.4.2",
  desiredState: "running",
  restartPolicy: "on-failure",
  ...extra,
});

const put = (store: SqlStore, s: RuntimeSpec, opId?: string) => store.mutate(s.gameId, () => s, meta(opId));

async function expectRtmError(promise: Promise<unknown>, code: string): Promise<RtmError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RtmError);
  expect((err as RtmError).code).toBe(code);
  return err as RtmError;
}

async function sqlError(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, "plain SQL should have been refused").not.toBeNull();
  return sqlState(err);
}

function waitFor<T>(register: (resolve: (value: T) => void) => void, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** Collects watch callbacks and lets a test wait for the next one matching. */
class WatchProbe implements DeclarationWatch {
  changes: string[] = [];
  resyncs = 0;
  private waiters: { match: (gameId: string | null) => boolean; resolve: () => void }[] = [];

  onChange(gameId: string): void {
    this.changes.push(gameId);
    this.fire(gameId);
  }

  onResync(): void {
    this.resyncs += 1;
    this.fire(null);
  }

  private fire(value: string | null): void {
    const ready = this.waiters.filter((w) => w.match(value));
    this.waiters = this.waiters.filter((w) => !w.match(value));
    for (const w of ready) w.resolve();
  }

  next(match: (gameId: string | null) => boolean, timeoutMs: number, what: string): Promise<void> {
    return waitFor<void>((resolve) => this.waiters.push({ match, resolve: () => resolve() }), timeoutMs, what);
  }
}

function fullRecord(gameId: string): RuntimeRecord {
  return {
    gameId,
    status: "running",
    currentContainerId: "c0ffee",
    currentImageRef: "registry.local/galaxy/engine:1.4.2",
    engineEndpoint: `http://galaxy-game-${gameId}:8080`,
    statePath: `/var/lib/rtmanager/games/${gameId}`,
    dockerNetwork: "galaxy",
    startedAt: new Date("2026-01-02T03:04:05.678Z"),
    stoppedAt: null,
    removedAt: null,
    lastOpAt: new Date("2026-01-02T03:04:06.001Z"),
    createdAt: new Date("2026-01-01T00:00:00.000Z"),
    observedGeneration: 7,
    restartCount: 2,
    lastExitCode: 137,
    lastErrorCode: "container_start_failed",
    lastErrorMessage: "exit 137",
    lastErrorGeneration: 6,
    health: "healthy",
    consecutiveProbeFailures: 1,
    lastProbeAt: new Date("2026-01-02T03:05:00.123Z"),
    previousImageRef: "registry.local/galaxy/engine:1.4.1",
    rolloutStartedAt: new Date("2026-01-02T03:04:05.000Z"),
    degraded: true,
    heldGeneration: 7,
    lostNode: "node-3",
    lostNodeSince: new Date("2026-01-02T03:04:59.000Z"),
    updatedAt: new Date("2026-01-02T03:05:00.500Z"),
  };
}

const BAD_GAME_IDS: [string, string][] = [
  ["path traversal", "../x"],
  ["slash", "a/b"],
  ["empty", ""],
  ["300 characters", "x".repeat(300)],
  ["control character", "a\u0001b"],
  ["upper case", "UPPER"],
];

function describeStoreContract(name: string, open: () => Promise<Fixture>): void {
  describe(`store contract: ${name}`, () => {
    let fixture: Fixture;
    let store: SqlStore;

    beforeAll(async () => {
      fixture = await open();
      store = fixture.store;
    }, 60_000);

    afterAll(async () => {
      await store?.close();
      await fixture?.dispose();
    }, 60_000);

    beforeEach(async () => {
      await store.sql.exec(
        "TRUNCATE declarations, runtime_records, operation_log, runtime_events, leases RESTART IDENTITY",
      );
    });

    describe("migrations", () => {
      it("are idempotent: reopening applies nothing and keeps the data", async () => {
        await put(store, spec("keep-me"));
        await store.close();
        store = await fixture.reopen();
        expect((await store.get("keep-me"))?.imageRef).toBe("registry.local/galaxy/engine:1.4.2");
        const again = await applyMigrations(store.sql);
        expect(again).toEqual({ applied: [], derivedReapplied: false });
        const { rows } = await store.sql.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
        expect(rows.map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
      });

      it("re-derives CHECKs when the model changes without refusing old rows that no longer pass", async () => {
        // Stand-in for a model that narrowed: a row written under the old rules.
        await store.sql.exec(`
          ALTER TABLE declarations DROP CONSTRAINT declarations_desired_state_check;
          INSERT INTO declarations (game_id, image_ref, desired_state) VALUES ('old-rules', 'galaxy/engine:1.0.0', 'paused');
          UPDATE schema_derived SET checksum = 'from-an-older-build';`);
        expect(await applyMigrations(store.sql)).toEqual({ applied: [], derivedReapplied: true });
        await expectRtmError(store.get("old-rules"), "start_config_invalid");
        expect(
          await sqlError(store.sql.query("INSERT INTO declarations (game_id, image_ref, desired_state) VALUES ('new', 'galaxy/engine:1.0.0', 'paused')")),
        ).toBe("23514");
        await store.sql.query("DELETE FROM declarations WHERE game_id = 'old-rules'");
      });

      it("refuses to run on a declarations table that does not match the schema", async () => {
        await store.sql.exec("ALTER TABLE declarations ADD COLUMN surprise text");
        try {
          const err = await expectRtmError(applyMigrations(store.sql), "internal_error");
          expect(err.message).toContain("surprise");
        } finally {
          await store.sql.exec("ALTER TABLE declarations DROP COLUMN surprise");
        }
      });
    });

    describe("declarations", () => {
      it("put, get, list and delete", async () => {
        const created = await put(store, spec("g-1", { env: { MODE: "fast" }, resources: { memory: "512m", cpus: 1.5 } }), "op-1");
        expect(created.changed).toBe(true);
        expect(created.declaration).toMatchObject({
          gameId: "g-1",
          generation: 1,
          opId: "op-1",
          opSource: "admin_rest",
          env: { MODE: "fast" },
          resources: { memory: "512m", cpus: 1.5 },
        });
        await put(store, spec("g-2"));
        const got = (await store.get("g-1")) as Declaration;
        expect(got).toEqual(created.declaration);
        expect(got.createdAt).toBeInstanceOf(Date);
        expect(got.stopReason).toBeUndefined();
        expect(await store.listGameIds()).toEqual(["g-1", "g-2"]);
        expect(await store.get("nope")).toBeNull();
        expect(await store.delete("g-1")).toBe(true);
        expect(await store.delete("g-1")).toBe(false);
        expect(await store.listGameIds()).toEqual(["g-2"]);
      });

      it("bumps generation on a spec change through mutate, not on a same-spec write", async () => {
        await put(store, spec("gen", { restartToken: "a" }), "op-1");
        const same = await put(store, spec("gen", { restartToken: "a" }), "op-2");
        expect(same.changed).toBe(false);
        expect(same.declaration?.generation).toBe(1);
        expect(same.declaration?.opId).toBe("op-1");
        const changed = await put(store, spec("gen", { restartToken: "b" }), "op-3");
        expect(changed.changed).toBe(true);
        expect(changed.declaration?.generation).toBe(2);
        expect(changed.declaration?.opId).toBe("op-3");
        expect(changed.declaration!.updatedAt.getTime()).toBeGreaterThanOrEqual(same.declaration!.updatedAt.getTime());
      });

      it("bumps generation on a plain SQL UPDATE of the spec, not on a no-op UPDATE", async () => {
        await put(store, spec("sql-gen"), "op-1");
        await store.sql.query("UPDATE declarations SET image_ref = image_ref, restart_policy = restart_policy WHERE game_id = 'sql-gen'");
        expect((await store.get("sql-gen"))?.generation).toBe(1);
        await store.sql.query("UPDATE declarations SET image_ref = 'registry.local/galaxy/engine:1.4.3' WHERE game_id = 'sql-gen'");
        const after = await store.get("sql-gen");
        expect(after).toMatchObject({ generation: 2, imageRef: "registry.local/galaxy/engine:1.4.3", opId: null, opSource: "sql" });
        await store.sql.query(`UPDATE declarations SET env = '{"A": "1"}'::jsonb WHERE game_id = 'sql-gen'`);
        expect((await store.get("sql-gen"))?.generation).toBe(3);
        // jsonb compares by value: key order and spacing are no change.
        await store.sql.query(`UPDATE declarations SET env = '{ "A" : "1" }'::jsonb WHERE game_id = 'sql-gen'`);
        expect((await store.get("sql-gen"))?.generation).toBe(3);
      });

      it("a re-created game starts above the generation its record observed", async () => {
        await put(store, spec("again"));
        await store.putRecord({ ...fullRecord("again"), observedGeneration: 5 });
        await store.delete("again");
        const recreated = await put(store, spec("again"));
        expect(recreated.declaration?.generation).toBe(6);
      });

      // The 100 ms wake-up goal is a speed target: bench/converge.ts measures it (INSERT -> first Docker call).
      // Here: the INSERT alone wakes the watch, by notification (the store has no polling to fall back on).
      it("accepts a minimal plain SQL INSERT with defaults and wakes watch", async () => {
        const probe = new WatchProbe();
        const unwatch = await store.watch(probe);
        try {
          const woke = probe.next((g) => g === "plain", slack(2_000), "onChange(plain)");
          await store.sql.query("INSERT INTO declarations (game_id, image_ref) VALUES ('plain', 'galaxy/engine:2.0.0')");
          await woke;
          expect(await store.get("plain")).toMatchObject({
            gameId: "plain",
            imageRef: "galaxy/engine:2.0.0",
            desiredState: "running",
            restartPolicy: "on-failure",
            generation: 1,
            opId: null,
            opSource: "sql",
          });
          const deleted = probe.next((g) => g === "plain", 2_000, "onChange(plain) after delete");
          await store.sql.query("DELETE FROM declarations WHERE game_id = 'plain'");
          await deleted;
        } finally {
          await unwatch();
        }
      });

      it("notifies mutate writes and stays quiet on replays", async () => {
        const probe = new WatchProbe();
        const unwatch = await store.watch(probe);
        try {
          const first = probe.next((g) => g === "quiet", 2_000, "onChange(quiet)");
          await put(store, spec("quiet"));
          await first;
          await put(store, spec("quiet"));
          await store.mutate("quiet", () => null, meta());
          // A marker write proves the earlier (silent) ones had their chance to arrive.
          const marker = probe.next((g) => g === "marker", 2_000, "onChange(marker)");
          await put(store, spec("marker"));
          await marker;
          expect(probe.changes.filter((g) => g === "quiet")).toHaveLength(1);
        } finally {
          await unwatch();
        }
      });

      for (const [label, badId] of BAD_GAME_IDS) {
        it(`refuses game id (${label}) through mutate and through plain SQL`, async () => {
          let called = false;
          await expectRtmError(
            store.mutate(
              badId,
              () => {
                called = true;
                return spec(badId);
              },
              meta(),
            ),
            "invalid_request",
          );
          expect(called).toBe(false);
          expect(
            await sqlError(store.sql.query("INSERT INTO declarations (game_id, image_ref) VALUES ($1, 'galaxy/engine:1.0.0')", [badId])),
          ).toBe("23514");
          expect(
            await sqlError(
              store.sql.query(
                `INSERT INTO runtime_records (game_id, status, state_path, docker_network, last_op_at)
                 VALUES ($1, 'running', '/x', 'n', now())`,
                [badId],
              ),
            ),
          ).toBe("23514");
          expect(await store.listGameIds()).toEqual([]);
          const { rows } = await store.sql.query("SELECT 1 FROM runtime_records");
          expect(rows).toHaveLength(0);
        });
      }

      it("refuses a spec whose game id differs from the key, and a spec the schema refuses", async () => {
        await expectRtmError(store.mutate("one", () => spec("two"), meta()), "invalid_request");
        const err = await expectRtmError(
          store.mutate("one", () => spec("one", { imageRef: "Not A Ref" }), meta()),
          "invalid_request",
        );
        expect(err.message).toContain("imageRef");
        expect(await store.listGameIds()).toEqual([]);
      });

      it("refuses bad enums and bad image refs in plain SQL", async () => {
        const insert = (cols: string, values: string) =>
          store.sql.query(`INSERT INTO declarations (game_id, image_ref, ${cols}) VALUES ('enum', 'galaxy/engine:1.0.0', ${values})`);
        expect(await sqlError(insert("desired_state", "'paused'"))).toBe("23514");
        expect(await sqlError(insert("restart_policy", "'sometimes'"))).toBe("23514");
        expect(await sqlError(insert("stop_reason", "'bored'"))).toBe("23514");
        expect(await sqlError(insert("restart_token", `'${"t".repeat(65)}'`))).toBe("23514");
        expect(await sqlError(insert("env", `'["A"]'::jsonb`))).toBe("23514");
        expect(
          await sqlError(store.sql.query("INSERT INTO declarations (game_id, image_ref) VALUES ('enum', 'galaxy engine; rm -rf /')")),
        ).toBe("23514");
        await insert("stop_reason, restart_policy, desired_state", "'admin_request', 'never', 'stopped'");
        expect(await store.get("enum")).toMatchObject({ stopReason: "admin_request", restartPolicy: "never", desiredState: "stopped" });
      });

      it("refuses in plain SQL a resource limit that would round to none, and takes one at its floor", async () => {
        const insert = (id: string, resources: string) =>
          store.sql.query(`INSERT INTO declarations (game_id, image_ref, resources) VALUES ($1, 'galaxy/engine:1.0.0', $2::jsonb)`, [id, resources]);
        // 1e-10 CPUs is 0 nano-CPUs once rounded: "no limit" to Docker and the kubelet.
        expect(await sqlError(insert("tiny-cpu", '{"cpus": 1e-10}'))).toBe("23514");
        expect(await sqlError(insert("zero-cpu", '{"cpus": 0}'))).toBe("23514");
        expect(await sqlError(insert("text-cpu", '{"cpus": "1"}'))).toBe("23514");
        expect(await sqlError(insert("tiny-mem", '{"memory": "6291455"}'))).toBe("23514");
        expect(await sqlError(insert("bad-mem", '{"memory": "lots"}'))).toBe("23514");
        expect(await sqlError(insert("few-pids", '{"pidsLimit": 15}'))).toBe("23514");
        expect(await sqlError(insert("half-pid", '{"pidsLimit": 16.5}'))).toBe("23514");
        await insert("floor", '{"cpus": 0.01, "memory": "6m", "pidsLimit": 16}');
        expect(await store.get("floor")).toMatchObject({ resources: { cpus: 0.01, memory: "6m", pidsLimit: 16 } });
        expect((await store.listGameIds()).sort()).toEqual(["floor"]);
      });

      it("a row from before the floor (the CHECK was not there) is start_config_invalid, never run without a limit", async () => {
        const check = derivedChecks().find((c) => c.name === "declarations_resource_limits_check")!;
        await store.sql.query(`ALTER TABLE declarations DROP CONSTRAINT ${check.name}`);
        try {
          await store.sql.query(`INSERT INTO declarations (game_id, image_ref, resources) VALUES ('old-tiny', 'galaxy/engine:1.0.0', '{"cpus": 1e-10}'::jsonb)`);
          const err = await expectRtmError(store.get("old-tiny"), "start_config_invalid");
          expect(err.message).toContain("cpus");
        } finally {
          await store.sql.exec(`TRUNCATE declarations; ALTER TABLE declarations ADD CONSTRAINT ${check.name} CHECK (${check.expr})`);
        }
      });

      it("get throws start_config_invalid for a row that passes SQL but fails the schema", async () => {
        await store.sql.query(
          `INSERT INTO declarations (game_id, image_ref, env) VALUES ('bad-env', 'galaxy/engine:1.0.0', '{"1BAD": "x"}'::jsonb)`,
        );
        const err = await expectRtmError(store.get("bad-env"), "start_config_invalid");
        expect(err.message).toContain("bad-env");
        expect(err.message).toContain("env");
        expect(await store.listGameIds()).toEqual(["bad-env"]);
        // mutate cannot build on it either, and writes nothing.
        await expectRtmError(store.mutate("bad-env", () => spec("bad-env"), meta()), "start_config_invalid");
      });

      it("mutate: null writes nothing, a throw rolls back and is rethrown", async () => {
        const none = await store.mutate("absent", () => null, meta());
        expect(none).toEqual({ declaration: null, changed: false });
        await put(store, spec("keep", { restartToken: "1" }));
        const refused = new RtmError("conflict", "not now");
        await expect(
          store.mutate(
            "keep",
            () => {
              throw refused;
            },
            meta(),
          ),
        ).rejects.toBe(refused);
        await expect(
          store.mutate(
            "fresh",
            () => {
              throw new Error("boom");
            },
            meta(),
          ),
        ).rejects.toThrow("boom");
        expect(await store.listGameIds()).toEqual(["keep"]);
        expect((await store.get("keep"))?.restartToken).toBe("1");
      });

      it("serialises concurrent mutate calls on one game: 20 appends, none lost", async () => {
        await put(store, spec("race", { restartToken: "" }));
        const writers = Array.from({ length: 20 }, (_, i) =>
          store.mutate(
            "race",
            (current) => spec("race", { restartToken: `${current?.restartToken ?? ""}${String.fromCharCode(97 + i)}` }),
            meta(`op-${i}`),
          ),
        );
        const results = await Promise.all(writers);
        expect(results.every((r) => r.changed)).toBe(true);
        const final = await store.get("race");
        expect(final?.restartToken).toHaveLength(20);
        expect([...final!.restartToken!].sort().join("")).toBe("abcdefghijklmnopqrst");
        expect(final?.generation).toBe(21);
      });
    });

    describe("records", () => {
      it("upsert round-trips every field, nulls and Dates included", async () => {
        const record = fullRecord("rec");
        await store.putRecord(record);
        expect(await store.getRecord("rec")).toEqual(record);

        const removed: RuntimeRecord = {
          ...record,
          status: "removed",
          currentContainerId: null,
          currentImageRef: null,
          engineEndpoint: null,
          startedAt: null,
          lastExitCode: null,
          lastErrorCode: null,
          lastErrorMessage: null,
          lastErrorGeneration: null,
          lastProbeAt: null,
          previousImageRef: null,
          rolloutStartedAt: null,
          removedAt: new Date("2026-02-01T00:00:00.000Z"),
          observedGeneration: 8,
          degraded: false,
          heldGeneration: null,
    lostNode: null,
    lostNodeSince: null,
          health: "unknown",
        };
        await store.putRecord(removed);
        expect(await store.getRecord("rec")).toEqual(removed);
        await store.putRecord(fullRecord("rec-2"));
        expect((await store.listRecords()).map((r) => r.gameId)).toEqual(["rec", "rec-2"]);
        expect(await store.getRecord("missing")).toBeNull();
      });

      it("watchRecords hears record writes", async () => {
        const heard: string[] = [];
        const unwatch = await store.watchRecords({ onChange: (g) => heard.push(g) });
        try {
          const woke = waitFor<void>(
            (resolve) => {
              const timer = setInterval(() => {
                if (heard.includes("rec-w")) {
                  clearInterval(timer);
                  resolve();
                }
              }, 2);
            },
            2_000,
            "record notification",
          );
          await store.putRecord(fullRecord("rec-w"));
          await woke;
        } finally {
          await unwatch();
        }
      });
    });

    describe("operation log", () => {
      it("starts, finishes, lists newest first and marks interrupted", async () => {
        const base = {
          opId: "op-a",
          gameId: "ops",
          kind: "start" as const,
          opSource: "gm_rest" as const,
          imageRef: "galaxy/engine:1.0.0",
          generation: 1,
          errorCode: null,
          message: null,
          stopReason: null,
          startedAt: new Date("2026-03-01T00:00:00.000Z"),
        };
        const first = await store.startOperation(base);
        const second = await store.startOperation({ ...base, opId: "op-a", kind: "patch", generation: 2 });
        const other = await store.startOperation({ ...base, gameId: "ops-other", opId: "op-b", stopReason: "admin_request", kind: "stop" });
        expect(second).toBeGreaterThan(first);

        await store.finishOperation(first, {
          outcome: "failure",
          errorCode: "image_pull_failed",
          message: "no such image",
          finishedAt: new Date("2026-03-01T00:00:01.000Z"),
        });
        await store.finishOperation(other, {
          outcome: "success",
          errorCode: null,
          message: null,
          imageRef: "galaxy/engine:1.0.1",
          finishedAt: new Date("2026-03-01T00:00:02.000Z"),
        });
        await expectRtmError(
          store.finishOperation(99_999, { outcome: "success", errorCode: null, message: null, finishedAt: new Date() }),
          "not_found",
        );

        const ops = await store.listOperations("ops");
        expect(ops.map((o) => o.id)).toEqual([second, first]);
        expect(ops[1]).toEqual({
          ...base,
          id: first,
          outcome: "failure",
          errorCode: "image_pull_failed",
          message: "no such image",
          finishedAt: new Date("2026-03-01T00:00:01.000Z"),
          traceParent: null, // no REST call's traceparent was recorded for op-a
        });
        expect(ops[0]).toMatchObject({ outcome: "running", finishedAt: null, kind: "patch", generation: 2 });
        expect(await store.listOperations("ops", 1)).toHaveLength(1);
        expect((await store.listOperations("ops-other"))[0]).toMatchObject({
          imageRef: "galaxy/engine:1.0.1",
          stopReason: "admin_request",
          outcome: "success",
        });

        const before = Date.now();
        const interrupted = await store.markInterruptedOperations();
        expect(interrupted.map((o) => o.id)).toEqual([second]);
        expect(interrupted[0]).toMatchObject({
          outcome: "interrupted",
          message: "controller stopped before the operation finished",
        });
        expect(interrupted[0]!.finishedAt!.getTime()).toBeGreaterThan(before - 60_000);
        expect(await store.markInterruptedOperations()).toEqual([]);
      });
    });

    describe("events", () => {
      it("one strictly increasing sequence across games; eventsAfter filters and limits; bounds", async () => {
        expect(await store.eventBounds()).toEqual({ oldest: null, latest: null });
        const appended = [];
        for (let i = 0; i < 6; i++) {
          appended.push(
            await store.appendEvent({
              gameId: i % 2 ? "ev-b" : "ev-a",
              type: "container_started",
              opId: i === 0 ? null : `op-${i}`,
              data: { i, nested: { ok: true } },
            }),
          );
        }
        const concurrent = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.appendEvent({ gameId: "ev-c", type: "probe_failed", opId: null, data: { i } })),
        );
        const seqs = [...appended, ...concurrent].map((e) => e.seq);
        expect(new Set(seqs).size).toBe(16);
        for (let i = 1; i < appended.length; i++) expect(appended[i]!.seq).toBeGreaterThan(appended[i - 1]!.seq);

        expect(appended[0]).toMatchObject({ gameId: "ev-a", type: "container_started", opId: null, data: { i: 0, nested: { ok: true } } });
        expect(appended[0]!.at).toBeInstanceOf(Date);

        const all = await store.eventsAfter(0);
        expect(all.map((e) => e.seq)).toEqual([...seqs].sort((a, b) => a - b));
        expect(all[0]).toEqual(appended[0]);

        const onlyB = await store.eventsAfter(appended[1]!.seq, { gameId: "ev-b" });
        expect(onlyB.map((e) => e.seq)).toEqual([appended[3]!.seq, appended[5]!.seq]);
        const limited = await store.eventsAfter(appended[0]!.seq, { limit: 2 });
        expect(limited.map((e) => e.seq)).toEqual([appended[1]!.seq, appended[2]!.seq]);

        const at = new Date("2026-04-01T12:00:00.000Z");
        const dated = await store.appendEvent({ gameId: "ev-a", type: "crash_loop", opId: null, data: {}, at });
        expect(dated.at).toEqual(at);

        expect(await store.eventBounds()).toEqual({ oldest: Math.min(...seqs), latest: dated.seq });
      });
    });

    describe("leases", () => {
      it("holder A acquires, B is refused while it lives, B takes it after expiry, renewal keeps it", async () => {
        const leader = store.lease("leader");
        const short = store.lease("short");
        expect(await leader.tryAcquire("A", 5_000)).toBe(true);
        expect(await leader.tryAcquire("B", 5_000)).toBe(false);
        expect(await leader.tryAcquire("A", 5_000)).toBe(true);
        expect((await leader.current())?.holder).toBe("A");

        // B is refused while A's lease is long, so a slow machine cannot let
        // it expire between the two calls; then A's renewal shortens it and
        // only the passing of time (which load can only lengthen) lets B in.
        expect(await short.tryAcquire("A", 5_000)).toBe(true);
        expect(await short.tryAcquire("B", 5_000)).toBe(false);
        expect(await short.tryAcquire("A", 50)).toBe(true);
        await new Promise((r) => setTimeout(r, 120));
        expect(await short.tryAcquire("B", 5_000)).toBe(true);
        expect(await short.tryAcquire("A", 5_000)).toBe(false);

        await leader.release("B");
        expect(await leader.tryAcquire("B", 5_000)).toBe(false);
        await leader.release("A");
        expect(await leader.current()).toBeNull();
        expect(await leader.tryAcquire("B", 5_000)).toBe(true);
      });
    });
  });
}

// ------------------------------------------------------------------ PostgreSQL

let server: PostgresServer;

describe("postgres", () => {
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  }, 60_000);

  describeStoreContract("postgres", async () => {
    const url = await server.createDatabase();
    return {
      store: await openStore({ databaseUrl: url, dataDir: "/nonexistent" }),
      reopen: () => openStore({ databaseUrl: url, dataDir: "/nonexistent" }),
      dispose: async () => undefined,
    };
  });

  describe("postgres only", () => {
    const opened: SqlStore[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    it("two processes migrating one empty database at once both succeed", async () => {
      const url = await server.createDatabase();
      const stores = await Promise.all(Array.from({ length: 4 }, () => openStore({ databaseUrl: url, dataDir: "/nonexistent" })));
      opened.push(...stores);
      const rows = await server.query<{ n: string }>("SELECT count(*) AS n FROM schema_migrations", [], url.split("/").pop());
      expect(Number(rows[0]!.n)).toBe(MIGRATIONS.length);
    });

    it("notices a killed LISTEN connection, reconnects, resyncs, and delivers again", async () => {
      const url = await server.createDatabase();
      const database = url.split("/").pop()!;
      const lost: Error[] = [];
      const store = await openStore({
        databaseUrl: url,
        dataDir: "/nonexistent",
        pg: { reconnectMinMs: 20, reconnectMaxMs: 200, onConnectionLost: (err) => lost.push(err) },
      });
      opened.push(store);
      const probe = new WatchProbe();
      await store.watch(probe);

      const before = probe.next((g) => g === "before", 2_000, "onChange(before)");
      await store.sql.query("INSERT INTO declarations (game_id, image_ref) VALUES ('before', 'galaxy/engine:1.0.0')");
      await before;

      const resynced = probe.next((g) => g === null, 10_000, "onResync");
      expect(await server.terminateListeners(database)).toBe(1);
      await resynced;
      expect(probe.resyncs).toBe(1);
      expect(lost).toHaveLength(1);

      const after = probe.next((g) => g === "after", 2_000, "onChange(after) on the new connection");
      await server.query("INSERT INTO declarations (game_id, image_ref) VALUES ('after', 'galaxy/engine:1.0.0')", [], database);
      await after;
    });

    it("a quiet LISTEN connection answers heartbeats, and they stop when it is killed", async () => {
      const url = await server.createDatabase();
      const database = url.split("/").pop()!;
      let beats = 0;
      const lost: Error[] = [];
      const store = await openStore({
        databaseUrl: url,
        dataDir: "/nonexistent",
        pg: { listenHeartbeatMs: 50, reconnectMinMs: 60_000, reconnectMaxMs: 60_000, onHeartbeat: () => beats++, onConnectionLost: (err) => lost.push(err) },
      });
      opened.push(store);
      await store.watch(new WatchProbe());
      await pollUntil("three heartbeats", () => beats >= 3, 5_000);
      expect(await server.terminateListeners(database)).toBe(1);
      await pollUntil("the loss to be noticed", () => lost.length === 1, 5_000);
      const after = beats;
      await new Promise((r) => setTimeout(r, 300));
      expect(beats).toBe(after);
    });

    it("a failed connection is service_unavailable naming the host, never the password", async () => {
      const err = await expectRtmError(
        openStore({ databaseUrl: "postgres://rtm:s3cret-pw@127.0.0.1:1/rtm", dataDir: "/nonexistent", pg: { connectTimeoutMs: 2_000 } }),
        "service_unavailable",
      );
      expect(err.message).toContain("127.0.0.1:1");
      expect(err.message).not.toContain("s3cret-pw");
    });
  });
});

// ------------------------------------------------------------------ PGlite

// The Node matrix (scripts/test-node-matrix.sh) re-runs the PostgreSQL half only: RTMANAGER_TEST_STORE_BACKEND=postgres.
const pgliteSkipped = process.env.RTMANAGER_TEST_STORE_BACKEND === "postgres";
describe.skipIf(pgliteSkipped)(`pglite${pgliteSkipped ? " (skipped: RTMANAGER_TEST_STORE_BACKEND=postgres)" : ""}`, () => {
  let dataRoot: string;
  beforeAll(() => {
    dataRoot = mkdtempSync(path.join(os.tmpdir(), "rtm-pglite-"));
  });
  afterAll(() => {
    rmSync(dataRoot, { recursive: true, force: true });
  });

  describeStoreContract("pglite", async () => {
    const dataDir = path.join(dataRoot, "contract", "pglite");
    return {
      store: await openStore({ dataDir }),
      reopen: () => openStore({ dataDir }),
      dispose: async () => undefined,
    };
  });

  describe("pglite only", () => {
    it("opens an in-memory database with memory://", async () => {
      const store = await openStore({ dataDir: "memory://" });
      try {
        await put(store, spec("in-memory"));
        expect(await store.listGameIds()).toEqual(["in-memory"]);
      } finally {
        await store.close();
      }
    }, 60_000);

    it("refuses an empty data directory instead of filling the working directory", async () => {
      await expectRtmError(openStore({ dataDir: "" }), "service_unavailable");
    });

    it("refuses a second open of a data directory that is in use", async () => {
      const dataDir = path.join(dataRoot, "locked");
      const first = await openStore({ dataDir });
      try {
        const err = await expectRtmError(openStore({ dataDir }), "service_unavailable");
        expect(err.message).toContain(dataDir);
      } finally {
        await first.close();
      }
      const second = await openStore({ dataDir });
      await second.close();
    }, 60_000);
  });
});
