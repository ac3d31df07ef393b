/**
 * The quarantine extension endpoints (docs/ext-openapi.yaml):
 * GET /api/v1/ext/quarantines lists the active ones, POST
 * /api/v1/ext/quarantines/lift {"image_ref": ...} lifts one. An image
 * reference carries '/' and ':', so it travels in the body, not the path.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { Quarantine } from "../controller/quarantine.js";
import { checkImageRef } from "../controller/verbs.js";
import type { Logger } from "../log.js";
import { readJsonBody } from "./body.js";
import { sendJson } from "./respond.js";
import type { ExtQuarantine, ExtQuarantineList } from "./wire.js";

export interface QuarantineRouteDeps {
  list(): Promise<Quarantine[]>;
  lift(imageRef: string, liftedBy: string): Promise<Quarantine>;
}

const LiftRequestSchema = z.object({ image_ref: z.string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") }) }).strict();

const wire = (q: Quarantine): ExtQuarantine => ({ imageRef: q.imageRef, since: q.since.toISOString(), rollbacks: q.rollbacks, gameId: q.gameId, games: q.games });

export async function listQuarantines(res: ServerResponse, deps: QuarantineRouteDeps): Promise<void> {
  const items = (await deps.list()).map(wire);
  sendJson(res, 200, { items } satisfies ExtQuarantineList);
}

export async function liftQuarantine(req: IncomingMessage, res: ServerResponse, deps: QuarantineRouteDeps, liftedBy: string, logger: Logger): Promise<void> {
  const body = await readJsonBody(req, LiftRequestSchema);
  checkImageRef(body.image_ref);
  const lifted = await deps.lift(body.image_ref, liftedBy);
  logger.info({ imageRef: lifted.imageRef, liftedBy }, "quarantine lifted");
  sendJson(res, 200, wire(lifted));
}
