import { defineConfig } from "vitest/config";

/** Tests that restart the shared dockerd; scripts/test.sh runs them alone, after the main suite. */
export default defineConfig({
  test: {
    include: ["test/disruptive/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
});
