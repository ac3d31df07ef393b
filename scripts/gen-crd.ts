/**
 * Writes deploy/crd/gameruntime.yaml from src/crd/schema.ts.
 * Run after changing RuntimeSpecSchema: `npx tsx scripts/gen-crd.ts`
 * (test/unit/crd-schema.test.ts fails until the committed file matches).
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gameRuntimeCrdYaml } from "../src/crd/schema.js";

export const CRD_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../deploy/crd/gameruntime.yaml");

await writeFile(CRD_PATH, gameRuntimeCrdYaml());
console.log(`wrote ${path.relative(process.cwd(), CRD_PATH)}`);
