/**
 * SIGTERM exits within RTMANAGER_SHUTDOWN_TIMEOUT even when a dependency
 * answers nothing: a real rtmanager process (src/main.ts) leading over a
 * PostgreSQL that is frozen (SIGSTOP: connections stay open, nothing is
 * answered, the hardest case for a client), and one leading in Kubernetes
 * mode over a test API server that stops answering every request. Single
 * calls are bounded too: a SQL statement on the frozen server fails after
 * the statement timeout plus the client's grace, and a Kubernetes API call
 * is aborted after RTMANAGER_KUBE_REQUEST_TIMEOUT.
 */
import { readdirSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GameRuntimeApi, toApiRtmError } from "../../src/crd/api.js";
import { kubeClient } from "../../src/kube/client.js";
import { RtmError } from "../../src/model/errors.js";
import { CLIENT_TIMEOUT_GRACE_MS, PgSqlClient } from "../../src/store/pgClient.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";
import { cleanupInstance, createTestNetwork, ensureTestImages, removeTestNetwork, tempStateDir, uniqueInstance, waitFor } from "../helpers/docker.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { spawnController, type ControllerProcess } from "../helpers/process.js";
import { slack } from "../helpers/slack.js";

const SHUTDOWN_TIMEOUT_MS = 6_000;
/** Node start-up of the exit path and process reaping on a loaded 2-core machine. */
const SLACK_MS = 2_000;

const spawned: ControllerProcess[] = [];
const instances: string[] = [];

beforeAll(async () => {
  await ensureTestImages();
}, 180_000);

afterAll(async () => {
  await Promise.all(spawned.map((p) => p.stop()));
  for (const i of instances) {
    await cleanupInstance(i);
    await removeTestNetwork(`rtm-${i}`);
  }
}, 60_000);

