// SegVol's mask decoder (spec §4): SAM's two-way transformer in 3-D, the
// transposed-convolution upscaling with one LayerNorm over the whole
// (C/4, 2d', 2h', 2w') block, the hypernetwork MLP of mask token 0 and the
// text similarity term, then the trilinear upsample to the window. B
// prompts that share one token layout decode as one batch.
import { scoped, type Var } from "../autograd/autograd.js";
import { resize3d } from "../autograd/conv_ops.js";
import { add, concat, gelu, matmul, permute, reshape, slice } from "../autograd/ops.js";
import { ConvTranspose3d, Embedding, LayerNorm, Linear, Mlp, MultiHeadAttention } from "../nn/layers.js";
import { Module, sequence } from "../nn/module.js";
import type { SegVolConfig } from "./config.js";

/** SAM's TwoWayAttentionBlock. */
class TwoWayBlock extends Module {
  readonly selfAttn: MultiHeadAttention;
  readonly norm1: LayerNorm;
  readonly crossT2I: MultiHeadAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly norm3: LayerNorm;
  readonly norm4: LayerNorm;
  readonly crossI2T: MultiHeadAttention;

  constructor(
    cfg: SegVolConfig,
    readonly skipFirstPe: boolean,
  ) {
    super();
    const d = cfg.decoder;
    const dim = d.transformer_dim;
    const inner = dim / d.attention_downsample_rate;
    this.selfAttn = this.child("self_attn", new MultiHeadAttention(dim, dim, d.num_heads));
    this.norm1 = this.child("norm1", new LayerNorm([dim]));
    this.crossT2I = this.child("cross_attn_token_to_image", new MultiHeadAttention(dim, inner, d.num_heads));
    this.norm2 = this.child("norm2", new LayerNorm([dim]));
    this.mlp = this.child("mlp", new Mlp(["lin1", "lin2"], dim, d.mlp_dim, "relu"));
    this.norm3 = this.child("norm3", new LayerNorm([dim]));
    this.norm4 = this.child("norm4", new LayerNorm([dim]));
    this.crossI2T = this.child("cross_attn_image_to_token", new MultiHeadAttention(dim, inner, d.num_heads));
  }

  /** One layer: (queries, keys) → the new pair; qpe is the query PE (the tokens), kpe the image PE. */
  forward(queries: Var, keys: Var, qpe: Var, kpe: Var): [Var, Var] {
    return scoped(() => {
      let q: Var;
      if (this.skipFirstPe) {
        // Layer 0 replaces the queries by their self-attention: no residual, no PE.
        q = this.selfAttn.forward(queries, queries, queries);
      } else {
        const qq = add(queries, qpe);
        q = add(queries, this.selfAttn.forward(qq, qq, queries));
      }
      q = this.norm1.forward(q);
      const kk = add(keys, kpe);
      q = this.norm2.forward(add(q, this.crossT2I.forward(add(q, qpe), kk, keys)));
      q = this.norm3.forward(add(q, this.mlp.forward(q)));
      const k = this.norm4.forward(add(keys, this.crossI2T.forward(kk, add(q, qpe), q)));
      return [q, k];
    });
  }
}

/** SAM's TwoWayTransformer: the blocks, then a final token-to-image attention. */
class TwoWayTransformer extends Module {
  readonly layers: TwoWayBlock[];
  readonly finalAttn: MultiHeadAttention;
  readonly normFinal: LayerNorm;

  constructor(cfg: SegVolConfig) {
    super();
    const d = cfg.decoder;
    this.layers = Array.from({ length: d.depth }, (_, n) => this.child(`layers.${n}`, new TwoWayBlock(cfg, n === 0)));
    this.finalAttn = this.child("final_attn_token_to_image", new MultiHeadAttention(d.transformer_dim, d.transformer_dim / d.attention_downsample_rate, d.num_heads));
    this.normFinal = this.child("norm_final_attn", new LayerNorm([d.transformer_dim]));
  }

  /** tokens [B, T, C], image [B, N, C] and its PE [1, N, C] → (queries, keys). */
  forward(tokens: Var, image: Var, pos: Var): [Var, Var] {
    return scoped(() => {
      const [q, k] = sequence<TwoWayBlock, [Var, Var]>([tokens, image], this.layers, (layer, [qi, ki]) => layer.forward(qi, ki, tokens, pos));
      const qf = this.normFinal.forward(add(q, this.finalAttn.forward(add(q, tokens), add(k, pos), k)));
      return [qf, k];
    });
  }
}

/** SAM's MLP head: `layers.i` Linears with ReLU between them. */
class MlpHead extends Module {
  readonly layers: Linear[];

  constructor(inF: number, hidden: number, outF: number, depth: number) {
    super();
    this.layers = Array.from({ length: depth }, (_, i) =>
      this.child(`layers.${i}`, new Linear(i === 0 ? inF : hidden, i === depth - 1 ? outF : hidden, { act: i === depth - 1 ? "none" : "relu" })),
    );
  }

