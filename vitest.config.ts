import { homedir } from "node:os";
import { join } from "node:path";
import { configDefaults, defineConfig } from "vitest/config";

/** Checks that a lane project's device has the subgroup size it asked for. */
const LANES_CHECK = "test/kernels/subgroup_lanes.test.ts";
const kernel = (name: string) => (name.includes("/") ? `test/${name}.test.ts` : `test/kernels/${name}.test.ts`);

/**
 * Kernel goldens rerun at other subgroup sizes. Kernels choose their variant
 * from the device profile (src/kernels/profile.ts), and every golden case
 * runs over every variant the device offers (test/helpers/variants.ts);
 * lavapipe's subgroups are LP_NATIVE_VECTOR_WIDTH / 32 lanes (8 by default),
 * read when the device is created, so each project runs in its own process
 * and offers other variants. The default project (8 lanes): portable, 4-
 * and 8-lane broadcasts and one-row-a-workgroup kernels, and the fixed
 * 8-lane row kernels. At 4 lanes: the fixed 4-lane row kernels (16 rows a
 * workgroup) and the 4-lane broadcasts as the chooser picks them. At 16
 * lanes: 16-lane row kernels (4 rows a workgroup), attention sharing over
 * 16 lanes, and the GEMMs' 8-lane broadcasts inside wider subgroups.
 * (Above 512 bits lavapipe reports 32 or 64 lanes but its shaders still run
 * 16-lane subgroups: test/kernels/subgroup_lanes.test.ts checks both.)
 * Other GPUs ignore the variable and rerun their own variants.
 */
const KERNEL_FILES = ["layernorm", "softmax", "reduce", "attention", "matmul", "candidates", "conv3d", "conv_transpose3d", "patch_embed", "variants", "train/attention_grad", "train/conv_grad"];
const LANE_PROJECTS = [
  { lanes: 4, files: KERNEL_FILES },
  { lanes: 16, files: KERNEL_FILES },
];

/**
 * Mesa's shader disk cache does not key on LP_NATIVE_VECTOR_WIDTH: without a
 * cache of its own, a lane project would run binaries compiled for 8 lanes
 * (and the default project binaries compiled for 4).
 */
function shaderCache(lanes: number): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), `segvol-mesa-shader-cache-lanes-${lanes}`);
}

// GPU tests share one Dawn device per worker process; lavapipe has only two
// cores, so run test files one at a time to keep timings predictable.
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    setupFiles: ["test/helpers/yield_to_runner.ts"],
    projects: [
      { extends: true, test: { name: "default", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, LANES_CHECK] } },
      ...LANE_PROJECTS.map(({ lanes, files }) => ({
        extends: true as const,
        test: {
          name: `lanes-${lanes}`,
          include: [LANES_CHECK, ...files.map(kernel)],
          // SEGVOL_LANE_PROJECT: variants without subgroups ran in the default project (test/helpers/variants.ts).
          env: { LP_NATIVE_VECTOR_WIDTH: String(32 * lanes), MESA_SHADER_CACHE_DIR: shaderCache(lanes), SEGVOL_LANE_PROJECT: "1" },
        },
      })),
    ],
  },
});
