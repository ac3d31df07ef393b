/**
 * What keeps a browser from driving the API: a page elsewhere can make the
 * browser send a request (a form POST, a fetch in no-cors mode) or rebind a
 * name it controls to this address (DNS rebinding). A browser always says
 * where the request comes from (`Origin`, `Sec-Fetch-Site`) and which name it
 * thinks it talks to (`Host`); non-browser clients such as Game Master's send
 * neither Origin nor Sec-Fetch-Site and use an IP or a configured name.
 */
import { isIP } from "node:net";
import type { IncomingMessage } from "node:http";
import { RtmError } from "../model/errors.js";

export interface GuardSettings {
  /** Lowercase names without a trailing dot; `.example.com` allows its subdomains. */
  allowedHosts: readonly string[];
  /** Serialised origins (`https://ops.example.com`). */
  allowedOrigins: readonly string[];
  /** False on a Unix socket: no browser reaches it, and clients send whatever Host they like. */
  checkHost: boolean;
}

/** 403 with the contract's envelope; the contract's codes have no "forbidden", so it is invalid_request with 403 (like 401). */
export function forbidden(message: string): RtmError {
  return new RtmError("invalid_request", message, { httpStatus: 403 });
}

function hostName(header: string): string {
  if (header.startsWith("[")) {
    const end = header.indexOf("]");
    return end > 0 ? header.slice(1, end) : header;
  }
  const colon = header.lastIndexOf(":");
  // One colon is host:port; more would be a bare IPv6 literal.
  return colon >= 0 && header.indexOf(":") === colon ? header.slice(0, colon) : header;
}

export function hostAllowed(header: string | undefined, allowed: readonly string[]): boolean {
  // HTTP/1.0 clients may omit it; a browser never does.
  if (header === undefined || header === "") return true;
  const name = hostName(header).toLowerCase().replace(/\.$/, "");
  if (isIP(name) !== 0) return true;
  return allowed.some((a) => (a.startsWith(".") ? name.endsWith(a) && name.length > a.length : name === a));
}

/** Host headers already found allowed: a hot GET then costs one Set lookup. Bounded, since clients choose them. */
const MAX_REMEMBERED_HOSTS = 256;

/** A check that throws a 403 when the request is a browser's from elsewhere, or names this server by a name it does not answer to. */
export function browserGuard(settings: GuardSettings): (req: IncomingMessage) => void {
  const remembered = new Set<string>();
  const hostOk = (header: string | undefined): boolean => {
    if (header !== undefined && remembered.has(header)) return true;
    const ok = hostAllowed(header, settings.allowedHosts);
    if (ok && header !== undefined && remembered.size < MAX_REMEMBERED_HOSTS) remembered.add(header);
    return ok;
  };
  return (req) => checkBrowserGuards(req, settings, hostOk);
}

function checkBrowserGuards(req: IncomingMessage, settings: GuardSettings, hostOk: (header: string | undefined) => boolean): void {
  if (settings.checkHost && !hostOk(req.headers.host)) {
    throw forbidden(
      `Host ${JSON.stringify(String(req.headers.host).slice(0, 100))} is not a name this server answers to; add it to RTMANAGER_ALLOWED_HOSTS (or use an IP address)`,
    );
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !settings.allowedOrigins.includes(origin) && !(settings.checkHost && sameOrigin(origin, req.headers.host))) {
    throw forbidden(`Origin ${JSON.stringify(origin.slice(0, 100))} is not allowed; add it to RTMANAGER_ALLOWED_ORIGINS to call this API from a browser`);
  }
  if (req.headers["sec-fetch-site"] === "cross-site" && origin === undefined) {
    throw forbidden("cross-site browser requests are refused (Sec-Fetch-Site: cross-site)");
  }
}

/**
 * The console at /ui calls the API from the page this server served: its
 * POSTs carry that page's own Origin (a browser adds Origin to every
 * non-GET fetch). It is this server's origin exactly when it names the Host
 * the request was sent to, which the Host check above has already found to
 * be a name this server answers to, so a rebound name never gets here.
 */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined || host === "") return false;
  return origin === `http://${host}` || origin === `https://${host}`;
}
