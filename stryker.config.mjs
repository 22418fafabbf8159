// Mutation testing of the CPU-side code (`npm run mutate`; docs/testing.md
// records the scores and the surviving mutants). One module at a time:
//   npx stryker run --mutate src/io/npy.ts
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner"],
  vitest: { configFile: "vitest.mutate.config.ts" },
  mutate: [
    "src/io/*.ts",
    "src/weights/*.ts",
    "src/segvol/pipeline/{windows,prompts,percentile,resize,preprocess,segment}.ts",
    "src/segvol/tokenizer.ts",
    "src/segvol/categories.ts",
    "src/cli/{parse,help}.ts",
  ],
  coverageAnalysis: "perTest",
  // Mutants of module-level code (constants, tables) run every test and took
  // four fifths of the time; they are left out (docs/testing.md).
  ignoreStatic: true,
  concurrency: 2,
  timeoutMS: 10_000,
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  tempDirName: ".stryker-tmp",
  // Other runs' sandboxes (a per-run tempDirName, docs/testing.md) are not copied into this one.
  ignorePatterns: ["dist", "bench", "segvol-demo", "coverage", "reports", ".stryker-tmp*"],
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  cleanTempDir: "always",
};
