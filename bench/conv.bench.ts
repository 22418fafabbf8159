// SegVol's convolution shapes: the two output_upscaling ConvTranspose3d
// (kernel 2, stride 2) of the mask decoder, the image encoder's patch
// embedding on one [32, 256, 256] window, and a generic 3×3×3 Conv3d.
import { conv3d } from "../src/kernels/conv3d.js";
import { convTranspose3d } from "../src/kernels/conv_transpose3d.js";
import { patchEmbed } from "../src/kernels/patch_embed.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

function convT(cin: number, cout: number, d: number, h: number, w: number): BenchCase {
  return {
    op: "convTranspose3d",
    shape: `${cin}->${cout} k2s2 on [1,${cin},${d},${h},${w}]`,
    setup: () => {
      const x = Tensor.zeros([1, cin, d, h, w]);
      const wt = Tensor.zeros([cin, cout, 2, 2, 2]);
      const b = Tensor.zeros([cout]);
      return {
        run: () => convTranspose3d(x, wt, b).dispose(),
        flops: 2 * cin * cout * 8 * d * h * w,
        dispose: () => (x.dispose(), wt.dispose(), b.dispose()),
      };
    },
  };
}

export const cases: BenchCase[] = [
  convT(768, 192, 8, 16, 16),
  convT(192, 96, 16, 32, 32),
  {
    op: "patchEmbed",
    shape: "[1,1,32,256,256] patch [4,16,16] -> 768",
    setup: () => {
      const x = Tensor.zeros([1, 1, 32, 256, 256]);
      const w = Tensor.zeros([768, 1024]);
      const b = Tensor.zeros([768]);
      return {
        run: () => patchEmbed(x, w, b, [4, 16, 16]).dispose(),
        flops: 2 * 2048 * 1024 * 768,
        dispose: () => (x.dispose(), w.dispose(), b.dispose()),
      };
    },
  },
  {
    op: "conv3d",
    shape: "32->32 k3 p1 on [1,32,16,32,32]",
    setup: () => {
      const x = Tensor.zeros([1, 32, 16, 32, 32]);
      const w = Tensor.zeros([32, 32, 3, 3, 3]);
      const b = Tensor.zeros([32]);
      return {
        run: () => conv3d(x, w, b, { padding: 1 }).dispose(),
        flops: 2 * 32 * 32 * 27 * 16 * 32 * 32,
        dispose: () => (x.dispose(), w.dispose(), b.dispose()),
      };
    },
  },
];
