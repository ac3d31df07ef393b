import { defineConfig } from "vitest/config";

/**
 * `npm run e2e:cluster`: the shared behavioural suite (test/integration/runtime-behaviour.test.ts)
 * with its Pod fixture on whatever $KUBECONFIG names, engines from RTMANAGER_E2E_IMAGE_REPO
 * (docs/kubernetes.md, "Conformance run on a real cluster"). Prints each scenario and writes
 * e2e-cluster-report.json.
 */
export default defineConfig({
  test: {
    include: ["test/integration/runtime-behaviour.test.ts"],
    env: { RTMANAGER_E2E_CLUSTER: "1" },
    pool: "forks",
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 300_000,
    reporters: ["verbose", ["json", { outputFile: "e2e-cluster-report.json" }]],
  },
});
