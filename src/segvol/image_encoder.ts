// SegVol's image encoder (spec §2): MONAI-0.9 ViT with a "perceptron" patch
// embedding, pre-norm blocks with a bias-free fused qkv, exact GELU MLPs and
// a final LayerNorm. The output stays token-major, [1, N, C] with token
// t = (i*h' + j)*w' + k: the decoder flattens the [1, C, d', h', w'] image
// embedding back into exactly this order, so the transpose is never done.
import { scoped, type Var } from "../autograd/autograd.js";
import { attention } from "../autograd/attention_ops.js";
import { patchEmbed } from "../autograd/conv_ops.js";
import { add, linear, slice } from "../autograd/ops.js";
import { LayerNorm, Linear, Mlp } from "../nn/layers.js";
import { Module, sequence, type Parameter } from "../nn/module.js";
import type { SegVolConfig } from "./config.js";

/** MONAI's SABlock: the fused qkv projection (no bias) and the output projection. */
class SelfAttention extends Module {
  readonly outProj: Linear;
  readonly qkv: Parameter;

  constructor(
    readonly dim: number,
    readonly numHeads: number,
  ) {
    super();
    this.outProj = this.child("out_proj", new Linear(dim, dim));
    this.qkv = this.param("qkv.weight", [3 * dim, dim]);
  }

  forward(x: Var): Var {
    return scoped(() => {
      // qkv output features are ordered (qkv, head, d): rows 0..C-1 of the
      // weight are q, C..2C-1 k, 2C..3C-1 v. Slicing the weight (not the
      // output) gives each projection in the head-interleaved layout the
      // attention reads, and sends the gradients to the one fused tensor.
      const C = this.dim;
      const part = (i: number) => linear(x, slice(this.qkv.v, [i * C, 0], [(i + 1) * C, C]));
      return this.outProj.forward(attention(part(0), part(1), part(2), { numHeads: this.numHeads }));
    });
  }
}

/** MONAI's TransformerBlock (registers mlp, norm1, attn, norm2). */
class VitBlock extends Module {
  readonly mlp: Mlp;
  readonly norm1: LayerNorm;
  readonly attn: SelfAttention;
  readonly norm2: LayerNorm;

  constructor(cfg: SegVolConfig) {
    super();
    const E = cfg.vit.hidden_size;
    this.mlp = this.child("mlp", new Mlp(["linear1", "linear2"], E, cfg.vit.mlp_dim, "gelu"));
    this.norm1 = this.child("norm1", new LayerNorm([E]));
    this.attn = this.child("attn", new SelfAttention(E, cfg.vit.num_heads));
    this.norm2 = this.child("norm2", new LayerNorm([E]));
  }

  forward(x: Var): Var {
    return scoped(() => {
      const x1 = add(x, this.attn.forward(this.norm1.forward(x)));
      return add(x1, this.mlp.forward(this.norm2.forward(x1)));
    });
  }
}

/** The "perceptron" patch embedding: a linear map of each flattened patch, plus learned positions. */
class PatchEmbedding extends Module {
  readonly positions: Parameter;
  readonly proj: Linear;

  constructor(readonly cfg: SegVolConfig) {
    super();
    const [D, H, W] = cfg.spatial_size;
    const [p1, p2, p3] = cfg.patch_size;
    const tokens = (D / p1) * (H / p2) * (W / p3);
    this.positions = this.param("position_embeddings", [1, tokens, cfg.vit.hidden_size]);
    this.proj = this.child("patch_embeddings.1", new Linear(p1 * p2 * p3 * cfg.in_channels, cfg.vit.hidden_size));
  }

  forward(window: Var): Var {
    return scoped(() => add(patchEmbed(window, this.proj.weight.v, this.proj.bias!.v, this.cfg.patch_size), this.positions.v));
  }
}

export class ImageEncoder extends Module {
  readonly patchEmbedding: PatchEmbedding;
  readonly blocks: VitBlock[];
  readonly norm: LayerNorm;

  constructor(cfg: SegVolConfig) {
    super();
    this.patchEmbedding = this.child("patch_embedding", new PatchEmbedding(cfg));
    this.blocks = Array.from({ length: cfg.vit.num_layers }, (_, n) => this.child(`blocks.${n}`, new VitBlock(cfg)));
    this.norm = this.child("norm", new LayerNorm([cfg.vit.hidden_size]));
  }

  /** window [1, C_in, D, H, W] → image tokens [1, N, hidden]. */
  forward(window: Var): Var {
    return scoped(() => {
      const x = sequence(this.patchEmbedding.forward(window), this.blocks, (b, h) => b.forward(h));
      return this.norm.forward(x);
    });
  }
}
