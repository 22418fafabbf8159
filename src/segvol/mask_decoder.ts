// SegVol's mask decoder (spec §4): SAM's two-way transformer in 3-D, the
// transposed-convolution upscaling with one LayerNorm over the whole
// (C/4, 2d', 2h', 2w') block, the hypernetwork MLP of mask token 0 and the
// text similarity term, then the trilinear upsample to the window.
import { add, gelu } from "../kernels/elementwise.js";
import { convTranspose3d } from "../kernels/conv_transpose3d.js";
import { concat, permute, slice } from "../kernels/layout.js";
import { matmul } from "../kernels/matmul.js";
import { resize3d } from "../kernels/resample.js";
import { LayerNorm, Linear, Mlp, MultiHeadAttention, residual } from "../nn/layers.js";
import type { ParamStore } from "../nn/params.js";
import { scope } from "../tensor/scope.js";
import { Tensor } from "../tensor/tensor.js";
import type { SegVolConfig } from "./config.js";

const P = "mask_decoder";

class TwoWayBlock {
  constructor(
    readonly selfAttn: MultiHeadAttention,
    readonly norm1: LayerNorm,
    readonly crossT2I: MultiHeadAttention,
    readonly norm2: LayerNorm,
    readonly mlp: Mlp,
    readonly norm3: LayerNorm,
    readonly crossI2T: MultiHeadAttention,
    readonly norm4: LayerNorm,
    readonly skipFirstPe: boolean,
  ) {}

  static load(p: ParamStore, n: number, heads: number): TwoWayBlock {
    const pre = `${P}.transformer.layers.${n}`;
    return new TwoWayBlock(
      MultiHeadAttention.load(p, `${pre}.self_attn`, heads),
      LayerNorm.load(p, `${pre}.norm1`),
      MultiHeadAttention.load(p, `${pre}.cross_attn_token_to_image`, heads),
      LayerNorm.load(p, `${pre}.norm2`),
      Mlp.load(p, `${pre}.mlp`, ["lin1", "lin2"], "relu"),
      LayerNorm.load(p, `${pre}.norm3`),
      MultiHeadAttention.load(p, `${pre}.cross_attn_image_to_token`, heads),
      LayerNorm.load(p, `${pre}.norm4`),
      n === 0,
    );
  }

  /** One layer: returns the new (queries, keys); the inputs are not disposed. */
  forward(queries: Tensor, keys: Tensor, qpe: Tensor, kpe: Tensor): [Tensor, Tensor] {
    return scope(() => {
      let q: Tensor;
      if (this.skipFirstPe) {
        // Layer 0 replaces the queries by their self-attention: no residual, no PE.
        q = this.selfAttn.forward(queries, queries, queries);
      } else {
        const qq = add(queries, qpe);
        q = residual(queries, this.selfAttn.forward(qq, qq, queries));
      }
      q = this.norm1.forward(q);
      const kk = add(keys, kpe);
      q = this.norm2.forward(residual(q, this.crossT2I.forward(add(q, qpe), kk, keys)));
      q = this.norm3.forward(residual(q, this.mlp.forward(q)));
      const k = this.norm4.forward(residual(keys, this.crossI2T.forward(kk, add(q, qpe), q)));
      return [q, k] as [Tensor, Tensor];
    });
  }
}

export class MaskDecoder {
  private constructor(
    readonly cfg: SegVolConfig,
    readonly outputTokens: Tensor,
    readonly layers: TwoWayBlock[],
    readonly finalAttn: MultiHeadAttention,
    readonly normFinal: LayerNorm,
    readonly up1: { w: Tensor; b: Tensor },
    readonly upNorm: LayerNorm,
    readonly up2: { w: Tensor; b: Tensor },
    readonly hyper0: Linear[],
    readonly textAlign: Linear | null,
  ) {}

