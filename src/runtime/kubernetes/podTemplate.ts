/**
 * RTMANAGER_POD_TEMPLATE_FILE: the scheduling settings of game Pods, from a
 * file (a mounted ConfigMap). Only these keys: everything else about the Pod
 * (security context, probes, volumes, labels) is the controller's, so an
 * override can neither break the `restricted` Pod Security level nor hide a
 * Pod from its selector.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import type { PodTemplateOverrides } from "./manifests.js";

const TolerationSchema = z
  .object({
    key: z.string().optional(),
    operator: z.enum(["Exists", "Equal"]).optional(),
    value: z.string().optional(),
    effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .strict();

export const PodTemplateSchema = z
  .object({
    nodeSelector: z.record(z.string(), z.string()).optional(),
    tolerations: z.array(TolerationSchema).optional(),
    priorityClassName: z.string().min(1).optional(),
    serviceAccountName: z.string().min(1).optional(),
    imagePullSecrets: z.array(z.string().min(1)).optional(),
  })
  .strict();

export function parsePodTemplate(text: string, where: string): PodTemplateOverrides {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    throw new Error(`${where}: not JSON or YAML: ${String(err)}`);
  }
  const parsed = PodTemplateSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${where}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** The overrides in `file`, or none when no file is configured. Throws naming the setting. */
export function loadPodTemplate(file: string): PodTemplateOverrides {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`RTMANAGER_POD_TEMPLATE_FILE: cannot read ${file}: ${String(err)}`);
  }
  return parsePodTemplate(text, `RTMANAGER_POD_TEMPLATE_FILE ${file}`);
}
