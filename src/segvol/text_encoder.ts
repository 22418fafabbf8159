// SegVol's text tower (spec §5): HF CLIPTextModel (causal pre-norm
// transformer) pooled at the eos position, then `dim_align` to the decoder
// width. The activation comes from config.text.hidden_act. Several prompts
// run as one batch, padded at the end to the longest.
import { scoped, type Var } from "../autograd/autograd.js";
import { add, gather, reshape, slice } from "../autograd/ops.js";
import type { Activation } from "../kernels/activation.js";
import { Embedding, LayerNorm, Linear, Mlp, MultiHeadAttention } from "../nn/layers.js";
import { Module, sequence } from "../nn/module.js";
import type { SegVolConfig, TextConfig } from "./config.js";

/** The kernel activation of each CLIP `hidden_act` (gelu_new is GELU's tanh form). */
export const CLIP_ACTIVATION: Record<TextConfig["hidden_act"], Activation> = {
  quick_gelu: "quick_gelu",
  gelu_new: "gelu_tanh",
  gelu: "gelu",
};

/** HF CLIPEncoderLayer (registers self_attn with k, v, q, out; layer_norm1; mlp; layer_norm2). */
class ClipLayer extends Module {
  readonly attn: MultiHeadAttention;
  readonly ln1: LayerNorm;
  readonly mlp: Mlp;
  readonly ln2: LayerNorm;

  constructor(t: TextConfig) {
    super();
    const H = t.hidden_size;
    this.attn = this.child("self_attn", new MultiHeadAttention(H, H, t.num_attention_heads, { causal: true, order: "kvq" }));
    this.ln1 = this.child("layer_norm1", new LayerNorm([H], t.layer_norm_eps));
    this.mlp = this.child("mlp", new Mlp(["fc1", "fc2"], H, t.intermediate_size, CLIP_ACTIVATION[t.hidden_act]));
    this.ln2 = this.child("layer_norm2", new LayerNorm([H], t.layer_norm_eps));
  }

  forward(x: Var): Var {
    return scoped(() => {
      const n = this.ln1.forward(x);
      const h = add(x, this.attn.forward(n, n, n));
      return add(h, this.mlp.forward(this.ln2.forward(h)));
    });
  }
}

/** HF CLIPTextTransformer's parameters (embeddings, encoder layers, final norm). */
class ClipTextModel extends Module {
  readonly tokenEmbedding: Embedding;
  readonly positionEmbedding: Embedding;
  readonly layers: ClipLayer[];
  readonly finalNorm: LayerNorm;

  constructor(t: TextConfig) {
    super();
    this.tokenEmbedding = this.child("embeddings.token_embedding", new Embedding(t.vocab_size, t.hidden_size));
    this.positionEmbedding = this.child("embeddings.position_embedding", new Embedding(t.max_position_embeddings, t.hidden_size));
    this.layers = Array.from({ length: t.num_hidden_layers }, (_, n) => this.child(`encoder.layers.${n}`, new ClipLayer(t)));
    this.finalNorm = this.child("final_layer_norm", new LayerNorm([t.hidden_size], t.layer_norm_eps));
  }
}

export class TextEncoder extends Module {
  readonly t: TextConfig;
  readonly clip: ClipTextModel;
  readonly dimAlign: Linear;

  constructor(cfg: SegVolConfig) {
    super();
    const t = cfg.text;
    if (!t) throw new Error("TextEncoder: this configuration has no text tower");
    this.t = t;
    this.clip = this.child("clip_text_model.text_model", new ClipTextModel(t));
    this.dimAlign = this.child("dim_align", new Linear(t.hidden_size, cfg.decoder.transformer_dim));
  }

  /** Throws unless every prompt is 1..max_position_embeddings ids inside the vocabulary. */
  checkIds(prompts: readonly (readonly number[])[]): void {
    const t = this.t;
    for (const ids of prompts) {
      if (ids.length === 0) throw new Error("text encoder: empty token list");
      if (ids.length > t.max_position_embeddings) {
        throw new Error(`text encoder: ${ids.length} tokens exceed max_position_embeddings ${t.max_position_embeddings}`);
      }
      const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= t.vocab_size);
      if (bad !== undefined) throw new Error(`text encoder: token id ${bad} is outside the vocabulary (size ${t.vocab_size})`);
    }
  }

  /**
   * Prompts of token ids (bos … eos each) → embeddings [B, transformer_dim].
   * Shorter prompts are padded at the end to the longest: the attention is
   * causal, so no position up to a prompt's eos sees its padding, and the
   * pooled state is read at the eos (HF CLIP pools at argmax(input_ids):
   * the eos token has the highest id).
   */
  forward(prompts: readonly (readonly number[])[]): Var {
    this.checkIds(prompts);
    const t = this.t;
    const H = t.hidden_size;
    const B = prompts.length;
    const L = Math.max(...prompts.map((ids) => ids.length));
    const flat = new Int32Array(B * L);
    const eosRows = prompts.map((ids, b) => {
      flat.set(ids, b * L);
      let eos = 0;
      ids.forEach((id, i) => {
        if (id > ids[eos]!) eos = i;
      });
      return b * L + eos;
    });
    return scoped(() => {
      const m = this.clip;
      const tok = reshape(gather(m.tokenEmbedding.weight.v, flat), [B, L, H]);
      const pos = reshape(slice(m.positionEmbedding.weight.v, [0, 0], [L, H]), [1, L, H]);
      const x = sequence(add(tok, pos), m.layers, (layer, h) => layer.forward(h));
      const pooled = gather(reshape(x, [B * L, H]), eosRows);
      return this.dimAlign.forward(m.finalNorm.forward(pooled));
    });
  }
}
