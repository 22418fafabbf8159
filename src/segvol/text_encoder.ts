// SegVol's text tower (spec §5): HF CLIPTextModel (causal pre-norm
// transformer) pooled at the eos position, then `dim_align` to the decoder
// width. The activation comes from config.text.hidden_act.
import type { Activation } from "../kernels/activation.js";
import { add } from "../kernels/elementwise.js";
import { gather, slice } from "../kernels/layout.js";
import { LayerNorm, Linear, Mlp, MultiHeadAttention, residual } from "../nn/layers.js";
import type { ParamStore } from "../nn/params.js";
import { scope } from "../tensor/scope.js";
import { Tensor } from "../tensor/tensor.js";
import type { SegVolConfig, TextConfig } from "./config.js";

const P = "text_encoder.clip_text_model.text_model";

/** The kernel activation of each CLIP `hidden_act` (gelu_new is GELU's tanh form). */
export const CLIP_ACTIVATION: Record<TextConfig["hidden_act"], Activation> = {
  quick_gelu: "quick_gelu",
  gelu_new: "gelu_tanh",
  gelu: "gelu",
};

class ClipLayer {
  constructor(
    readonly ln1: LayerNorm,
    readonly attn: MultiHeadAttention,
    readonly ln2: LayerNorm,
    readonly mlp: Mlp,
  ) {}

  static load(p: ParamStore, n: number, t: TextConfig): ClipLayer {
    const pre = `${P}.encoder.layers.${n}`;
    return new ClipLayer(
      LayerNorm.load(p, `${pre}.layer_norm1`, t.layer_norm_eps),
      MultiHeadAttention.load(p, `${pre}.self_attn`, t.num_attention_heads, true),
      LayerNorm.load(p, `${pre}.layer_norm2`, t.layer_norm_eps),
      Mlp.load(p, `${pre}.mlp`, ["fc1", "fc2"], CLIP_ACTIVATION[t.hidden_act]),
    );
  }

  forward(x: Tensor): Tensor {
    const h = residual(
      x,
      scope(() => {
        const n = this.ln1.forward(x);
        return this.attn.forward(n, n, n);
      }),
    );
    const y = residual(h, scope(() => this.mlp.forward(this.ln2.forward(h))));
    h.dispose();
    return y;
  }
}

export class TextEncoder {
  private constructor(
    readonly t: TextConfig,
    readonly tokenEmbedding: Tensor,
    readonly positionEmbedding: Tensor,
    readonly layers: ClipLayer[],
    readonly finalNorm: LayerNorm,
    readonly dimAlign: Linear,
  ) {}

  static load(p: ParamStore, cfg: SegVolConfig): TextEncoder {
    const t = cfg.text;
    if (!t) throw new Error("TextEncoder: this configuration has no text tower");
    return new TextEncoder(
      t,
      p.tensor(`${P}.embeddings.token_embedding.weight`),
      p.tensor(`${P}.embeddings.position_embedding.weight`),
      Array.from({ length: t.num_hidden_layers }, (_, n) => ClipLayer.load(p, n, t)),
      LayerNorm.load(p, `${P}.final_layer_norm`, t.layer_norm_eps),
      Linear.load(p, "text_encoder.dim_align"),
    );
  }

  /** Token ids (bos … eos) → text embedding [1, transformer_dim]. */
  forward(ids: readonly number[]): Tensor {
    const t = this.t;
    if (ids.length === 0) throw new Error("text encoder: empty token list");
    if (ids.length > t.max_position_embeddings) {
      throw new Error(`text encoder: ${ids.length} tokens exceed max_position_embeddings ${t.max_position_embeddings}`);
    }
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= t.vocab_size);
    if (bad !== undefined) throw new Error(`text encoder: token id ${bad} is outside the vocabulary (size ${t.vocab_size})`);
    const L = ids.length;
    // HF CLIP pools at argmax(input_ids): the eos token has the highest id.
    let eos = 0;
    ids.forEach((id, i) => {
      if (id > ids[eos]!) eos = i;
    });
    return scope(() => {
      const idT = Tensor.from(Int32Array.from(ids), [L], "i32");
      const tok = gather(this.tokenEmbedding, idT);
      const pos = slice(this.positionEmbedding, [0, 0], [L, t.hidden_size]);
      let x = add(tok, pos).reshape([1, L, t.hidden_size]);
      for (const layer of this.layers) x = layer.forward(x);
      const pooled = slice(x, [0, eos, 0], [1, eos + 1, t.hidden_size]).reshape([1, t.hidden_size]);
      return this.dimAlign.forward(this.finalNorm.forward(pooled));
    });
  }
}
