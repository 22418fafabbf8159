import { attention } from "../src/kernels/attention.js";
import type { BenchCase } from "./harness.js";
import { filled } from "./inputs.js";


/** 4·B·H·Nq·Nk·d flops (QKᵀ and PV, multiply-adds counted as 2). */
function attnCase(op: string, B: number, Nq: number, Nk: number, H: number, d: number, causal = false, runs = 5): BenchCase {
  return {
    op,
    shape: `B${B} H${H} Nq${Nq} Nk${Nk} d${d}${causal ? " causal" : ""}`,
    runs,
    setup: () => {
      const q = filled([B, Nq, H * d], 1);
      const k = filled([B, Nk, H * d], 2);
      const v = filled([B, Nk, H * d], 3);
      return {
        run: () => attention(q, k, v, { numHeads: H, causal }).dispose(),
        flops: 4 * B * H * Nq * Nk * d,
        dispose: () => (q.dispose(), k.dispose(), v.dispose()),
      };
    },
  };
}

export const cases: BenchCase[] = [
  // ViT self-attention (target ≥ 6 GFLOP/s).
  attnCase("attention_vit", 1, 2048, 2048, 12, 64),
  // The demo model's ViT self-attention (512 tokens, 4 heads of 24).
  attnCase("attention_vit_demo", 2, 512, 512, 4, 24),
  // Mask decoder: tokens → image and image → tokens (8 heads, 384/8 = 48), self-attn (768/8 = 96).
  attnCase("attention_tok2img", 1, 10, 2048, 8, 48),
  attnCase("attention_img2tok", 1, 2048, 10, 8, 48),
  attnCase("attention_dec_self", 1, 10, 10, 8, 96),
  // CLIP text tower: causal, 8 heads × ~12 tokens × 64.
  attnCase("attention_clip", 1, 12, 12, 8, 64, true),
];
