/**
 * The contract's request bodies (components.schemas StartRequest, StopRequest,
 * PatchRequest), strict like its `additionalProperties: false`. Only types
 * and enums are checked here; what an image_ref or game_id may look like is
 * the operations layer's rule, so the CRD and SQL paths share it.
 */
import { z } from "zod";
import { STOP_REASONS } from "../model/status.js";

const imageRef = z.string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") });

export const StartRequestSchema = z.object({ image_ref: imageRef }).strict();

export const StopRequestSchema = z
  .object({
    reason: z.enum(STOP_REASONS, {
      error: (issue) => (issue.input === undefined ? "is required" : `must be one of ${STOP_REASONS.join(", ")}`),
    }),
  })
  .strict();

export const PatchRequestSchema = z.object({ image_ref: imageRef }).strict();

export type StartRequest = z.infer<typeof StartRequestSchema>;
export type StopRequest = z.infer<typeof StopRequestSchema>;
export type PatchRequest = z.infer<typeof PatchRequestSchema>;
