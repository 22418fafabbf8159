// Backward of SegVol's convolution-like ops at full size: the mask decoder's
// two output_upscaling ConvTranspose3d (dx + dW + dbias: two GEMMs the size
// of the forward's), the image encoder's patch embedding on one
// [32, 256, 256] window (dW + dbias; the image needs no gradient), and the
// trilinear upsampling of the logits (64×64 → 256×256 in-plane).
import { convTranspose3dBackward } from "../src/kernels/conv_transpose3d.js";
import { patchEmbedBackward } from "../src/kernels/patch_embed.js";
import { resize3dBackward } from "../src/kernels/resample.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

function convT(cin: number, cout: number, d: number, h: number, w: number): BenchCase {
  return {
    op: "convTranspose3d backward",
    shape: `${cin}->${cout} k2s2 on [1,${cin},${d},${h},${w}]`,
    runs: 5,
    setup: () => {
      const x = Tensor.zeros([1, cin, d, h, w]);
      const wt = Tensor.zeros([cin, cout, 2, 2, 2]);
      const dy = Tensor.zeros([1, cout, 2 * d, 2 * h, 2 * w]);
      return {
        run: () => {
          const g = convTranspose3dBackward(x, wt, dy);
          g.dx.dispose();
          g.dw.dispose();
          g.dbias.dispose();
        },
        // dx and dW: each a GEMM of the forward's size.
        flops: 2 * 2 * cin * cout * 8 * d * h * w,
        dispose: () => (x.dispose(), wt.dispose(), dy.dispose()),
      };
    },
  };
}

function patch(needInput: boolean): BenchCase {
  return {
    op: `patchEmbed backward${needInput ? " (with dx)" : ""}`,
    shape: "[1,1,32,256,256] patch [4,16,16] -> 768",
    runs: 5,
    setup: () => {
      const x = Tensor.zeros([1, 1, 32, 256, 256]);
      const w = Tensor.zeros([768, 1024]);
      const dy = Tensor.zeros([1, 2048, 768]);
      return {
        run: () => {
          const g = patchEmbedBackward(x, w, dy, [4, 16, 16], needInput);
          g.dw.dispose();
          g.dbias.dispose();
          g.dx?.dispose();
        },
        flops: (needInput ? 2 : 1) * 2 * 2048 * 1024 * 768,
        dispose: () => (x.dispose(), w.dispose(), dy.dispose()),
      };
    },
  };
}

export const cases: BenchCase[] = [
  convT(768, 192, 8, 16, 16),
  convT(192, 96, 16, 32, 32),
  patch(false),
  patch(true),
  {
    op: "resize3d backward (trilinear)",
    shape: "dy 1x1x32x256x256 -> dx 1x1x32x64x64",
    setup: () => {
      const dy = Tensor.zeros([1, 1, 32, 256, 256]);
      return {
        run: () => resize3dBackward(dy, [1, 1, 32, 64, 64], "trilinear").dispose(),
        bytes: 4 * (32 * 256 * 256 + 32 * 64 * 64),
        dispose: () => dy.dispose(),
      };
    },
  },
  {
    op: "resize3d backward (trilinear, align_corners)",
    shape: "dy 1x1x32x256x256 -> dx 1x1x32x64x64",
    setup: () => {
      const dy = Tensor.zeros([1, 1, 32, 256, 256]);
      return {
        run: () => resize3dBackward(dy, [1, 1, 32, 64, 64], "trilinear", true).dispose(),
        bytes: 4 * (32 * 256 * 256 + 32 * 64 * 64),
        dispose: () => dy.dispose(),
      };
    },
  },
];