  forward(x: Var): Var {
    return scoped(() => sequence(x, this.layers, (l, h) => l.forward(h)));
  }
}

export class MaskDecoder extends Module {
  readonly transformer: TwoWayTransformer;
  readonly iouToken: Embedding;
  readonly maskTokens: Embedding;
  readonly up1: ConvTranspose3d;
  readonly upNorm: LayerNorm;
  readonly up2: ConvTranspose3d;
  readonly hypernetworks: MlpHead[];
  readonly textAlign: Linear;

  constructor(readonly cfg: SegVolConfig) {
    super();
    const d = cfg.decoder;
    const dim = d.transformer_dim;
    const masks = d.num_multimask_outputs + 1;
    const [g0, g1, g2] = this.grid();
    this.transformer = this.child("transformer", new TwoWayTransformer(cfg));
    this.iouToken = this.child("iou_token", new Embedding(1, dim));
    this.maskTokens = this.child("mask_tokens", new Embedding(masks, dim));
    // The LayerNorm's weight has the whole (C/4, 2·grid) block's shape: it
    // normalises each batch item on its own (sequential indices 0, 1, 3; 2
    // and 4 are GELUs).
    this.up1 = this.child("output_upscaling.0", new ConvTranspose3d(dim, dim / 4, 2));
    this.upNorm = this.child("output_upscaling.1", new LayerNorm([dim / 4, g0 * 2, g1 * 2, g2 * 2]));
    this.up2 = this.child("output_upscaling.3", new ConvTranspose3d(dim / 4, dim / 8, 2));
    // Only mask 0 reaches SegVol's output (single-mask mode), so only its hypernetwork runs.
    this.hypernetworks = Array.from({ length: masks }, (_, i) => this.child(`output_hypernetworks_mlps.${i}`, new MlpHead(dim, dim, dim / 8, 3)));
    this.child("iou_prediction_head", new MlpHead(dim, d.iou_head_hidden_dim, masks, d.iou_head_depth));
    this.textAlign = this.child("txt_align_upscaled_embedding", new Linear(dim, dim / 8));
  }

  grid(): [number, number, number] {
    const [D, H, W] = this.cfg.spatial_size;
    const [p1, p2, p3] = this.cfg.patch_size;
    return [D / p1, H / p2, W / p3];
  }

  /**
   * image [1, N, C] token-major image embedding with the dense (no-mask)
   * embedding added, pos [1, N, C] its PE, sparse [B, T, C] or null (one
   * row of tokens per prompt), texts [B, C] or null → window logits
   * [B, 1, D, H, W].
   */
  forward(image: Var, pos: Var, sparse: Var | null, texts: Var | null, batch: number): Var {
    return scoped(() => {
      const C = this.cfg.decoder.transformer_dim;
      const B = batch;
      const own = reshape(concat([this.iouToken.weight.v, this.maskTokens.weight.v], 0), [1, -1, C]);
      const outTokens = B === 1 ? own : concat(Array<Var>(B).fill(own), 0);
      const tokens = sparse ? concat([outTokens, sparse], 1) : outTokens;
      // The image side becomes per prompt in the first layer (image-to-token attention), so it is repeated B times.
      const src = B === 1 ? image : concat(Array<Var>(B).fill(image), 0);
      const [q, k] = this.transformer.forward(tokens, src, pos);
      return resize3d(this.lowResMasks(q, k, texts), this.cfg.spatial_size, "trilinear", false);
    });
  }

  /** The upscaled image embedding, projected on mask token 0's hypernetwork output (+ the text term) → [B, 1, 4d', 4h', 4w']. */
  private lowResMasks(q: Var, k: Var, texts: Var | null): Var {
    return scoped(() => {
      const C = this.cfg.decoder.transformer_dim;
      const B = q.shape[0]!;
      const [g0, g1, g2] = this.grid();
      // Keys back to [B, C, d', h', w'].
      const img = reshape(permute(k, [0, 2, 1]), [B, C, g0, g1, g2]);
      const u = gelu(this.up2.forward(gelu(this.upNorm.forward(this.up1.forward(img)))));
      const [, c8, d4, h4, w4] = u.shape as [number, number, number, number, number];
      // Hypernetwork of mask token 0 (row 1: row 0 is the iou token).
      let h = this.hypernetworks[0]!.forward(reshape(slice(q, [0, 1, 0], [B, 2, C]), [B, C]));
      // masks + t·upscaled = (hyper + t)·upscaled: one matmul for both terms.
      if (texts) h = add(h, this.textAlign.forward(texts));
      return reshape(matmul(reshape(h, [B, 1, c8]), reshape(u, [B, c8, d4 * h4 * w4])), [B, 1, d4, h4, w4]);
    });
  }
}
