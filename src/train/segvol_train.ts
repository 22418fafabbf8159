// SegVol for training: the network of src/segvol/network.ts (the same
// module tree and forward code as inference), its checkpoint tensors bound
// as trainable `param`s or, by name prefix, frozen `constant`s, so no
// gradient is ever computed for a frozen part. The Gaussian matrix of the
// prompt encoder is a buffer in PyTorch (never trained) and is always
// frozen. What this file adds to the network is only freezing, a cache of
// a frozen text tower's embeddings, and prompt batching (`decodeBatch`).
import { openWeightsFolder } from "../segvol/load.js";
import type { SegVolConfig } from "../segvol/config.js";
import type { WindowPrompt } from "../segvol/model.js";
import { SegVolNetwork } from "../segvol/network.js";
import type { ClipTokenizer } from "../segvol/tokenizer.js";
import { initGpu } from "../tensor/device.js";
import { keep } from "../tensor/scope.js";
import { shapeStr, type Tensor } from "../tensor/tensor.js";
import { loadTensorToGpu, type TensorToWrite } from "../weights/safetensors.js";
import { Var, constant, noGrad, param, scoped } from "../autograd/autograd.js";
import { concat } from "../autograd/ops.js";
import { selectTrainable } from "./freeze.js";
import type { TrainParam } from "./optim.js";

export { promptLayout } from "../segvol/network.js";

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

export interface TrainableSegVolOptions {
  /** Parameter name prefixes to freeze (e.g. "text_encoder.", "image_encoder."). */
  freeze?: readonly string[];
}

export class TrainableSegVol {
  private readonly textCache = new Map<string, Var>();
  /** Constants a step's calls returned that the caller does not own; freed by `releaseStep`. */
  private stepTemps: Var[] = [];

  private constructor(
    readonly config: SegVolConfig,
    readonly network: SegVolNetwork,
    /** Every checkpoint tensor, by name, in state-dict order. */
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
    const folder = openWeightsFolder(dir);
    await initGpu();
    const tensors = new Map<string, Tensor>();
    for (const [name] of folder.network.namedParameters()) tensors.set(name, keep(loadTensorToGpu(folder.file, name)));
    return TrainableSegVol.fromTensors(folder.config, tensors, folder.tokenizer, opts);
  }

  /** Wraps GPU tensors (one per parameter of the configuration; ownership passes to the model). */
  static fromTensors(config: SegVolConfig, tensors: Map<string, Tensor>, tokenizer: ClipTokenizer | null, opts: TrainableSegVolOptions = {}): TrainableSegVol {
    const network = new SegVolNetwork(config);
    const params = network.namedParameters();
    for (const [name, p] of params) {
      const t = tensors.get(name);
      if (!t) throw new Error(`TrainableSegVol: parameter ${name} ${shapeStr(p.shape)} is missing`);
      if (t.dtype !== "f32" || t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
        throw new Error(`TrainableSegVol: parameter ${name} is ${shapeStr(t.shape)} ${t.dtype}, expected ${shapeStr(p.shape)} f32`);
      }
    }
    const { frozen } = selectTrainable(
      params.map(([name]) => ({ name })),
      [...(opts.freeze ?? []), GAUSS],
    );
    const frozenSet = new Set(frozen.map((p) => p.name));
    const vars = new Map<string, Var>();
    const trainable: TrainParam[] = [];
    for (const [name, p] of params) {
      const t = tensors.get(name)!;
      const v = frozenSet.has(name) ? constant(t) : param(t);
      p.set(v);
      vars.set(name, v);
      if (!frozenSet.has(name)) trainable.push(trainParam(name, v));
    }
    return new TrainableSegVol(config, network, vars, trainable, [...frozenSet], tokenizer);
  }

  /** The Var of a checkpoint tensor. */
  v(name: string): Var {
    const x = this.vars.get(name);
    if (!x) throw new Error(`TrainableSegVol: no parameter ${name}`);
    return x;
  }

  isFrozen(prefix: string): boolean {
    return [...this.vars].filter(([n]) => n.startsWith(prefix)).every(([, x]) => !x.requiresGrad);
  }

  get hasText(): boolean {
    return this.config.text !== null;
  }

  /** Reads the (frozen) Gaussian matrix once: the prompts' positional encodings are computed on the host. */
  async prepare(): Promise<void> {
    await this.network.prepare();
  }

  /** A constant a call returns to a caller that does not own it: freed by the next `releaseStep`. */
  private stepOwned(v: Var): Var {
    if (!v.onTape && !v.requiresGrad) this.stepTemps.push(v);
    return v;
  }

  /** Frees what the last step's calls returned and backward did not (call after backward). */
  releaseStep(): void {
    for (const t of this.stepTemps) t.dispose();
    this.stepTemps = [];
  }

  /**
   * window [1, C_in, D, H, W] (a constant) → image tokens [1, N, hidden].
   * With the whole image encoder frozen the result is a constant the caller
   * disposes; otherwise it is recorded (backward frees it).
   */
  encodeImage(window: Var): Var {
    return this.network.encodeImage(window);
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
    if (!this.isFrozen("text_encoder.")) return this.network.encodeText(ids);
    const rows = ids.map((x) => this.textEmbeddingIds(x));
    return rows.length === 1 ? rows[0]! : this.stepOwned(concat(rows, 0));
  }

  private categoryIds(category: string): number[] {
    if (!this.config.text || !this.tokenizer) throw new Error(`text prompt "${category}": this model has no text tower`);
    return this.tokenizer.encode(this.config.text.template.replace("{}", category));
  }

  /** The text embedding of explicit token ids (bos … eos); cached by ids when the tower is frozen. */
  textEmbeddingIds(ids: readonly number[]): Var {
    if (!this.config.text) throw new Error("text prompt: this model has no text tower");
    if (!this.isFrozen("text_encoder.")) return this.network.encodeText([ids]);
    const key = ids.join(",");
    let e = this.textCache.get(key);
    if (!e) {
      e = noGrad(() => this.network.encodeText([ids]));
      keep(e.value);
      this.textCache.set(key, e);
    }
    return e;
  }

  // ------------------------------------------------------------ mask decoder

  /**
   * Decodes one prompt on the image tokens [1, N, C] → window logits
   * [1, 1, D, H, W]. `text` is the category's embedding [1, C] (from
   * `textEmbedding`) when the prompt has text. Call `releaseStep()` after
   * backward.
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
    return this.stepOwned(scoped(() => this.network.decodeBatch(this.network.imageInput(tokens), prompts, texts)));
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
    this.network.dispose();
  }
}
