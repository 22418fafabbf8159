// Fused attention at SegVol's shapes, in f32, then in f16 (q, k, v and the
// output stored in f16, scores and softmax in f32: rows named `… f16`).
import { attention } from "../src/kernels/attention.js";
import type { Precision } from "../src/kernels/precision.js";
import type { BenchCase } from "./harness.js";
import { filled } from "./inputs.js";

/** 4·B·H·Nq·Nk·d flops (QKᵀ and PV, multiply-adds counted as 2). */
function attnCase(p: Precision, op: string, B: number, Nq: number, Nk: number, H: number, d: number, causal = false, runs = 5): BenchCase {
  return {
    op: p === "f32" ? op : `${op} ${p}`,
    precision: p,
    shape: `B${B} H${H} Nq${Nq} Nk${Nk} d${d}${causal ? " causal" : ""}`,
    runs,
    setup: () => {
      const q = filled([B, Nq, H * d], 1, p);
      const k = filled([B, Nk, H * d], 2, p);
      const v = filled([B, Nk, H * d], 3, p);
      return {
        run: () => attention(q, k, v, { numHeads: H, causal }).dispose(),
        flops: 4 * B * H * Nq * Nk * d,
        dispose: () => (q.dispose(), k.dispose(), v.dispose()),
      };
    },
  };
}

/** The cases at one precision. */
function precisionCases(p: Precision): BenchCase[] {
  return [
    // ViT self-attention (target ≥ 6 GFLOP/s).
    attnCase(p, "attention_vit", 1, 2048, 2048, 12, 64),
    // The demo model's ViT self-attention (512 tokens, 4 heads of 24).
    attnCase(p, "attention_vit_demo", 2, 512, 512, 4, 24),
    // Mask decoder: tokens → image and image → tokens (8 heads, 384/8 = 48), self-attn (768/8 = 96).
    attnCase(p, "attention_tok2img", 1, 10, 2048, 8, 48),
    attnCase(p, "attention_img2tok", 1, 2048, 10, 8, 48),
    attnCase(p, "attention_dec_self", 1, 10, 10, 8, 96),
    // CLIP text tower: causal, 8 heads × ~12 tokens × 64.
    attnCase(p, "attention_clip", 1, 12, 12, 8, 64, true),
  ];
}

export const cases: BenchCase[] = [...precisionCases("f32"), ...precisionCases("f16")];
