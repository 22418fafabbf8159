// Layout ops and reductions on a full-size 400×512×512 f32 volume (400 MiB,
// several storage bindings): the volume pipeline's crop, pad, axis swap and
// min/max/mean.
import { pad, permute, slice } from "../src/kernels/layout.js";
import { reduce } from "../src/kernels/reduce.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

const VOL = [400, 512, 512];
const N = 400 * 512 * 512;

function volumeCase(op: string, run: (x: Tensor) => Tensor, bytes: number): BenchCase {
  return {
    op,
    shape: "400x512x512 (400 MiB)",
    runs: 5,
    setup: () => {
      const x = Tensor.zeros(VOL);
      return { run: () => run(x).dispose(), bytes, dispose: () => x.dispose() };
    },
  };
}

export const cases: BenchCase[] = [
  {
    // Mask decoder: image tokens back to channels-first (spec §4 step 4).
    op: "permute_0_2_1",
    shape: "1x2048x768",
    setup: () => {
      const x = Tensor.zeros([1, 2048, 768]);
      return { run: () => permute(x, [0, 2, 1]).dispose(), bytes: 8 * x.size, dispose: () => x.dispose() };
    },
  },
  volumeCase("reduce_max_all", (x) => reduce("max", x), 4 * N),
  volumeCase("reduce_mean_all", (x) => reduce("mean", x), 4 * N),
  volumeCase("reduce_max_axis0", (x) => reduce("max", x, 0), 4 * N),
  volumeCase("slice_crop_380x480x450", (x) => slice(x, [10, 20, 30], [390, 500, 480]), 8 * 380 * 480 * 450),
  volumeCase("pad_8_each_side", (x) => pad(x, [[8, 8], [8, 8], [8, 8]]), 4 * N + 4 * 416 * 528 * 528),
  volumeCase("permute_swap_D_W", (x) => permute(x, [2, 1, 0]), 8 * N),
];
