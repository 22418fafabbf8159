// SegVol on the autograd tape: the same network as src/segvol (image
// encoder §2, prompt encoder §3, mask decoder §4, text tower §5) written on
// `Var`s so that a training step can backpropagate through it. Every
// checkpoint parameter is one Var under its checkpoint name: trainable ones
// are `param`s, frozen ones (by name prefix) `constant`s, so no gradient is
// ever computed for them. The Gaussian matrix of the prompt encoder is a
// buffer in PyTorch (never trained) and is always a constant here.
//
// Differences from the inference classes are only in layout, never in math:
// the fused qkv weight is sliced as a Var (so its gradient lands in the one
// checkpoint tensor), and the sparse prompt tokens are a host-computed
// positional part plus rows gathered from a table of the point embeddings,
// so that those embeddings receive gradients.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Activation } from "../kernels/activation.js";
import { SafetensorsFile, loadTensorToGpu, type TensorToWrite } from "../weights/safetensors.js";
import { loadConfig, type SegVolConfig } from "../segvol/config.js";
import type { WindowPrompt } from "../segvol/model.js";
import { expectedParameters } from "../segvol/params.js";
import { sparseRows, type Vec3 } from "../segvol/prompt_encoder.js";
import { ClipTokenizer, hasVocabulary, tokenizerFilesIn } from "../segvol/tokenizer.js";
import { CLIP_ACTIVATION } from "../segvol/text_encoder.js";
import { initGpu } from "../tensor/device.js";
import { keep } from "../tensor/scope.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { attention, layerNorm } from "../autograd/attention_ops.js";
import { Var, constant, isRecording, noGrad, param } from "../autograd/autograd.js";
import { convTranspose3d, patchEmbed, resize3d } from "../autograd/conv_ops.js";
import { add, concat, gather, gelu, linear, matmul, permute, reshape, slice } from "../autograd/ops.js";
import { selectTrainable } from "./freeze.js";
import type { TrainParam } from "./optim.js";

const GAUSS = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix";

/** A parameter as the optimiser sees it, reading the Var's live value and gradient. */
function trainParam(name: string, v: Var): TrainParam {
  return {
    name,
    get value() {
      return v.value;
    },
    get grad() {
      return v.grad;
    },
  };
}

/**
 * The token layout a prompt gives the mask decoder (point count, box, text):
 * prompts with equal layouts can be decoded as one batch.
 */
export function promptLayout(prompt: WindowPrompt): string {
  return `points ${prompt.points ? prompt.points.coords.length : 0}, box ${prompt.box ? "yes" : "no"}, text ${prompt.text !== undefined ? "yes" : "no"}`;
}


export interface TrainableSegVolOptions {
  /** Parameter name prefixes to freeze (e.g. "text_encoder.", "image_encoder."). */
  freeze?: readonly string[];
}

export class TrainableSegVol {
  private readonly textCache = new Map<string, Var>();
  private densePe: Var | null = null;
  /** Constants made during a step (prompt PEs, outputs of frozen segments); freed by `releaseStep`. */
  private stepTemps: Var[] = [];

  private constructor(
    readonly config: SegVolConfig,
    /** Every checkpoint tensor, by name, in expectedParameters order. */
    readonly vars: Map<string, Var>,
    /** Trainable parameters (name, live value and grad) for the optimiser. */
    readonly trainable: TrainParam[],
    readonly frozenNames: string[],
    readonly tokenizer: ClipTokenizer | null,
  ) {}

