import { homedir } from "node:os";
import { join } from "node:path";
import { configDefaults, defineConfig } from "vitest/config";

/** Checks that a lane project's device has the subgroup size it asked for. */
const LANES_CHECK = "test/kernels/subgroup_lanes.test.ts";
const kernel = (name: string) => (name.includes("/") ? `test/${name}.test.ts` : `test/kernels/${name}.test.ts`);

/**
 * Kernel goldens rerun at other subgroup sizes. Kernels choose their variant
 * from the adapter's subgroup size (src/kernels/subgroups.ts, matmul.ts,
 * conv_gemm.ts), and lavapipe's subgroups are LP_NATIVE_VECTOR_WIDTH / 32
 * lanes (8 by default), read when the device is created; each project runs
 * in its own process. The default project (8 lanes) runs every subgroup
 * variant. At 4 lanes: the portable softmax, LayerNorm and attention kernels
 * and their backward kernels (what every GPU without exactly 8-lane
 * subgroups runs), matmul without
 * subgroups and the conv GEMM's 4-lane broadcast. At 16 lanes: matmul's and
 * the conv GEMM's broadcasts inside wider subgroups, and the portable softmax
 * chosen for them. (Above 512 bits lavapipe reports 32 or 64 lanes but its
 * shaders still run 16-lane subgroups: test/kernels/subgroup_lanes.test.ts
 * checks both.) Other GPUs ignore the variable and rerun their own variants.
 */
const LANE_PROJECTS = [
  // train/attention_grad: the attention and LayerNorm backward kernels' goldens.
  { lanes: 4, files: ["layernorm", "softmax", "attention", "matmul", "conv3d", "conv_transpose3d", "patch_embed", "train/attention_grad"] },
  { lanes: 16, files: ["softmax", "matmul", "conv3d", "conv_transpose3d", "patch_embed"] },
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
          env: { LP_NATIVE_VECTOR_WIDTH: String(32 * lanes), MESA_SHADER_CACHE_DIR: shaderCache(lanes) },
        },
      })),
    ],
  },
});