  static load(p: ParamStore, cfg: SegVolConfig): MaskDecoder {
    const d = cfg.decoder;
    const C = d.transformer_dim;
    const masks = d.num_multimask_outputs + 1;
    // Output tokens = [iou_token, mask_tokens]; built once.
    const outputTokens = p.derived(`${P}.output_tokens`, () => {
      const iou = p.host(`${P}.iou_token.weight`);
      const mt = p.host(`${P}.mask_tokens.weight`);
      const data = new Float32Array((1 + masks) * C);
      data.set(iou, 0);
      data.set(mt, C);
      return Tensor.from(data, [1, 1 + masks, C]);
    });
    const layers = Array.from({ length: d.depth }, (_, n) => TwoWayBlock.load(p, n, d.num_heads));
    const hyper = `${P}.output_hypernetworks_mlps.0.layers`;
    return new MaskDecoder(
      cfg,
      outputTokens,
      layers,
      MultiHeadAttention.load(p, `${P}.transformer.final_attn_token_to_image`, d.num_heads),
      LayerNorm.load(p, `${P}.transformer.norm_final_attn`),
      { w: p.tensor(`${P}.output_upscaling.0.weight`), b: p.tensor(`${P}.output_upscaling.0.bias`) },
      LayerNorm.load(p, `${P}.output_upscaling.1`),
      { w: p.tensor(`${P}.output_upscaling.3.weight`), b: p.tensor(`${P}.output_upscaling.3.bias`) },
      // Only mask 0 reaches SegVol's output (single-mask mode), so only its hypernetwork runs.
      [
        Linear.load(p, `${hyper}.0`, { act: "relu" }),
        Linear.load(p, `${hyper}.1`, { act: "relu" }),
        Linear.load(p, `${hyper}.2`),
      ],
      cfg.text ? Linear.load(p, `${P}.txt_align_upscaled_embedding`) : null,
    );
  }

  /**
   * image [1, N, C] token-major image embedding (+ dense embedding already
   * added by the caller), pos [1, N, C] dense PE, sparse [1, T, C], text
   * [1, C] or null → low-resolution mask logits [1, 1, 4d', 4h', 4w'].
   */
  lowResMasks(src: Tensor, pos: Tensor, sparse: Tensor | null, text: Tensor | null): Tensor {
    return scope(() => {
      const tokens = sparse ? concat([this.outputTokens, sparse], 1) : this.outputTokens;
      let q: Tensor = tokens;
      let k: Tensor = src;
      for (const layer of this.layers) [q, k] = layer.forward(q, k, tokens, pos);
      const kk = add(k, pos);
      q = this.normFinal.forward(residual(q, this.finalAttn.forward(add(q, tokens), kk, k)));

      // Upscaling: keys back to [1, C, d', h', w'].
      const [g0, g1, g2] = this.grid();
      const C = this.cfg.decoder.transformer_dim;
      const img = permute(k, [0, 2, 1]).reshape([1, C, g0, g1, g2]);
      let u = convTranspose3d(img, this.up1.w, this.up1.b, { stride: 2 });
      u = gelu(this.upNorm.forward(u));
      u = gelu(convTranspose3d(u, this.up2.w, this.up2.b, { stride: 2 }));
      const [, c8, d4, h4, w4] = u.shape as [number, number, number, number, number];

      // Hypernetwork of mask token 0 (row 1: row 0 is the iou token).
      const t0 = slice(q, [0, 1, 0], [1, 2, C]).reshape([1, C]);
      let h = this.hyper0.reduce((x, l) => l.forward(x), t0);
      if (text) {
        // masks + t·upscaled = (hyper + t)·upscaled: one matmul for both terms.
        if (!this.textAlign) throw new Error("decode: this model has no text tower");
        h = add(h, this.textAlign.forward(text));
      }
      const masks = matmul(h, u.reshape([c8, d4 * h4 * w4]));
      return masks.reshape([1, 1, d4, h4, w4]);
    });
  }

  grid(): [number, number, number] {
    const [D, H, W] = this.cfg.spatial_size;
    const [p1, p2, p3] = this.cfg.patch_size;
    return [D / p1, H / p2, W / p3];
  }

  /** Low-resolution masks → window logits [1, 1, D, H, W] (trilinear, align_corners false). */
  upsample(low: Tensor): Tensor {
    return resize3d(low, this.cfg.spatial_size, "trilinear", false);
  }
}
