import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Restarts the shared dockerd: scripts/test.sh runs it alone, after everything else.
    // The Pod runtime against a real cluster runs only when there is one ($KUBECONFIG), like k8s.test.ts's block.
    exclude: ["test/disruptive/**", "node_modules/**", ...(process.env.KUBECONFIG ? [] : ["test/integration/pod-runtime-cluster.test.ts"])],
    // Integration files start their own PostgreSQL and containers; two at a time suits a 2-core machine.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 240_000,
  },
});
