import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Every file is collected: the real-cluster ones (pod-runtime-cluster.test.ts, k8s.test.ts's last block)
    // skip themselves with a reason when $KUBECONFIG is unset, so the closing line counts them as skipped.
    exclude: ["node_modules/**"],
    // Bounds every fetch that has no signal of its own (test/helpers/setup.ts).
    setupFiles: ["test/helpers/setup.ts"],
    // Removes the Docker networks this run's tests left behind, and names them (test/helpers/globalSetup.ts).
    globalSetup: ["test/helpers/globalSetup.ts"],
    // Integration files start their own PostgreSQL and containers; two at a time suits a 2-core machine.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 240_000,
  },
});
