/**
 * `rtmctl get <game>`: every field of the record and of the declaration
 * behind it, so the on-call never needs -o json to see a held generation, a
 * lost node or the previous image. The label tables are keyed by the wire
 * types, so a field added to either becomes a compile error here until it
 * has its line.
 */
import type { ExtRuntimeView } from "../client/index.js";
import { age, fields } from "./format.js";

type RecordView = NonNullable<ExtRuntimeView["record"]>;
type DeclarationView = NonNullable<ExtRuntimeView["declaration"]>;
type Value = string | number | boolean | null | undefined;
type Line = [string, Value];

const when = (iso: string | null | undefined, now: number): string | null => (iso ? `${iso} (${age(iso, now)} ago)` : null);
const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));

/** The record's fields in the order an on-call reads them; `null` leaves a field to a combined line. */
const RECORD_LINES: { [K in keyof RecordView]-?: ((r: RecordView, now: number) => Line) | null } = {
  gameId: null,
  status: (r) => ["status", r.status],
  health: (r) => ["health", `${r.health}${r.consecutiveProbeFailures ? ` (${r.consecutiveProbeFailures} probe failures in a row)` : ""}`],
  consecutiveProbeFailures: null,
  lastProbeAt: (r, now) => ["last probe", when(r.lastProbeAt, now)],
  currentImageRef: (r) => ["image", r.currentImageRef],
  previousImageRef: (r) => ["previous image", r.previousImageRef],
  observedGeneration: (r) => ["observed generation", r.observedGeneration],
  heldGeneration: (r) => ["held generation", r.heldGeneration === null ? null : `${r.heldGeneration} (its patch rolled back; a new declaration lifts it)`],
  rolloutStartedAt: (r, now) => ["health gate open since", when(r.rolloutStartedAt, now)],
  degraded: (r) => ["degraded", r.degraded ? "yes: a rollback failed, the runtime needs a human" : "no"],
  restartCount: (r) => ["restarts", r.restartCount],
  lastExitCode: (r) => ["last exit code", r.lastExitCode],
  lastErrorCode: (r) => ["last error", r.lastErrorCode ? `${r.lastErrorCode}: ${r.lastErrorMessage ?? ""}` : null],
  lastErrorMessage: null,
  lastErrorGeneration: (r) => ["last error generation", r.lastErrorGeneration],
  lostNode: (r, now) => ["lost node", r.lostNode ? `${r.lostNode} (since ${when(r.lostNodeSince, now) ?? "?"})` : null],
  lostNodeSince: null,
  currentContainerId: (r) => ["container", r.currentContainerId],
  engineEndpoint: (r) => ["endpoint", r.engineEndpoint],
  dockerNetwork: (r) => ["network", r.dockerNetwork],
  statePath: (r) => ["state path", r.statePath],
  startedAt: (r, now) => ["started", when(r.startedAt, now)],
  stoppedAt: (r, now) => ["stopped", when(r.stoppedAt, now)],
  removedAt: (r, now) => ["removed", when(r.removedAt, now)],
  lastOpAt: (r, now) => ["last op", when(r.lastOpAt, now)],
  createdAt: (r, now) => ["record created", when(r.createdAt, now)],
  updatedAt: (r, now) => ["record updated", when(r.updatedAt, now)],
};

const DECLARATION_LINES: { [K in keyof DeclarationView]-?: ((d: DeclarationView, now: number) => Line) | null } = {
  gameId: null,
  desiredState: (d) => ["desired", `${d.desiredState}${d.stopReason ? ` (${d.stopReason})` : ""}`],
  stopReason: null,
  imageRef: (d) => ["declared image", d.imageRef],
  generation: (d) => ["generation", d.generation],
  restartPolicy: (d) => ["restart policy", d.restartPolicy],
  resources: (d) => ["resources", json(d.resources)],
  env: (d) => ["env", json(d.env)],
  restartToken: (d) => ["restart token", d.restartToken],
  opId: (d) => ["declared by op", d.opId ? `${d.opId} (${d.opSource ?? "?"})` : null],
  opSource: null,
  createdAt: (d, now) => ["declared", when(d.createdAt, now)],
  updatedAt: (d, now) => ["declaration updated", when(d.updatedAt, now)],
};

function linesOf<T>(table: Record<string, ((v: T, now: number) => Line) | null>, value: T, now: number): Line[] {
  return Object.values(table).flatMap((f) => (f ? [f(value, now)] : []));
}

export function showRuntime(view: ExtRuntimeView, now: number): string {
  const lines: Line[] = [["game", view.gameId]];
  if (view.record) lines.push(...linesOf(RECORD_LINES, view.record, now));
  else lines.push(["status", "(no record yet)"]);
  if (view.declaration) lines.push(...linesOf(DECLARATION_LINES, view.declaration, now));
  else lines.push(["desired", view.declarationError ? "(invalid declaration)" : "(no declaration)"]);
  if (view.declarationError) lines.push(["declaration error", `${view.declarationError.code}: ${view.declarationError.message}`]);
  return fields(lines);
}
