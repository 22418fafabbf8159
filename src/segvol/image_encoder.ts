// SegVol's image encoder (spec §2): MONAI-0.9 ViT with a "perceptron" patch
// embedding, pre-norm blocks with a bias-free fused qkv, exact GELU MLPs and
// a final LayerNorm. The output stays token-major, [1, N, C] with token
// t = (i*h' + j)*w' + k: the decoder flattens the [1, C, d', h', w'] image
// embedding back into exactly this order, so the transpose is never done.
import { attention } from "../kernels/attention.js";
import { add } from "../kernels/elementwise.js";
import { patchEmbed } from "../kernels/patch_embed.js";
import { LayerNorm, Linear, Mlp, residual } from "../nn/layers.js";
import type { ParamStore } from "../nn/params.js";
import { scope } from "../tensor/scope.js";
import { Tensor } from "../tensor/tensor.js";
import type { SegVolConfig } from "./config.js";

const P = "image_encoder";

class VitBlock {
  constructor(
    readonly norm1: LayerNorm,
    readonly q: Linear,
    readonly k: Linear,
    readonly v: Linear,
    readonly outProj: Linear,
    readonly norm2: LayerNorm,
    readonly mlp: Mlp,
    readonly numHeads: number,
  ) {}

  static load(p: ParamStore, n: number, cfg: SegVolConfig): VitBlock {
    const pre = `${P}.blocks.${n}`;
    const C = cfg.vit.hidden_size;
    // qkv output features are ordered (qkv, head, d): rows 0..C-1 of the
    // weight are q, C..2C-1 k, 2C..3C-1 v. Split once at load time so the
    // three projections land in the head-interleaved layout attention reads.
    const part = (i: number) =>
      new Linear(
        p.derived(`${pre}.attn.qkv.${i}`, () => {
          const w = p.host(`${pre}.attn.qkv.weight`);
          return Tensor.from(w.slice(i * C * C, (i + 1) * C * C), [C, C]);
        }),
        undefined,
      );
    return new VitBlock(
      LayerNorm.load(p, `${pre}.norm1`),
      part(0),
      part(1),
      part(2),
      Linear.load(p, `${pre}.attn.out_proj`),
      LayerNorm.load(p, `${pre}.norm2`),
      Mlp.load(p, `${pre}.mlp`, ["linear1", "linear2"], "gelu"),
      cfg.vit.num_heads,
    );
  }

  forward(x: Tensor): Tensor {
    const h = scope(() => {
      const n = this.norm1.forward(x);
      const o = attention(this.q.forward(n), this.k.forward(n), this.v.forward(n), { numHeads: this.numHeads });
      return this.outProj.forward(o);
    });
    const x1 = residual(x, h);
    const y = residual(x1, scope(() => this.mlp.forward(this.norm2.forward(x1))));
    x1.dispose();
    return y;
  }
}

export class ImageEncoder {
  private constructor(
    readonly cfg: SegVolConfig,
    readonly patchWeight: Tensor,
    readonly patchBias: Tensor,
    readonly posEmbed: Tensor,
    readonly blocks: VitBlock[],
    readonly norm: LayerNorm,
  ) {}

  static load(p: ParamStore, cfg: SegVolConfig): ImageEncoder {
    const blocks = Array.from({ length: cfg.vit.num_layers }, (_, n) => VitBlock.load(p, n, cfg));
    return new ImageEncoder(
      cfg,
      p.tensor(`${P}.patch_embedding.patch_embeddings.1.weight`),
      p.tensor(`${P}.patch_embedding.patch_embeddings.1.bias`),
      p.tensor(`${P}.patch_embedding.position_embeddings`),
      blocks,
      LayerNorm.load(p, `${P}.norm`),
    );
  }

  /** window [1, C_in, D, H, W] → image tokens [1, N, hidden]. */
  forward(window: Tensor): Tensor {
    let x = scope(() => add(patchEmbed(window, this.patchWeight, this.patchBias, this.cfg.patch_size), this.posEmbed));
    for (const b of this.blocks) {
      const y = b.forward(x);
      x.dispose();
      x = y;
    }
    const out = this.norm.forward(x);
    x.dispose();
    return out;
  }
}
