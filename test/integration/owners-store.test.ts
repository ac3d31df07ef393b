/**
 * The game_owners table (migration 6, src/store/ownerSql.ts) on real
 * PostgreSQL and on PGlite: one owner per game id, whichever side claims
 * first. A GameRuntime's namespace, a REST declaration and plain SQL are
 * held to it; games from before the migration are `legacy`, taken over only
 * by a declaration or by the GameRuntime an older build had adopted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmError } from "../../src/model/errors.js";
import { applyMigrations, MIGRATIONS, openStore, PgSqlClient, type SqlStore } from "../../src/store/index.js";
import { SqlGameOwners } from "../../src/store/ownerSql.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

const IMAGE = "registry.example/galaxy/engine:1.0.0";
const spec = (gameId: string) => () => ({ gameId, imageRef: IMAGE, desiredState: "running" as const, restartPolicy: "on-failure" as const });
const rest = { opId: "op-rest", opSource: "gm_rest" as const };

function describeOwners(name: string, open: () => Promise<{ store: SqlStore; reopen: () => Promise<SqlStore> }>): void {
  describe(`game owners: ${name}`, () => {
    let store: SqlStore;
    let reopen: () => Promise<SqlStore>;
    beforeAll(async () => {
      ({ store, reopen } = await open());
    }, 60_000);
    afterAll(async () => store?.close(), 60_000);

    it("a GameRuntime's claim holds for its namespace only, and outlives the connection that made it", async () => {
      const owners = new SqlGameOwners(store.sql);
      const first = await owners.claimForKube("g-kube", { namespace: "games-a", uid: "uid-1", adopted: false });
      expect(first).toMatchObject({ gameId: "g-kube", kind: "kube", namespace: "games-a", uid: "uid-1" });
      // Another namespace, adopted or not, learns the owner and changes nothing.
      expect(await owners.claimForKube("g-kube", { namespace: "games-b", uid: "uid-2", adopted: true })).toMatchObject({ namespace: "games-a", uid: "uid-1" });
      // The same namespace re-creating the object is the same owner: the uid follows, the claim time stays.
      const again = await owners.claimForKube("g-kube", { namespace: "games-a", uid: "uid-3", adopted: false });
      expect(again).toMatchObject({ namespace: "games-a", uid: "uid-3" });
      expect(again.claimedAt).toEqual(first.claimedAt);
      const other = await reopen();
      try {
        expect(await new SqlGameOwners(other.sql).get("g-kube")).toMatchObject({ kind: "kube", namespace: "games-a", uid: "uid-3" });
      } finally {
        if (other !== store) await other.close();
      }
    });

    it("a declaration (REST or plain SQL) cannot claim a GameRuntime's id, and a GameRuntime cannot claim a declaration's", async () => {
      const owners = new SqlGameOwners(store.sql);
      await owners.claimForKube("g-taken", { namespace: "games-a", uid: "u", adopted: false });
      const refused = await store.mutate("g-taken", spec("g-taken"), rest).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RtmError);
      expect(refused).toMatchObject({ code: "conflict", message: expect.stringContaining("namespace games-a") });
      await expect(store.sql.query("INSERT INTO declarations (game_id, image_ref) VALUES ('g-taken', $1)", [IMAGE])).rejects.toMatchObject({ code: "RTM01" });
      expect(await store.get("g-taken")).toBeNull();

      await store.mutate("g-rest", spec("g-rest"), rest);
      await store.sql.query("INSERT INTO declarations (game_id, image_ref) VALUES ('g-sql', $1)", [IMAGE]);
      expect(await owners.get("g-rest")).toMatchObject({ kind: "rest", namespace: null });
      expect(await owners.get("g-sql")).toMatchObject({ kind: "sql", namespace: null });
      expect(await owners.claimForKube("g-rest", { namespace: "games-a", uid: "u", adopted: true })).toMatchObject({ kind: "rest" });
      // Deleted and declared again from the store side: the same tenant, still its own.
      await store.delete("g-sql");
      await store.mutate("g-sql", spec("g-sql"), rest);
      expect((await store.get("g-sql"))?.imageRef).toBe(IMAGE);
      expect(await owners.get("g-sql")).toMatchObject({ kind: "sql" });
    });
  });
}

let pg: PostgresServer;
describe("backends", () => {
  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);
  afterAll(async () => pg?.stop(), 60_000);

  describeOwners("postgres", async () => {
    const url = await pg.createDatabase("owners");
    return { store: await openStore({ databaseUrl: url, dataDir: "" }), reopen: () => openStore({ databaseUrl: url, dataDir: "" }) };
  });
  describeOwners("pglite", async () => {
    const store = await openStore({ dataDir: "memory://" });
    return { store, reopen: async () => store };
  });

  it("postgres: games from before migration 6 are legacy; only a declaration or the GameRuntime an older build adopted takes one over", async () => {
    const url = await pg.createDatabase("owners_legacy");
    const client = new PgSqlClient({ connectionString: url });
    try {
      await applyMigrations(client, undefined, MIGRATIONS.filter((m) => m.version < 6));
      await client.query(
        `INSERT INTO runtime_records (game_id, status, state_path, docker_network, last_op_at) VALUES
           ('old-deleted', 'removed', '/state/old-deleted', 'net', now()), ('old-adopted', 'running', '/state/old-adopted', 'net', now())`,
      );
      await client.query("INSERT INTO declarations (game_id, image_ref) VALUES ('old-declared', $1)", [IMAGE]);
      expect((await applyMigrations(client)).applied).toEqual(MIGRATIONS.filter((m) => m.version >= 6).map((m) => m.version));
      const owners = new SqlGameOwners(client);
      for (const g of ["old-deleted", "old-adopted", "old-declared"]) expect(await owners.get(g)).toMatchObject({ kind: "legacy" });
      // A newcomer (not adopted) does not inherit a deleted game's records.
      expect(await owners.claimForKube("old-deleted", { namespace: "games-b", uid: "u-b", adopted: false })).toMatchObject({ kind: "legacy" });
      // The object the older build adopted does.
      expect(await owners.claimForKube("old-adopted", { namespace: "games-a", uid: "u-a", adopted: true })).toMatchObject({ kind: "kube", namespace: "games-a" });
      // A store declaration written again claims its own game.
      await client.query("DELETE FROM declarations WHERE game_id = 'old-declared'");
      await client.query("INSERT INTO declarations (game_id, image_ref, op_source) VALUES ('old-declared', $1, 'admin_rest')", [IMAGE]);
      expect(await owners.get("old-declared")).toMatchObject({ kind: "rest" });
    } finally {
      await client.close();
    }
  }, 60_000);
});
