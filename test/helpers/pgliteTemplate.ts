/**
 * A migrated PGlite data directory, made once and copied into each test app.
 *
 * PGlite's first open runs initdb inside WebAssembly: about 3 s on a quiet
 * 2-core machine and 40-70 s under load, while opening an existing directory
 * costs a fraction of that. Every startTestApp paid the initdb, which is what
 * pushed tests that start a second app past their timeout on a loaded
 * machine. The app under test still opens the copy and runs its migrations
 * (they find nothing to do), exactly as on a restart.
 *
 * The template is keyed by the source of src/ and the PGlite version, so a
 * changed migration or schema never meets an old template; it lives in the
 * temp directory and is shared by the test processes of one run (built in a
 * private directory, then renamed into place: the first rename wins).
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pgliteDataDir } from "../../src/app.js";
import type { Config } from "../../src/config.js";
import { openStore } from "../../src/store/open.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function sourceKey(): string {
  const hash = createHash("sha256");
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".ts")) hash.update(full).update(readFileSync(full));
    }
  };
  walk(path.join(repo, "src"));
  hash.update(readFileSync(path.join(repo, "node_modules/@electric-sql/pglite/package.json")));
  return hash.digest("hex").slice(0, 16);
}

let template: Promise<string> | undefined;

async function buildTemplate(): Promise<string> {
  const dir = path.join(os.tmpdir(), `rtm-pglite-template-${sourceKey()}`);
  if (existsSync(path.join(dir, "PG_VERSION"))) return dir;
  const building = `${dir}.building-${process.pid}`;
  await fs.rm(building, { recursive: true, force: true });
  const store = await openStore({ dataDir: building });
  await store.close();
  try {
    await fs.rename(building, dir);
  } catch {
    // Another test process renamed its copy first: use that one.
    await fs.rm(building, { recursive: true, force: true });
  }
  return dir;
}

/**
 * Fills the app's PGlite data directory with a migrated database when the app
 * runs on PGlite and the directory holds no database yet; a directory a test
 * reuses across restarts is left alone.
 */
export async function seedPgliteDataDir(config: Pick<Config, "databaseUrl" | "dataDir">): Promise<void> {
  if (config.databaseUrl) return;
  const target = pgliteDataDir(config);
  if (existsSync(target) && readdirSync(target).length > 0) return;
  template ??= buildTemplate();
  const from = await template;
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.cp(from, target, { recursive: true });
}
