import { cast } from "../src/kernels/layout.js";
import { resize3d } from "../src/kernels/resample.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

export const cases: BenchCase[] = [
  {
    // SegVol's logits upsampling (spec §4 step 8).
    op: "resize3d_trilinear",
    shape: "1x1x16x64x64 -> 32x256x256",
    setup: () => {
      const x = Tensor.zeros([1, 1, 16, 64, 64]);
      return { run: () => resize3d(x, [32, 256, 256], "trilinear").dispose(), bytes: 4 * (x.size + 32 * 256 * 256), dispose: () => x.dispose() };
    },
  },
  {
    // The same in f16 (2 bytes an element).
    op: "resize3d_trilinear f16",
    precision: "f16",
    shape: "1x1x16x64x64 -> 32x256x256",
    setup: () => {
      const x = cast(Tensor.zeros([1, 1, 16, 64, 64]), "f16");
      return { run: () => resize3d(x, [32, 256, 256], "trilinear").dispose(), bytes: 2 * (x.size + 32 * 256 * 256), dispose: () => x.dispose() };
    },
  },
  {
    op: "resize3d_nearest-exact",
    shape: "400x512x512 -> 32x256x256",
    runs: 5,
    setup: () => {
      const x = Tensor.zeros([400, 512, 512]);
      return { run: () => resize3d(x, [32, 256, 256], "nearest-exact").dispose(), bytes: 4 * 2 * 32 * 256 * 256, dispose: () => x.dispose() };
    },
  },
  {
    op: "resize3d_trilinear",
    shape: "400x512x512 -> 32x256x256",
    runs: 5,
    setup: () => {
      const x = Tensor.zeros([400, 512, 512]);
      return { run: () => resize3d(x, [32, 256, 256], "trilinear").dispose(), bytes: 4 * 9 * 32 * 256 * 256, dispose: () => x.dispose() };
    },
  },
  {
    op: "resize3d_nearest",
    shape: "32x256x256 -> 400x512x512",
    runs: 5,
    setup: () => {
      const x = Tensor.zeros([32, 256, 256]);
      return { run: () => resize3d(x, [400, 512, 512], "nearest").dispose(), bytes: 4 * 400 * 512 * 512, dispose: () => x.dispose() };
    },
  },
];
