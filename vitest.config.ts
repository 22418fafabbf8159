import { defineConfig } from "vitest/config";

// GPU tests share one Dawn device per worker process; lavapipe has only two
// cores, so run test files one at a time to keep timings predictable.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
  },
});
