import { configDefaults, defineConfig } from "vitest/config";

/**
 * The tests of the mutation run (stryker.config.mjs): those of the CPU-side
 * modules it mutates, none of which needs a GPU. The GPU cases of these
 * modules live in *_gpu.test.ts files; test/fuzz (slow) and the CLI tests
 * that spawn `segvol` (whose code runs outside Stryker's instrumented
 * process) are left out. MUTATE_EXCLUDE (comma-separated test files) leaves
 * out more: a test that fails for reasons outside the mutated module (another
 * module mid-change) would otherwise stop the run's initial test run.
 * MUTATE_INCLUDE (comma-separated test files or globs) runs only those, for a
 * run of one module: the initial test run then skips the other modules' tests.
 */
const only = process.env.MUTATE_INCLUDE?.split(",").filter(Boolean) ?? [];

export default defineConfig({
  test: {
    include: only.length > 0 ? only : [
      "test/io/*.test.ts",
      "test/weights/checkpoint.test.ts",
      "test/weights/hostile_checkpoint.test.ts",
      "test/weights/unpickle.test.ts",
      "test/weights/unpickle_ops.test.ts",
      "test/weights/zip_fields.test.ts",
      "test/weights/truncated.test.ts",
      "test/weights/checkpoint_open.test.ts",
      "test/weights/output_dir.test.ts",
      "test/weights/dtype.test.ts",
      "test/weights/safetensors.test.ts",
      "test/weights/convert.test.ts",
      "test/weights/inputs.test.ts",
      "test/pipeline/units.test.ts",
      "test/pipeline/pipeline.test.ts",
      "test/pipeline/errors.test.ts",
      "test/pipeline/sharing.test.ts",
      "test/pipeline/stored_type.test.ts",
      "test/pipeline/categories.test.ts",
      "test/pipeline/input_checks.test.ts",
      "test/pipeline/prompts.test.ts",
      "test/pipeline/segment_run.test.ts",
      "test/pipeline/percentile.test.ts",
      "test/pipeline/preprocess.test.ts",
      "test/pipeline/windows.test.ts",
      "test/pipeline/resize.test.ts",
      "test/segvol/tokenizer*.test.ts",
      // NIfTI and weights from bytes (src/io/nifti_bytes.ts, safetensors_reader.ts): no GPU, no browser.
      "test/browser/core.test.ts",
      "test/cli/help.test.ts",
      "test/cli/parse.test.ts",
    ],
    exclude: [...configDefaults.exclude, ...(process.env.MUTATE_EXCLUDE?.split(",").filter(Boolean) ?? [])],
    testTimeout: 60_000,
  },
});
