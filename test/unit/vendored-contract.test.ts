/**
 * The tests read the internal contract from contract/internal-openapi.yaml so
 * the repository is complete on its own; the law is
 * ../shared/contract/internal-openapi.yaml, and the copy must be it, byte for
 * byte, whenever the shared checkout is present.
 */
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONTRACT_PATH, SHARED_CONTRACT_PATH, contractOperations } from "../helpers/contract.js";

describe("vendored internal contract", () => {
  it("is present and describes the contract's paths", () => {
    const templates = new Set(contractOperations().map((o) => o.template));
    expect(templates).toContain("/api/v1/internal/runtimes/{game_id}/start");
    expect(templates).toContain("/healthz");
  });

  it.runIf(existsSync(SHARED_CONTRACT_PATH))("is byte-identical to ../shared/contract/internal-openapi.yaml (copy it over when this fails)", () => {
    const vendored = readFileSync(CONTRACT_PATH);
    const shared = readFileSync(SHARED_CONTRACT_PATH);
    expect(vendored.equals(shared), `cp ${SHARED_CONTRACT_PATH} ${CONTRACT_PATH}`).toBe(true);
  });
});
