import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Restarts the shared dockerd: scripts/test.sh runs it alone, after everything else.
    exclude: ["test/disruptive/**", "node_modules/**"],
    // Integration files start their own PostgreSQL and containers; two at a time suits a 2-core machine.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 240_000,
  },
});
