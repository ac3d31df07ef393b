/**
 * The route table. Paths are matched on the raw request target (not a
 * normalised URL) so an encoded '/' or '..' inside a game id stays inside
 * the game id segment, where the game id rule refuses it.
 */

import { INTERNAL_RUNTIMES, VERB_NAMES, VERBS, type VerbName } from "../model/verbs.js";

/** Every route: the lifecycle verbs (src/model/verbs.ts) and the reads, probes and extensions. */
export type RouteName =
  | VerbName
  | "healthz"
  | "readyz"
  | "metrics"
  | "list"
  | "get"
  | "extList"
  | "extRecord"
  | "extOperations"
  | "extPlan"
  | "extLogs"
  | "extVersion"
  | "extQuarantines"
  | "extQuarantineLift"
  | "events"
  | "ui"
  | "uiAsset";

export type Method = "GET" | "POST" | "DELETE";

export interface RouteDef {
  name: RouteName;
  method: Method;
  /** The path template: metrics label and log field. */
  template: string;
  /** Served without the bearer token (probes only). */
  open?: boolean;
  /** Served without the bearer token but behind the Host/Origin guards: the console's static files, which hold no data. */
  page?: boolean;
}

const INTERNAL = INTERNAL_RUNTIMES;
const EXT = "/api/v1/ext";

export const ROUTES: readonly RouteDef[] = [
  { name: "healthz", method: "GET", template: "/healthz", open: true },
  { name: "readyz", method: "GET", template: "/readyz", open: true },
  { name: "metrics", method: "GET", template: "/metrics" },
  { name: "list", method: "GET", template: INTERNAL },
  { name: "get", method: "GET", template: `${INTERNAL}/{game_id}` },
  ...VERB_NAMES.map((name): RouteDef => ({ name, method: VERBS[name].method, template: VERBS[name].template })),
  { name: "extList", method: "GET", template: `${EXT}/runtimes` },
  { name: "extRecord", method: "GET", template: `${EXT}/runtimes/{game_id}` },
  { name: "extOperations", method: "GET", template: `${EXT}/runtimes/{game_id}/operations` },
  { name: "extPlan", method: "GET", template: `${EXT}/runtimes/{game_id}/plan` },
  { name: "extLogs", method: "GET", template: `${EXT}/runtimes/{game_id}/logs` },
  { name: "events", method: "GET", template: `${EXT}/events` },
  { name: "extVersion", method: "GET", template: `${EXT}/version` },
  { name: "extQuarantines", method: "GET", template: `${EXT}/quarantines` },
  { name: "extQuarantineLift", method: "POST", template: `${EXT}/quarantines/lift` },
  { name: "ui", method: "GET", template: "/ui", page: true },
  { name: "ui", method: "GET", template: "/ui/", page: true },
  { name: "uiAsset", method: "GET", template: "/ui/{asset}", page: true },
];

interface Compiled {
  route: RouteDef;
  segments: (string | null)[];
}

export interface Target {
  pathname: string;
  /** The raw query string without '?'; only the extension routes parse it. */
  search: string;
}

export interface RouteMatch {
  /** Every route on this path; one per method. */
  routes: RouteDef[];
  gameId: string | null;
}

export function parseTarget(url: string | undefined): Target {
  let raw = url ?? "/";
  // Absolute-form targets (sent to proxies) carry a scheme and host first.
  if (!raw.startsWith("/")) {
    try {
      const parsed = new URL(raw);
      raw = parsed.pathname + parsed.search;
    } catch {
      raw = "/";
    }
  }
  const q = raw.indexOf("?");
  const pathname = q >= 0 ? raw.slice(0, q) : raw;
  return { pathname, search: q >= 0 ? raw.slice(q + 1) : "" };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // Broken escapes stay as they are; '%' is not a game id character, so the id rule refuses them.
    return segment;
  }
}

export class Router {
  private readonly compiled: Compiled[];

  constructor(routes: readonly RouteDef[]) {
    this.compiled = routes.map((route) => ({
      route,
      // Any {name} segment is a parameter; {game_id} and the console's {asset} both land in gameId.
      segments: route.template.split("/").map((s) => (/^\{[a-z_]+\}$/.test(s) ? null : s)),
    }));
  }

  match(pathname: string): RouteMatch | null {
    const parts = pathname.split("/");
    const routes: RouteDef[] = [];
    let gameId: string | null = null;
    for (const { route, segments } of this.compiled) {
      if (segments.length !== parts.length) continue;
      let id: string | null = null;
      let ok = true;
      for (let i = 0; i < segments.length && ok; i++) {
        const want = segments[i];
        const got = parts[i]!;
        if (want === null) {
          if (got === "") ok = false;
          else id = decodeSegment(got);
        } else if (want !== got) ok = false;
      }
      if (ok) {
        routes.push(route);
        gameId = id;
      }
    }
    return routes.length > 0 ? { routes, gameId } : null;
  }
}
