// SegVol's convolution shapes: the two output_upscaling ConvTranspose3d
// (kernel 2, stride 2) of the mask decoder, the image encoder's patch
// embedding on one [32, 256, 256] window, and a generic 3×3×3 Conv3d; each
// in f32 and in f16 (f16 storage, f32 sums: src/kernels/precision.ts).
import { conv3d } from "../src/kernels/conv3d.js";
import { convTranspose3d } from "../src/kernels/conv_transpose3d.js";
import { patchEmbed } from "../src/kernels/patch_embed.js";
import type { Precision } from "../src/kernels/precision.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

/** A case on zero tensors of `shapes` (input, weight, bias) in `dtype`, running `op` on them. */
function convCase(dtype: Precision, op: string, shape: string, shapes: number[][], run: (t: Tensor[]) => Tensor, flops: number): BenchCase {
  return {
    op,
    precision: dtype,
    shape: `${shape} ${dtype}`,
    setup: () => {
      const t = shapes.map((s) => Tensor.zeros(s, dtype));
      return { run: () => run(t).dispose(), flops, dispose: () => t.forEach((x) => x.dispose()) };
    },
  };
}

function convT(dtype: Precision, cin: number, cout: number, d: number, h: number, w: number): BenchCase {
  const shapes = [[1, cin, d, h, w], [cin, cout, 2, 2, 2], [cout]];
  const run = ([x, wt, b]: Tensor[]) => convTranspose3d(x!, wt!, b!);
  return convCase(dtype, "convTranspose3d", `${cin}->${cout} k2s2 on [1,${cin},${d},${h},${w}]`, shapes, run, 2 * cin * cout * 8 * d * h * w);
}

function casesIn(dtype: Precision): BenchCase[] {
  return [
    convT(dtype, 768, 192, 8, 16, 16),
    convT(dtype, 192, 96, 16, 32, 32),
    convCase(dtype, "patchEmbed", "[1,1,32,256,256] patch [4,16,16] -> 768", [[1, 1, 32, 256, 256], [768, 1024], [768]],
      ([x, w, b]) => patchEmbed(x!, w!, b!, [4, 16, 16]), 2 * 2048 * 1024 * 768),
    convCase(dtype, "conv3d", "32->32 k3 p1 on [1,32,16,32,32]", [[1, 32, 16, 32, 32], [32, 32, 3, 3, 3], [32]],
      ([x, w, b]) => conv3d(x!, w!, b!, { padding: 1 }), 2 * 32 * 32 * 27 * 16 * 32 * 32),
  ];
}

const f16 = casesIn("f16");
/** Each shape's f32 row, then its f16 row (skipped where the adapter lacks shader-f16). */
export const cases: BenchCase[] = casesIn("f32").flatMap((c, i) => [c, f16[i]!]);
