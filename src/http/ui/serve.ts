/**
 * GET /ui and /ui/{asset}: the operator console's static files, read from the
 * package (src/http/ui/assets) and held in memory; nothing is fetched from
 * anywhere else at run time. The files carry no data: every API call the page
 * makes sends the token the operator typed, so the files themselves are served
 * without one (a browser cannot add Authorization to a navigation), behind the
 * same Host/Origin guards as the API.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import type { ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { RtmError } from "../../model/errors.js";

/**
 * No inline script or style, nothing from another origin, no framing, no
 * form posts, no plugins: the page can only run its own files and call this
 * server. Setting element.style from script is CSSOM, which style-src does not
 * govern, so the virtualised table may position rows.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** Only plain names: no directories, no dots but the extension, so a path can never leave the folder. */
const ASSET_NAME = /^[A-Za-z0-9-]+\.(html|js|css|svg)$/;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Next to this module from source (tsx); from dist/src/http/ui, the package's src copy. */
function assetDir(): string {
  const candidates = [new URL("./assets/", import.meta.url), new URL("../../../../src/http/ui/assets/", import.meta.url)];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (fs.existsSync(dir)) return dir;
  }
  throw new Error("console assets not found next to src/http/ui/serve or in the package's src/http/ui/assets");
}

let cache: Map<string, Asset> | null = null;

/** Read once: the files are part of the package and do not change under a running server. */
export function consoleAssets(): Map<string, Asset> {
  if (cache) return cache;
  const dir = assetDir();
  const assets = new Map<string, Asset>();
  for (const name of fs.readdirSync(dir)) {
    const ext = name.slice(name.lastIndexOf("."));
    if (!ASSET_NAME.test(name) || !TYPES[ext]) continue;
    const body = fs.readFileSync(`${dir}/${name}`);
    assets.set(name, { body, type: TYPES[ext]!, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` });
  }
  cache = assets;
  return assets;
}

export function serveConsole(res: ServerResponse, name: string): void {
  const asset = ASSET_NAME.test(name) ? consoleAssets().get(name) : undefined;
  if (!asset) throw new RtmError("not_found", `no such console file: ${JSON.stringify(name.slice(0, 100))}`);
  res.writeHead(200, {
    "content-type": asset.type,
    "content-length": asset.body.length,
    // Revalidated on every load, so a new version is never mixed with an old module.
    "cache-control": "no-cache",
    etag: asset.etag,
    "content-security-policy": CONSOLE_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "x-frame-options": "DENY",
  });
  res.end(asset.body);
}
