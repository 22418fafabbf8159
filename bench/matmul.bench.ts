// matmul at SegVol's sizes: the ViT's Linear layers (2048 tokens, width 768,
// qkv 2304, MLP 3072) and one batched product shaped like per-head attention;
// then backward products of a demo training step whose outputs are narrow
// (the tile choice matters most there): the hypernetwork's input gradient
// (1×12 outputs over 32768 voxels, 4 prompt sets) and a 96×96 weight
// gradient over 512 tokens. Each runs in f32, then in f16 (operands, bias
// and output stored in f16, arithmetic in f32: rows named `… f16`).
import { matmul, type MatmulOptions } from "../src/kernels/matmul.js";
import type { Precision } from "../src/kernels/precision.js";
import type { BenchCase } from "./harness.js";
import { filled } from "./inputs.js";

/** The op's name in the table: f32 rows keep their names, f16 rows add ` f16`. */
const named = (op: string, p: Precision) => (p === "f32" ? op : `${op} ${p}`);

/** A Linear layer x[M, K] · W[N, K]ᵀ + b. */
function linear(p: Precision, M: number, K: number, N: number, act: MatmulOptions["act"] = "none"): BenchCase {
  return {
    op: named(act === "none" ? "linear" : `linear+${act}`, p),
    precision: p,
    shape: `${M}x${K}x${N}`,
    setup: () => {
      const x = filled([M, K], 1, p);
      const w = filled([N, K], 2, p);
      const b = filled([N], 3, p);
      return {
        run: () => matmul(x, w, { transB: true, bias: b, act }).dispose(),
        flops: 2 * M * N * K,
        dispose: () => (x.dispose(), w.dispose(), b.dispose()),
      };
    },
  };
}

/** A product a[batch, M, K] (or [batch, K, M] with transA) · b[batch, N, K]ᵀ (or [batch, K, N]). */
function product(p: Precision, op: string, shape: string, seed: number, batch: number[], aShape: [number, number], bShape: [number, number], opts: MatmulOptions, flops: number): BenchCase {
  return {
    op: named(op, p),
    precision: p,
    shape,
    setup: () => {
      const a = filled([...batch, ...aShape], seed, p);
      const b = filled([...batch, ...bShape], seed + 1, p);
      return {
        run: () => matmul(a, b, opts).dispose(),
        flops,
        dispose: () => (a.dispose(), b.dispose()),
      };
    },
  };
}

/** The cases at one precision. */
function precisionCases(p: Precision): BenchCase[] {
  return [
    linear(p, 2048, 768, 768),
    linear(p, 2048, 768, 2304),
    linear(p, 2048, 768, 3072, "gelu"),
    linear(p, 2048, 3072, 768),
    product(p, "matmul_batched", "12x(512x64)·(512x64)ᵀ", 4, [12], [512, 64], [512, 64], { transB: true }, 2 * 12 * 512 * 512 * 64),
    // A gradient-shaped product, both operands contiguous along K.
    product(p, "matmul_narrow", "4x(1x32768)·(12x32768)ᵀ", 6, [4], [1, 32768], [12, 32768], { transB: true }, 2 * 4 * 1 * 12 * 32768),
    product(p, "matmul_weight_grad", "(512x96)ᵀ·(512x96)", 8, [], [512, 96], [512, 96], { transA: true }, 2 * 96 * 96 * 512),
  ];
}

export const cases: BenchCase[] = [...precisionCases("f32"), ...precisionCases("f16")];