  /**
   * Loads a folder written by `segvol convert` (or a training checkpoint).
   * Freezing always includes the Gaussian matrix (a buffer upstream).
   */
  static async fromWeights(dir: string, opts: TrainableSegVolOptions = {}): Promise<TrainableSegVol> {
    for (const f of ["config.json", "model.safetensors"]) {
      if (!existsSync(join(dir, f))) throw new Error(`${dir}: missing ${f} (expected a folder written by \`segvol convert\`)`);
    }
    const config = loadConfig(join(dir, "config.json"));
    let tokenizer: ClipTokenizer | null = null;
    if (config.text) {
      if (!hasVocabulary(tokenizerFilesIn(dir))) throw new Error(`${dir}: the model has a text tower but no tokenizer (tokenizer.json or vocab.json + merges.txt)`);
      tokenizer = ClipTokenizer.fromDir(dir);
    }
    const file = SafetensorsFile.open(join(dir, "model.safetensors"));
    const expected = expectedParameters(config);
    const keys = new Set(file.keys());
    const problems: string[] = [];
    for (const [name, shape] of expected) {
      if (!keys.has(name)) problems.push(`missing ${name}`);
      else {
        const got = file.info(name).shape;
        if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) problems.push(`${name} is ${shapeStr(got)}, the config implies ${shapeStr(shape)}`);
      }
    }
    if (problems.length > 0) throw new Error(`${file.path}: the weights contradict config.json: ${problems.slice(0, 8).join("; ")}`);
    await initGpu();
    const tensors = new Map<string, Tensor>();
    for (const name of expected.keys()) tensors.set(name, keep(loadTensorToGpu(file, name)));
    return TrainableSegVol.fromTensors(config, tensors, tokenizer, opts);
  }

  /** Wraps GPU tensors (one per expected parameter, ownership passes to the model). */
  static fromTensors(config: SegVolConfig, tensors: Map<string, Tensor>, tokenizer: ClipTokenizer | null, opts: TrainableSegVolOptions = {}): TrainableSegVol {
    const expected = expectedParameters(config);
    for (const [name, shape] of expected) {
      const t = tensors.get(name);
      if (!t) throw new Error(`TrainableSegVol: parameter ${name} ${shapeStr(shape)} is missing`);
      if (t.dtype !== "f32" || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`TrainableSegVol: parameter ${name} is ${shapeStr(t.shape)} ${t.dtype}, expected ${shapeStr(shape)} f32`);
      }
    }
    const named = [...expected.keys()].map((name) => ({ name }));
    const { frozen } = selectTrainable(named, [...(opts.freeze ?? []), GAUSS]);
    const frozenSet = new Set(frozen.map((p) => p.name));
    const vars = new Map<string, Var>();
    const trainable: TrainParam[] = [];
    for (const name of expected.keys()) {
      const t = tensors.get(name)!;
      const v = frozenSet.has(name) ? constant(t) : param(t);
      vars.set(name, v);
      if (!frozenSet.has(name)) trainable.push(trainParam(name, v));
    }
    return new TrainableSegVol(config, vars, trainable, [...frozenSet], tokenizer);
  }

  /** The Var of a checkpoint tensor. */
  v(name: string): Var {
    const x = this.vars.get(name);
    if (!x) throw new Error(`TrainableSegVol: no parameter ${name}`);
    return x;
  }

  /**
   * Runs one segment of the network (a block whose parameters start with
   * `prefix`). When neither its inputs nor its parameters need gradients it
   * runs without a tape: recorded, its intermediates would be tape values
   * that no backward node ever frees. The constant result is freed by
   * `releaseStep`.
   */
  private segment<T extends Var | Var[]>(prefix: string | readonly string[], inputs: readonly Var[], fn: () => T): T {
    const prefixes = typeof prefix === "string" ? [prefix] : prefix;
    if (!isRecording() || inputs.some((x) => x.requiresGrad) || !prefixes.every((p) => this.isFrozen(p))) return fn();
    const out = noGrad(fn);
    if (Array.isArray(out)) this.stepTemps.push(...out);
    else this.stepTemps.push(out);
    return out;
  }

  /** Frees what the last step's forward made and backward did not (call after backward). */
  releaseStep(): void {
    for (const t of this.stepTemps) t.dispose();
    this.stepTemps = [];
  }

  isFrozen(prefix: string): boolean {
    return [...this.vars].filter(([n]) => n.startsWith(prefix)).every(([, x]) => !x.requiresGrad);
  }

  get hasText(): boolean {
    return this.config.text !== null;
  }

  // ------------------------------------------------------------ image encoder

  private linearOf(x: Var, prefix: string, act: Activation = "none", bias = true): Var {
    return linear(x, this.v(`${prefix}.weight`), bias ? this.v(`${prefix}.bias`) : null, act);
  }

  private norm(x: Var, prefix: string, eps = 1e-5): Var {
    return layerNorm(x, this.v(`${prefix}.weight`), this.v(`${prefix}.bias`), eps);
  }

  /**
   * window [1, C_in, D, H, W] (a constant) → image tokens [1, N, hidden].
   * With the whole image encoder frozen it runs without a tape (the result
   * is a constant the caller disposes); otherwise it is recorded.
   */
  encodeImage(window: Var): Var {
    const [D, H, W] = this.config.spatial_size;
    const C = this.config.in_channels;
    const want = [1, C, D, H, W];
    if (window.shape.length !== 5 || window.shape.some((d, i) => d !== want[i])) {
      throw new Error(`encodeImage: window ${shapeStr(window.shape)} must be ${shapeStr(want)}`);
    }
    const run = () => this.imageEncoder(window);
    return this.isFrozen("image_encoder.") ? noGrad(run) : run();
  }

  private imageEncoder(window: Var): Var {
    const P = "image_encoder";
    const E = this.config.vit.hidden_size;
    const pe = `${P}.patch_embedding`;
    let x = this.segment(`${pe}.`, [window], () =>
      add(patchEmbed(window, this.v(`${pe}.patch_embeddings.1.weight`), this.v(`${pe}.patch_embeddings.1.bias`), this.config.patch_size), this.v(`${pe}.position_embeddings`)),
    );
    for (let n = 0; n < this.config.vit.num_layers; n++) {
      const b = `${P}.blocks.${n}`;
      const xin = x;
      x = this.segment(`${b}.`, [xin], () => {
        const h = this.norm(xin, `${b}.norm1`);
        // qkv rows: q, then k, then v (head-interleaved within each).
        const qkv = this.v(`${b}.attn.qkv.weight`);
        const part = (i: number) => linear(h, slice(qkv, [i * E, 0], [(i + 1) * E, E]));
        const o = attention(part(0), part(1), part(2), { numHeads: this.config.vit.num_heads });
        const x1 = add(xin, this.linearOf(o, `${b}.attn.out_proj`));
        return add(x1, this.linearOf(this.linearOf(this.norm(x1, `${b}.norm2`), `${b}.mlp.linear1`, "gelu"), `${b}.mlp.linear2`));
      });
    }
    const last = x;
    return this.segment(`${P}.norm.`, [last], () => this.norm(last, `${P}.norm`));
  }

  // ------------------------------------------------------------ text tower

  /**
   * A category's text embedding [1, transformer_dim]. With a frozen text
   * tower it is computed once without a tape and cached (owned by the
   * model); otherwise it is recorded on every call (the caller's graph).
   */
  textEmbedding(category: string): Var {
    return this.textEmbeddingIds(this.categoryIds(category));
  }

  /**
   * The text embeddings of several categories as rows [B, transformer_dim],
   * from one batched pass of the text tower when it is trainable (cached
   * rows joined when it is frozen).
   */
  textEmbeddings(categories: readonly string[]): Var {
    if (categories.length === 0) throw new Error("textEmbeddings: no categories");
    const ids = categories.map((c) => this.categoryIds(c));
    if (!this.isFrozen("text_encoder.")) return this.textEncoder(ids);
    const rows = ids.map((x) => this.textEmbeddingIds(x));
    return rows.length === 1 ? rows[0]! : this.segment([], rows, () => concat(rows, 0));
  }

  private categoryIds(category: string): number[] {
    if (!this.config.text || !this.tokenizer) throw new Error(`text prompt "${category}": this model has no text tower`);
    return this.tokenizer.encode(this.config.text.template.replace("{}", category));
  }

  /** The text embedding of explicit token ids (bos … eos); cached by ids when the tower is frozen. */
  textEmbeddingIds(ids: readonly number[]): Var {
    if (!this.config.text) throw new Error("text prompt: this model has no text tower");
    if (!this.isFrozen("text_encoder.")) return this.textEncoder([ids]);
    const key = ids.join(",");
    let e = this.textCache.get(key);
    if (!e) {
      e = noGrad(() => this.textEncoder([ids]));
      this.textCache.set(key, e);
    }
    return e;
  }

  /**
   * Prompts of token ids (bos … eos each) → embeddings [B, transformer_dim].
   * Shorter prompts are padded at the end to the longest: the attention is
   * causal, so no position up to a prompt's eos sees its padding, and the
   * pooled state is read at the eos (the highest id of each prompt).
   */
  private textEncoder(prompts: readonly (readonly number[])[]): Var {
    const t = this.config.text!;
    const P = "text_encoder.clip_text_model.text_model";
    for (const ids of prompts) {
      if (ids.length === 0 || ids.length > t.max_position_embeddings) throw new Error(`text encoder: ${ids.length} tokens (1..${t.max_position_embeddings} allowed)`);
      const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= t.vocab_size);
      if (bad !== undefined) throw new Error(`text encoder: token id ${bad} is outside the vocabulary (size ${t.vocab_size})`);
    }
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
    let x = this.segment(`${P}.embeddings.`, [], () => {
      const tok = reshape(gather(this.v(`${P}.embeddings.token_embedding.weight`), flat), [B, L, t.hidden_size]);
      const pos = reshape(slice(this.v(`${P}.embeddings.position_embedding.weight`), [0, 0], [L, t.hidden_size]), [1, L, t.hidden_size]);
      return add(tok, pos);
    });
    for (let n = 0; n < t.num_hidden_layers; n++) {
      const b = `${P}.encoder.layers.${n}`;
      const xin = x;
      x = this.segment(`${b}.`, [xin], () => {
        const h = this.norm(xin, `${b}.layer_norm1`, t.layer_norm_eps);
        const a = `${b}.self_attn`;
        const o = attention(this.linearOf(h, `${a}.q_proj`), this.linearOf(h, `${a}.k_proj`), this.linearOf(h, `${a}.v_proj`), {
          numHeads: t.num_attention_heads,
          causal: true,
        });
        const x1 = add(xin, this.linearOf(o, `${a}.out_proj`));
        return add(x1, this.linearOf(this.linearOf(this.norm(x1, `${b}.layer_norm2`, t.layer_norm_eps), `${b}.mlp.fc1`, CLIP_ACTIVATION[t.hidden_act]), `${b}.mlp.fc2`));
      });
    }
    const pooled = gather(reshape(x, [B * L, t.hidden_size]), eosRows);
    return this.linearOf(this.norm(pooled, `${P}.final_layer_norm`, t.layer_norm_eps), "text_encoder.dim_align");
  }

  // ------------------------------------------------------------ prompt encoder (host positional part)

  private grid(): Vec3 {
    const [D, H, W] = this.config.spatial_size;
    const [p1, p2, p3] = this.config.patch_size;
    return [D / p1, H / p2, W / p3];
  }

  private gaussHost: Float64Array | null = null;

  /** Reads the (frozen) Gaussian matrix once. */
  async prepare(): Promise<void> {
    if (!this.gaussHost) this.gaussHost = Float64Array.from(await this.v(GAUSS).value.readFloat32());
  }

  /** pe(c) = [sin(2π(2c−1)G), cos(2π(2c−1)G)] into out[offset..). */
  private pe(c: Vec3, out: Float32Array, offset: number): void {
    const g = this.gaussHost;
    if (!g) throw new Error("TrainableSegVol: call prepare() before decoding");
    const half = this.config.decoder.transformer_dim / 2;
    const [x, y, z] = c.map((v) => 2 * v - 1) as Vec3;
    for (let f = 0; f < half; f++) {
      const a = 2 * Math.PI * (x * g[f]! + y * g[half + f]! + z * g[2 * half + f]!);
      out[offset + f] = Math.sin(a);
      out[offset + half + f] = Math.cos(a);
    }
  }

  /** Dense positional encoding [1, N, C] (constant, computed once; the grid's first coordinate runs along axis 1, as SAM). */
  private dense(): Var {
    if (!this.densePe) {
      const [g0, g1, g2] = this.grid();
      const C = this.config.decoder.transformer_dim;
      const out = new Float32Array(g0 * g1 * g2 * C);
      for (let i = 0; i < g0; i++) {
        for (let j = 0; j < g1; j++) {
          for (let k = 0; k < g2; k++) this.pe([(j + 0.5) / g1, (i + 0.5) / g0, (k + 0.5) / g2], out, ((i * g1 + j) * g2 + k) * C);
        }
      }
      this.densePe = constant(keep(Tensor.from(out, [1, g0 * g1 * g2, C])));
    }
    return this.densePe;
  }

  /**
   * Sparse tokens [B, T, C] of prompts that share one layout (points, + one
   * padding point without a box, box corners, text) as pe (host constant) +
   * rows of the embedding table [point_embeddings.0..3, not_a_point_embed].
   * `texts` [B, C] holds the prompts' text embeddings when the layout has text.
   */
  private sparse(prompts: readonly WindowPrompt[], texts: Var | null): Var | null {
    const C = this.config.decoder.transformer_dim;
    const rows = prompts.flatMap((p) => sparseRows(p, this.config.spatial_size));
    const B = prompts.length;
    const parts: Var[] = [];
    if (rows.length > 0) {
      const peData = new Float32Array(rows.length * C);
      rows.forEach((r, n) => {
        if (r.coord) this.pe(r.coord, peData, n * C);
      });
      const peVar = constant(Tensor.from(peData, [B, rows.length / B, C]));
      this.stepTemps.push(peVar);
      const P = "prompt_encoder";
      const table = concat([0, 1, 2, 3].map((i) => this.v(`${P}.point_embeddings.${i}.weight`)).concat([this.v(`${P}.not_a_point_embed.weight`)]), 0);
      parts.push(add(peVar, reshape(gather(table, rows.map((r) => r.embed)), [B, rows.length / B, C])));
    }
    if (texts) parts.push(reshape(texts, [B, 1, C]));
    if (parts.length === 0) return null;
    return parts.length === 1 ? parts[0]! : concat(parts, 1);
  }

  // ------------------------------------------------------------ mask decoder

  private mha(prefix: string, q: Var, k: Var, v: Var): Var {
    const o = attention(this.linearOf(q, `${prefix}.q_proj`), this.linearOf(k, `${prefix}.k_proj`), this.linearOf(v, `${prefix}.v_proj`), {
      numHeads: this.config.decoder.num_heads,
    });
    return this.linearOf(o, `${prefix}.out_proj`);
  }

  /**
   * Decodes one prompt on the image tokens [1, N, C] → window logits
   * [1, 1, D, H, W]. `text` is the category's embedding [1, C] (from
   * `textEmbedding`) when the prompt has text. Call `releaseStep()` after
   * backward (it frees the constants made for the prompt).
   */
  decode(tokens: Var, prompt: WindowPrompt, text: Var | null): Var {
    return this.decodeBatch(tokens, [prompt], text);
  }

  /**
   * Decodes B prompts of one layout (`promptLayout`) on the same image
   * tokens [1, N, C] as one batch → logits [B, 1, D, H, W], item b being
   * what `decode` returns for prompts[b] and row b of `texts` (the text
   * embeddings [B, C], e.g. from `textEmbeddings`, when the layout has
   * text; null otherwise). One batched pass records the decoder's
   * dispatches once instead of B times, which is what a training step's
   * time goes to on a fast GPU.
   */
  decodeBatch(tokens: Var, prompts: readonly WindowPrompt[], texts: Var | null): Var {
    const P = "mask_decoder";
    const cfg = this.config;
    const C = cfg.decoder.transformer_dim;
    const B = prompts.length;
    if (B === 0) throw new Error("decodeBatch: no prompts");
    const layout = promptLayout(prompts[0]!);
    prompts.forEach((p, b) => {
      if (promptLayout(p) !== layout) throw new Error(`decodeBatch: prompt ${b} has layout ${promptLayout(p)}, prompt 0 has ${layout} (a batch shares one layout)`);
    });
    const withText = prompts[0]!.text !== undefined;
    if (withText && !texts) throw new Error("decodeBatch: the prompts have text but no text embeddings were given");
    if (withText && (texts!.shape.length !== 2 || texts!.shape[0] !== B || texts!.shape[1] !== C)) {
      throw new Error(`decodeBatch: text embeddings ${shapeStr(texts!.shape)} must be [${B}, ${C}] (one row per prompt)`);
    }
    const textIn = withText ? texts : null;
    // Each stage runs untaped when nothing in it needs a gradient (see `segment`).
    const tokenPrefixes = [`${P}.iou_token.`, `${P}.mask_tokens.`, "prompt_encoder.point_embeddings.", "prompt_encoder.not_a_point_embed."];
    const qpe = this.segment(tokenPrefixes, textIn ? [textIn] : [], () => {
      const own = reshape(concat([this.v(`${P}.iou_token.weight`), this.v(`${P}.mask_tokens.weight`)], 0), [1, -1, C]);
      const outTokens = B === 1 ? own : concat(Array<Var>(B).fill(own), 0);
      const sp = this.sparse(prompts, textIn);
      return sp ? concat([outTokens, sp], 1) : outTokens;
    });
    const pos = this.dense();
    let q = qpe;
    // The image side becomes per prompt in the first layer (image-to-token attention), so it is repeated B times.
    let k = this.segment("prompt_encoder.no_mask_embed.", [tokens], () => {
      const k0 = add(tokens, this.v("prompt_encoder.no_mask_embed.weight"));
      return B === 1 ? k0 : concat(Array<Var>(B).fill(k0), 0);
    });
    for (let l = 0; l < cfg.decoder.depth; l++) {
      const b = `${P}.transformer.layers.${l}`;
      const [qin, kin] = [q, k];
      [q, k] = this.segment(`${b}.`, [qin, kin, qpe], () => {
        let q1: Var;
        if (l === 0) q1 = this.mha(`${b}.self_attn`, qin, qin, qin);
        else {
          const qq = add(qin, qpe);
          q1 = add(qin, this.mha(`${b}.self_attn`, qq, qq, qin));
        }
        q1 = this.norm(q1, `${b}.norm1`);
        const kk = add(kin, pos);
        q1 = this.norm(add(q1, this.mha(`${b}.cross_attn_token_to_image`, add(q1, qpe), kk, kin)), `${b}.norm2`);
        q1 = this.norm(add(q1, this.linearOf(this.linearOf(q1, `${b}.mlp.lin1`, "relu"), `${b}.mlp.lin2`)), `${b}.norm3`);
        const k1 = this.norm(add(kin, this.mha(`${b}.cross_attn_image_to_token`, kk, add(q1, qpe), q1)), `${b}.norm4`);
        return [q1, k1];
      });
    }
    const [qin, kin] = [q, k];
    q = this.segment([`${P}.transformer.final_attn_token_to_image.`, `${P}.transformer.norm_final_attn.`], [qin, kin, qpe], () =>
      this.norm(add(qin, this.mha(`${P}.transformer.final_attn_token_to_image`, add(qin, qpe), add(kin, pos), kin)), `${P}.transformer.norm_final_attn`),
    );

    const [g0, g1, g2] = this.grid();
    const up = `${P}.output_upscaling`;
    const kf = k;
    // Parameter-free layout steps on a constant input run untaped too: a
    // chain of two tape values without a node would keep the first alive.
    const img = this.segment([], [kf], () => reshape(permute(kf, [0, 2, 1]), [B, C, g0, g1, g2]));
    const u = this.segment(`${up}.`, [img], () => {
      // The LayerNorm's weight has the whole (C/4, 2·g) block's shape: it normalises each batch item on its own.
      const u1 = gelu(this.norm(convTranspose3d(img, this.v(`${up}.0.weight`), this.v(`${up}.0.bias`), { stride: 2 }), `${up}.1`));
      return gelu(convTranspose3d(u1, this.v(`${up}.3.weight`), this.v(`${up}.3.bias`), { stride: 2 }));
    });
    const [, c8, d4, h4, w4] = u.shape as [number, number, number, number, number];
    const hyper = `${P}.output_hypernetworks_mlps.0.layers`;
    const qf = q;
    const t0 = this.segment([], [qf], () => reshape(slice(qf, [0, 1, 0], [B, 2, C]), [B, C]));
    let h = this.segment(`${P}.output_hypernetworks_mlps.0.`, [t0], () => {
      return this.linearOf(this.linearOf(this.linearOf(t0, `${hyper}.0`, "relu"), `${hyper}.1`, "relu"), `${hyper}.2`);
    });
    if (textIn) h = add(h, this.linearOf(textIn, `${P}.txt_align_upscaled_embedding`));
    const masks = reshape(matmul(reshape(h, [B, 1, c8]), reshape(u, [B, c8, d4 * h4 * w4])), [B, 1, d4, h4, w4]);
    return resize3d(masks, cfg.spatial_size, "trilinear", false);
  }

  // ------------------------------------------------------------ export

  /** Every checkpoint tensor's current value on the host, as safetensors entries (F32). */
  async exportTensors(): Promise<TensorToWrite[]> {
    const out: TensorToWrite[] = [];
    for (const [name, x] of this.vars) out.push({ name, dtype: "F32", shape: [...x.shape], data: await x.value.readFloat32() });
    return out;
  }

  dispose(): void {
    this.releaseStep();
    for (const e of this.textCache.values()) e.dispose();
    this.textCache.clear();
    this.densePe?.dispose();
    this.densePe = null;
    for (const x of this.vars.values()) x.dispose();
  }
}
