/**
 * Debian's chromium (scripts/ensure-chromium.sh) driven by playwright-core
 * through its executable path: no browser download, a fresh profile per
 * launch (removed at close), and no traffic of its own (background
 * networking, component updates, sync and QUIC are off), so the only requests
 * are the ones the page makes to the test's own servers.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

export const CHROMIUM = process.env.RTMANAGER_CHROMIUM ?? "/usr/bin/chromium";

export interface TestBrowser {
  /** A persistent context on the fresh profile: playwright takes the profile this way, not as --user-data-dir. */
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<TestBrowser> {
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: { width: 1280, height: 900 },
    // playwright adds --headless itself for headless: true; the rest are the brief's.
    headless: true,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
      "--disable-quic",
    ],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      await fs.rm(profile, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
