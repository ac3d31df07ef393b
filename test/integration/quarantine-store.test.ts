/**
 * The quarantine's SQL (src/store/quarantineSql.ts) on both backends: which
 * rollbacks count (only patch_rolled_back of that image, inside the window,
 * after its last lift), imposing once, lifting, and a quarantine that
 * outlives the process (a reopened store, another replica's connection).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, SqlQuarantines, type SqlStore } from "../../src/store/index.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

const BAD = "registry.local/galaxy/engine:1.4.3";
const OTHER = "registry.local/galaxy/engine:1.4.4";

function rollback(store: SqlStore, gameId: string, imageRef: string, at?: Date) {
  return store.appendEvent({ gameId, type: "patch_rolled_back", opId: null, data: { failedImageRef: imageRef, restoredImageRef: "registry.local/galaxy/engine:1.4.2" }, at });
}

function describeQuarantineSql(name: string, open: () => Promise<{ first: SqlStore; second: () => Promise<SqlStore> }>): void {
  describe(`quarantine SQL: ${name}`, () => {
    let store: SqlStore;
    let reopen: () => Promise<SqlStore>;
    beforeAll(async () => {
      const o = await open();
      store = o.first;
      reopen = o.second;
    }, 60_000);
    afterAll(async () => store?.close(), 60_000);

    it("counts only this image's rollbacks inside the window; imposes once; a lift ends it and restarts the count; another connection sees it all", async () => {
      const q = new SqlQuarantines(store.sql);
      await rollback(store, "old-1", BAD, new Date(Date.now() - 3_600_000));
      await rollback(store, "g-1", BAD);
      await rollback(store, "g-2", BAD);
      await rollback(store, "g-3", OTHER);
      await store.appendEvent({ gameId: "g-4", type: "rollback_failed", opId: null, data: { failedImageRef: BAD } });
      expect(await q.recentRollbacks(BAD, 600_000)).toEqual({ count: 2, games: ["g-1", "g-2"] });
      await rollback(store, "g-2", BAD);
      expect(await q.recentRollbacks(BAD, 600_000)).toEqual({ count: 3, games: ["g-1", "g-2"] });

      const since = new Date();
      const first = await q.imposeQuarantine({ imageRef: BAD, since, rollbacks: 3, gameId: "g-2", games: ["g-1", "g-2"] });
      expect(first.created).toBe(true);
      const again = await q.imposeQuarantine({ imageRef: BAD, since: new Date(), rollbacks: 4, gameId: "g-9", games: [] });
      expect(again.created).toBe(false);
      expect(again.quarantine).toMatchObject({ imageRef: BAD, rollbacks: 3, gameId: "g-2", games: ["g-1", "g-2"] });

      // Shared and durable: another store on the same database sees it.
      const other = await reopen();
      try {
        const seen = await new SqlQuarantines(other.sql).activeQuarantines();
        expect(seen.map((x) => [x.imageRef, x.rollbacks, x.since.toISOString()])).toEqual([[BAD, 3, since.toISOString()]]);
      } finally {
        if (other !== store) await other.close();
      }

      expect(await q.liftQuarantine(OTHER, "admin_rest")).toBeNull();
      expect((await q.liftQuarantine(BAD, "admin_rest"))?.imageRef).toBe(BAD);
      expect(await q.activeQuarantines()).toEqual([]);
      expect(await q.liftQuarantine(BAD, "admin_rest")).toBeNull();
      // Rollbacks before the lift no longer count; new ones do, and a new quarantine can be imposed on the same row.
      expect((await q.recentRollbacks(BAD, 600_000)).count).toBe(0);
      await rollback(store, "g-5", BAD);
      expect(await q.recentRollbacks(BAD, 600_000)).toEqual({ count: 1, games: ["g-5"] });
      expect((await q.imposeQuarantine({ imageRef: BAD, since: new Date(), rollbacks: 1, gameId: "g-5", games: ["g-5"] })).created).toBe(true);
      expect((await q.activeQuarantines()).map((x) => x.gameId)).toEqual(["g-5"]);
    }, 60_000);
  });
}

let pg: PostgresServer;
describe("backends", () => {
  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);
  afterAll(async () => pg?.stop(), 60_000);

  describeQuarantineSql("postgres", async () => {
    const url = await pg.createDatabase("quarantine");
    return { first: await openStore({ databaseUrl: url, dataDir: "" }), second: () => openStore({ databaseUrl: url, dataDir: "" }) };
  });
  describeQuarantineSql("pglite", async () => {
    const store = await openStore({ dataDir: "memory://" });
    // One process owns a PGlite directory: the same store stands in for a second connection.
    return { first: store, second: async () => store };
  });
});
