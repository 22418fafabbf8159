import { layerNorm } from "../src/kernels/layernorm.js";
import { softmax } from "../src/kernels/softmax.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

export const cases: BenchCase[] = [
  {
    // The ViT / decoder row norm (target ≤ 10 ms on this machine).
    op: "layernorm",
    shape: "2048x768",
    setup: () => {
      const x = Tensor.from(Float32Array.from({ length: 2048 * 768 }, (_, i) => Math.sin(i)), [2048, 768]);
      const w = Tensor.zeros([768]);
      const b = Tensor.zeros([768]);
      return { run: () => layerNorm(x, w, b).dispose(), bytes: 8 * x.size, dispose: () => (x.dispose(), w.dispose(), b.dispose()) };
    },
  },
  {
    // SegVol's output_upscaling.1: one mean/var over a whole 3.1M block.
    op: "layernorm_block",
    shape: "1x192x16x32x32 over 192x16x32x32",
    setup: () => {
      const x = Tensor.from(Float32Array.from({ length: 192 * 16 * 32 * 32 }, (_, i) => Math.sin(i)), [1, 192, 16, 32, 32]);
      const w = Tensor.zeros([192, 16, 32, 32]);
      const b = Tensor.zeros([192, 16, 32, 32]);
      return { run: () => layerNorm(x, w, b).dispose(), bytes: 16 * x.size, dispose: () => (x.dispose(), w.dispose(), b.dispose()) };
    },
  },
  {
    op: "softmax",
    shape: "4096x2048 (rows of 2048)",
    setup: () => {
      const x = Tensor.zeros([4096, 2048]);
      return { run: () => softmax(x).dispose(), bytes: 8 * x.size, dispose: () => x.dispose() };
    },
  },
];
