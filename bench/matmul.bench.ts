// matmul at SegVol's sizes: the ViT's Linear layers (2048 tokens, width 768,
// qkv 2304, MLP 3072) and one batched product shaped like per-head attention;
// then backward products of a demo training step whose outputs are narrow
// (the tile choice matters most there): the hypernetwork's input gradient
// (1×12 outputs over 32768 voxels, 4 prompt sets) and a 96×96 weight
// gradient over 512 tokens.
import { matmul, type MatmulOptions } from "../src/kernels/matmul.js";
import type { BenchCase } from "./harness.js";
import { filled } from "./inputs.js";


/** A Linear layer x[M, K] · W[N, K]ᵀ + b. */
function linear(M: number, K: number, N: number, act: MatmulOptions["act"] = "none"): BenchCase {
  return {
    op: act === "none" ? "linear" : `linear+${act}`,
    shape: `${M}x${K}x${N}`,
    setup: () => {
      const x = filled([M, K], 1);
      const w = filled([N, K], 2);
      const b = filled([N], 3);
      return {
        run: () => matmul(x, w, { transB: true, bias: b, act }).dispose(),
        flops: 2 * M * N * K,
        dispose: () => (x.dispose(), w.dispose(), b.dispose()),
      };
    },
  };
}

/** A gradient-shaped product a[batch, M, K] · b[batch, N, K]ᵀ (both contiguous along K). */
function narrow(batch: number, M: number, N: number, K: number): BenchCase {
  return {
    op: "matmul_narrow",
    shape: `${batch}x(${M}x${K})·(${N}x${K})ᵀ`,
    setup: () => {
      const a = filled([batch, M, K], 6);
      const b = filled([batch, N, K], 7);
      return {
        run: () => matmul(a, b, { transB: true }).dispose(),
        flops: 2 * batch * M * N * K,
        dispose: () => (a.dispose(), b.dispose()),
      };
    },
  };
}

export const cases: BenchCase[] = [
  linear(2048, 768, 768),
  linear(2048, 768, 2304),
  linear(2048, 768, 3072, "gelu"),
  linear(2048, 3072, 768),
  {
    op: "matmul_batched",
    shape: "12x(512x64)·(512x64)ᵀ",
    setup: () => {
      const q = filled([12, 512, 64], 4);
      const k = filled([12, 512, 64], 5);
      return {
        run: () => matmul(q, k, { transB: true }).dispose(),
        flops: 2 * 12 * 512 * 512 * 64,
        dispose: () => (q.dispose(), k.dispose()),
      };
    },
  },
  narrow(4, 1, 12, 32768),
  {
    op: "matmul_weight_grad",
    shape: "(512x96)ᵀ·(512x96)",
    setup: () => {
      const x = filled([512, 96], 8);
      const dy = filled([512, 96], 9);
      return {
        run: () => matmul(x, dy, { transA: true }).dispose(),
        flops: 2 * 96 * 96 * 512,
        dispose: () => (x.dispose(), dy.dispose()),
      };
    },
  },
];
