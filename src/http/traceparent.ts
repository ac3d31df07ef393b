/**
 * The W3C Trace Context `traceparent` request header
 * (https://www.w3.org/TR/trace-context/#traceparent-header), validated so a
 * caller's trace can be followed into our logs and operation log. rtmanager
 * only carries the caller's trace on: it starts no spans, so the header is
 * stored as received (lower-case, version 00 form).
 *
 * The internal contract does not mention the header, so it can never change
 * an answer: an invalid one is ignored, as the spec asks of a receiver that
 * cannot parse it ("the vendor MUST ... restart the trace"), not refused.
 */

export interface TraceParent {
  /** The header as stored: `00-<trace-id>-<parent-id>-<flags>`, 55 characters. */
  header: string;
  traceId: string;
  parentId: string;
  sampled: boolean;
}

const ALL_ZERO = /^0+$/;
/** version "-" trace-id "-" parent-id "-" trace-flags; lower-case hex only (§3.2.2). */
const VERSION_00 = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Null for anything the spec says to ignore: a missing or repeated header, the
 * invalid version ff, upper-case hex, an all-zero trace or parent id, and a
 * version-00 header of any other length. A higher version may append fields
 * after a `-` (§3.2.4.1): its first 55 characters are read as version 00.
 */
export function parseTraceParent(raw: string | string[] | undefined): TraceParent | null {
  // Node joins repeated unknown headers with ", ": two traceparents are not one trace.
  if (typeof raw !== "string") return null;
  const value = raw.trim();
  if (value.length < 55) return null;
  const version = value.slice(0, 2);
  if (version === "ff") return null;
  if (version === "00" ? value.length !== 55 : value.length > 55 && value[55] !== "-") return null;
  const m = VERSION_00.exec(value.slice(0, 55));
  if (!m) return null;
  const [, , traceId, parentId, flags] = m as unknown as [string, string, string, string, string];
  if (ALL_ZERO.test(traceId) || ALL_ZERO.test(parentId)) return null;
  const sampled = (parseInt(flags, 16) & 1) === 1;
  return { header: `00-${traceId}-${parentId}-${flags}`, traceId, parentId, sampled };
}

/** Fields every log line of a traced request carries. */
export function traceLogFields(trace: TraceParent | null): { traceId?: string; traceParent?: string } {
  return trace ? { traceId: trace.traceId, traceParent: trace.header } : {};
}

/** How long a mutation waits to store its trace before going on without it. */
export const TRACE_STORE_TIMEOUT_MS = 2000;

/**
 * Stores the trace of a mutation before it writes anything, so the loop's
 * operation-log rows for its op id find it. A trace is never worth failing
 * the operation for: a store that cannot take it within the bound is logged
 * and the operation goes on untraced.
 */
export async function rememberTrace(
  store: { recordTrace?(opId: string, traceParent: string): Promise<void> },
  opId: string,
  trace: TraceParent | null,
  logger: { warn(obj: object, msg: string): void },
): Promise<void> {
  if (!trace || !store.recordTrace) return;
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), TRACE_STORE_TIMEOUT_MS)));
  try {
    const outcome = await Promise.race([store.recordTrace(opId, trace.header).then(() => "stored" as const), bound]);
    if (outcome === "late") logger.warn({ ms: TRACE_STORE_TIMEOUT_MS }, "traceparent not stored in time; the operation goes on without it");
  } catch (err) {
    logger.warn({ err }, "traceparent not stored; the operation goes on without it");
  } finally {
    clearTimeout(timer);
  }
}
