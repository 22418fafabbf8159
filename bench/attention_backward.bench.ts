// Backward kernels of attention, LayerNorm and softmax at SegVol sizes.
import { attention, attentionBackward } from "../src/kernels/attention.js";
import { layerNormBackward } from "../src/kernels/layernorm.js";
import { softmax, softmaxBackward } from "../src/kernels/softmax.js";
import type { BenchCase } from "./harness.js";
import { filled } from "./inputs.js";


/**
 * Flops actually executed (multiply-adds as 2): per query-key pair the
 * backward evaluates the score three times (logsumexp walk, dq walk, dk/dv
 * walk: 3·dk), dO·v twice (2·dv), and accumulates dq, dk (2·dk) and dv (dv).
 */
function attnBwdCase(op: string, B: number, Nq: number, Nk: number, H: number, d: number, causal = false, runs = 5): BenchCase {
  return {
    op,
    shape: `B${B} H${H} Nq${Nq} Nk${Nk} d${d}${causal ? " causal" : ""}`,
    runs,
    warmup: 1,
    setup: () => {
      const q = filled([B, Nq, H * d], 1);
      const k = filled([B, Nk, H * d], 2);
      const v = filled([B, Nk, H * d], 3);
      const dO = filled([B, Nq, H * d], 4);
      const out = attention(q, k, v, { numHeads: H, causal });
      return {
        run: () => {
          const g = attentionBackward(q, k, v, out, dO, { numHeads: H, causal });
          g.dq.dispose();
          g.dk.dispose();
          g.dv.dispose();
        },
        flops: 2 * (5 * d + 3 * d) * B * H * Nq * Nk,
        dispose: () => [q, k, v, dO, out].forEach((t) => t.dispose()),
      };
    },
  };
}

function lnBwdCase(op: string, xShape: number[], wShape: number[]): BenchCase {
  return {
    op,
    shape: `x ${xShape.join("x")} over ${wShape.join("x")}`,
    setup: () => {
      const x = filled(xShape, 5);
      const w = filled(wShape, 6);
      const dy = filled(xShape, 7);
      return {
        run: () => {
          const g = layerNormBackward(x, w, dy);
          g.dx.dispose();
          g.dweight.dispose();
          g.dbias.dispose();
        },
        // Minimum traffic: read x, dy, w; write dx, dweight, dbias.
        bytes: 4 * (3 * x.size + 3 * w.size),
        dispose: () => [x, w, dy].forEach((t) => t.dispose()),
      };
    },
  };
}

export const cases: BenchCase[] = [
  // ViT self-attention backward: 12 heads × 2048 × 64.
  attnBwdCase("attention_bwd_vit", 1, 2048, 2048, 12, 64, false, 3),
  // Mask decoder cross-attention, both directions (8 heads × 48).
  attnBwdCase("attention_bwd_tok2img", 1, 10, 2048, 8, 48),
  attnBwdCase("attention_bwd_img2tok", 1, 2048, 10, 8, 48),
  lnBwdCase("layernorm_bwd", [2048, 768], [768]),
  // SegVol's output_upscaling.1: one norm over a whole 192×16×32×32 block.
  lnBwdCase("layernorm_bwd_block", [1, 192, 16, 32, 32], [192, 16, 32, 32]),
  {
    op: "softmax_bwd",
    shape: "6144x2048 rows of 2048",
    runs: 3,
    setup: () => {
      const y = softmax(filled([6144, 2048], 8));
      const dy = filled([6144, 2048], 9);
      return { run: () => softmaxBackward(y, dy).dispose(), bytes: 4 * 3 * y.size, dispose: () => (y.dispose(), dy.dispose()) };
    },
  },
];
