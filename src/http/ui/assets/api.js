// Every call the console makes to rtmanager goes through this module: the
// token, the op id and the error envelope are handled in one place, and the
// fleet's source (today the event stream's snapshot, see fleetStreamPath) can
// be switched here alone, e.g. to GET /api/v1/ext/runtimes once it exists.

const TOKEN_KEY = "rtmanager.console.token";

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}
export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The API's error envelope, with the status and the op id the server answered with. */
export class ApiError extends Error {
  constructor(status, code, message, opId) {
    super(message);
    this.status = status;
    this.code = code;
    this.opId = opId;
  }
  describe() {
    return `${this.status} ${this.code}: ${this.message}${this.opId ? ` (op id ${this.opId})` : ""}`;
  }
}

/** An op id the server adopts (^[A-Za-z0-9._:-]{8,64}$); getRandomValues works on plain http too, randomUUID does not. */
export function newOpId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "ui-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function authHeaders(extra = {}) {
  const token = storedToken();
  return token ? { ...extra, authorization: `Bearer ${token}` } : { ...extra };
}

async function errorOf(res) {
  const opId = res.headers.get("x-op-id");
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.code === "string") return new ApiError(res.status, body.error.code, body.error.message, opId);
  } catch {
    // not an envelope: fall through
  }
  return new ApiError(res.status, "http_error", `HTTP ${res.status}`, opId);
}

/** Raw response, for streams; throws ApiError on a non-2xx answer. */
export async function request(method, path, { body, opId, signal, headers } = {}) {
  const h = authHeaders(headers);
  if (opId) h["x-op-id"] = opId;
  if (body !== undefined) h["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: "omit",
    cache: "no-store",
  });
  if (!res.ok) throw await errorOf(res);
  return res;
}

async function json(method, path, opts) {
  const res = await request(method, path, opts);
  return { data: await res.json(), opId: res.headers.get("x-op-id") };
}

const INTERNAL = "/api/v1/internal/runtimes";
const EXT = "/api/v1/ext";
const id = (gameId) => encodeURIComponent(gameId);

export const api = {
  version: () => json("GET", `${EXT}/version`),
  /** The contract's list (snake_case records). */
  list: () => json("GET", INTERNAL),
  runtime: (gameId) => json("GET", `${EXT}/runtimes/${id(gameId)}`),
  operations: (gameId, limit = 50) => json("GET", `${EXT}/runtimes/${id(gameId)}/operations?limit=${limit}`),
  plan: (gameId) => json("GET", `${EXT}/runtimes/${id(gameId)}/plan`),
  logs: (gameId, { tail = 100, follow = false, signal } = {}) =>
    request("GET", `${EXT}/runtimes/${id(gameId)}/logs?tail=${tail}${follow ? "&follow=true" : ""}`, { signal }),
  restart: (gameId, opId) => json("POST", `${INTERNAL}/${id(gameId)}/restart`, { opId }),
  stop: (gameId, reason, opId) => json("POST", `${INTERNAL}/${id(gameId)}/stop`, { opId, body: { reason } }),
  patch: (gameId, imageRef, opId) => json("POST", `${INTERNAL}/${id(gameId)}/patch`, { opId, body: { image_ref: imageRef } }),
  cleanup: (gameId, opId) => json("DELETE", `${INTERNAL}/${id(gameId)}/container`, { opId }),
};

/**
 * The fleet comes from the event stream: its snapshot is every record
 * (camelCase, with health, restarts, held generation and lost node, which the
 * contract's list lacks) at a cursor, and the events after that cursor follow
 * on the same connection, so the list and the live updates never miss or
 * repeat a change. One request for the whole fleet.
 */
export const fleetStreamPath = () => `${EXT}/events`;
export const gameStreamPath = (gameId) => `${EXT}/events?game_id=${id(gameId)}`;