async function baseEnv(name: string): Promise<Record<string, string>> {
  const instance = uniqueInstance(name);
  instances.push(instance);
  await createTestNetwork(`rtm-${instance}`);
  return {
    RTMANAGER_INSTANCE_ID: instance,
    RTMANAGER_DOCKER_NETWORK: `rtm-${instance}`,
    RTMANAGER_STATE_ROOT: await tempStateDir(),
    RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
    RTMANAGER_ENGINE_PUBLISH_HOST: "127.0.0.1",
    RTMANAGER_LEASE_DURATION: "3s",
    RTMANAGER_LEASE_RENEW_DEADLINE: "2s",
    RTMANAGER_LEASE_RETRY_PERIOD: "300ms",
    RTMANAGER_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms`,
  };
}

/** Sends SIGTERM and resolves with how long the process took to exit, and how. */
async function terminate(p: ControllerProcess): Promise<{ ms: number; code: number | null; signal: string | null }> {
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => p.child.once("exit", (code, signal) => resolve({ code, signal })));
  const started = performance.now();
  p.child.kill("SIGTERM");
  const how = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), SHUTDOWN_TIMEOUT_MS + 20_000))]);
  const ms = performance.now() - started;
  if (!how) throw new Error(`the controller did not exit ${Math.round(ms)} ms after SIGTERM (log: ${p.logFile})`);
  return { ms, ...how };
}

/** The postmaster of a data directory and every process it forked. */
function serverProcesses(dataDir: string): number[] {
  const postmaster = Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  const children = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        // Field 4 of /proc/PID/stat is the parent pid; the name in parentheses may hold spaces.
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === postmaster;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [postmaster, ...children];
}

/**
 * Signals each server process that still exists. A short-lived backend can end
 * between the listing and the signal (ESRCH): nothing is left to freeze or wake.
 */
function signalAll(pids: readonly number[], signal: "SIGSTOP" | "SIGCONT"): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
}

describe("SIGTERM while PostgreSQL answers nothing", () => {
  let pg: PostgresServer;
  let frozen: number[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);

  afterAll(async () => {
    signalAll(frozen, "SIGCONT");
    await pg?.stop();
  }, 60_000);

  it("a transaction on a server that answers nothing fails soon after the statement timeout plus the client's grace", async () => {
    const url = await pg.createDatabase("frozen_tx");
    const dataDir = (await pg.query<{ data_directory: string }>("SHOW data_directory"))[0]!.data_directory;
    const client = new PgSqlClient({ connectionString: url, statementTimeoutMs: 300 });
    try {
      await client.query("SELECT 1");
      const pids = serverProcesses(dataDir);
      let started = 0;
      const outcome = client
        .transaction(async (tx) => {
          await tx.query("SELECT 1");
          signalAll(pids, "SIGSTOP");
          started = performance.now();
          await tx.query("SELECT 2");
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      const err = await outcome;
      const ms = performance.now() - started;
      signalAll(pids, "SIGCONT");
      // No ROLLBACK queued behind the lost answer: one timeout, not two.
      expect(ms).toBeGreaterThan(300 + CLIENT_TIMEOUT_GRACE_MS - 200);
      expect(ms).toBeLessThan(slack(300 + CLIENT_TIMEOUT_GRACE_MS + 2_000));
      expect(err).toBeInstanceOf(RtmError);
      expect((err as RtmError).message).toMatch(/statement timed out \(RTMANAGER_SQL_STATEMENT_TIMEOUT=300 ms\): no answer within 5300 ms/);
      // The pool discarded that connection and works again once the server is back.
      expect((await client.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
    } finally {
      await client.close();
    }
  }, 60_000);

  it("the leader exits within RTMANAGER_SHUTDOWN_TIMEOUT", async () => {
    const env: Record<string, string> = { ...(await baseEnv("sd-pg")), RTMANAGER_SQL_STATEMENT_TIMEOUT: "2s" };
    const db = "shutdown_pg";
    const url = await pg.createDatabase(db);
    const dataDir = (await pg.query<{ data_directory: string }>("SHOW data_directory"))[0]!.data_directory;
    const logFile = path.join(os.tmpdir(), `${env.RTMANAGER_INSTANCE_ID}.log`);
    const p = spawnController({ ...env, DATABASE_URL: url }, logFile);
    spawned.push(p);
    await waitFor(
      "the controller to lead",
      async () => (await pg.query<{ holder: string }>("SELECT holder FROM leases WHERE expires_at > now()", [], db).catch(() => []))[0]?.holder,
      60_000,
    );

    frozen = serverProcesses(dataDir);
    signalAll(frozen, "SIGSTOP");
    // Let the lease renewal and the pollers get stuck on the frozen server first.
    await new Promise((r) => setTimeout(r, 1_000));

    const { ms, signal } = await terminate(p);
    expect(signal, "exited by itself, not killed").toBeNull();
    expect(ms).toBeLessThan(slack(SHUTDOWN_TIMEOUT_MS + SLACK_MS));
    const log = await fs.readFile(logFile, "utf8");
    expect(log).toContain('"msg":"shutting down"');
  }, 120_000);
});

describe("SIGTERM while the Kubernetes API answers nothing", () => {
  let server: FakeApiServer;
  let root: string;

  beforeAll(async () => {
    server = await FakeApiServer.start();
    root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-sd-kube-"));
  }, 60_000);

  afterAll(async () => {
    server.beforeHandle = null;
    await server?.stop();
  }, 30_000);

  it("an API call is aborted after RTMANAGER_KUBE_REQUEST_TIMEOUT with a clear error", async () => {
    const kc = kubeClient(500, fakeKubeConfig(server.url));
    const api = new GameRuntimeApi(kc);
    expect(await api.get({ namespace: "games", name: "nothing" })).toBeNull();
    server.beforeHandle = () => new Promise<void>(() => {});
    try {
      const started = performance.now();
      const err = await api.get({ namespace: "games", name: "nothing" }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(performance.now() - started).toBeLessThan(slack(3_000));
      expect(err).not.toBeNull();
      const mapped = toApiRtmError(err, "get gameruntime");
      expect(mapped.code).toBe("service_unavailable");
      expect(mapped.message).toMatch(/Kubernetes API timed out: get gameruntime: request aborted: no answer within its timeout/);
    } finally {
      server.beforeHandle = null;
    }
  }, 30_000);

  it("the leader exits within RTMANAGER_SHUTDOWN_TIMEOUT", async () => {
    const env = await baseEnv("sd-kube");
    const kubeconfigFile = path.join(root, "kubeconfig");
    await fs.writeFile(kubeconfigFile, fakeKubeConfig(server.url).exportConfig());
    const logFile = path.join(os.tmpdir(), `${env.RTMANAGER_INSTANCE_ID}.log`);
    const p = spawnController(
      {
        ...env,
        KUBECONFIG: kubeconfigFile,
        RTMANAGER_SOURCE: "kubernetes",
        RTMANAGER_KUBE_NAMESPACE: "games",
        RTMANAGER_DATA_DIR: path.join(root, "data"),
      },
      logFile,
    );
    spawned.push(p);
    await waitFor("the controller to lead", () => (server.get("leases", "games", `${env.RTMANAGER_INSTANCE_ID}-leader`)?.spec as { holderIdentity?: string } | undefined)?.holderIdentity, 60_000);

    // Every request from now on hangs (the open watches just go quiet).
    server.beforeHandle = () => new Promise<void>(() => {});
    await new Promise((r) => setTimeout(r, 1_000));

    const { ms, signal } = await terminate(p);
    expect(signal, "exited by itself, not killed").toBeNull();
    expect(ms).toBeLessThan(slack(SHUTDOWN_TIMEOUT_MS + SLACK_MS));
    const log = await fs.readFile(logFile, "utf8");
    expect(log).toContain('"msg":"shutting down"');
  }, 120_000);
});
