// SegVol on the engine: load a folder written by `segvol convert`, encode a
// window once, decode it for many prompts, encode each category's text once.
// The network (src/segvol/network.ts) runs under `noGrad`, its weights bound
// as constants uploaded on first use.
import { constant, noGrad } from "../autograd/autograd.js";
import { cast } from "../autograd/ops.js";
import { ShapeError } from "../kernels/check.js";
import type { Precision } from "../kernels/precision.js";
import { HAS_NODE_BUILTINS } from "../node/host.node.js";
import { initGpu } from "../tensor/device.js";
import { keep } from "../tensor/scope.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { readAsFloat32 } from "../weights/safetensors_reader.js";
import { resolveText } from "./categories.js";
import type { SegVolConfig } from "./config.js";
import { bindFrozen, openWeights, openWeightsFolder } from "./load.js";
import { isUrlLike, weightsFiles, type WeightsSource } from "./weights_source.js";
import { SegVolNetwork } from "./network.js";
import type { Vec3 } from "./prompt_encoder.js";
import { segvolSegmenter } from "./pipeline/segvol.js";
import { segmentVolume } from "./pipeline/segment.js";
import type { SegmentOptions, SegmentResult, Target, Volume } from "./pipeline/types.js";
import type { ClipTokenizer } from "./tokenizer.js";

export type Box6 = [number, number, number, number, number, number];

/** A prompt in model-window voxel indices (d, h, w); labels 1 positive, 0 negative, −1 padding. */
export interface WindowPrompt {
  points?: { coords: Vec3[]; labels: number[] };
  box?: Box6;
  /** Category name (put into the config's template), or an embedding from `encodeText`/`encodeTextIds`. */
  text?: string | TextEmbedding;
}

/** A category's text embedding [1, C], on the GPU and on the host. */
export interface TextEmbedding {
  host: Float32Array;
  gpu: Tensor;
}

/** A window encoded once, decoded for any number of prompts. */
export class ImageEmbedding {
  constructor(
    /** The encoder output, token-major [1, N, C] (the [1, C, d', h', w'] embedding, transposed). */
    readonly tokens: Tensor,
    /** tokens + the dense (no-mask) embedding: the decoder's image input. */
    readonly src: Tensor,
  ) {}
  dispose(): void {
    this.tokens.dispose();
    this.src.dispose();
  }
}

/** Checks a prompt against a configuration's window; needs no model, so callers can check before loading one. */
export function validateWindowPrompt(config: SegVolConfig, p: WindowPrompt): void {
  const [D, H, W] = config.spatial_size;
  const inWindow = (c: readonly number[], what: string) => {
    const lim = [D, H, W];
    c.forEach((v, a) => {
      if (!Number.isFinite(v) || v < 0 || v > lim[a]! - 1) {
        throw new Error(`${what} (${c.join(", ")}) is outside the window ${D}×${H}×${W} (d, h, w)`);
      }
    });
  };
  if (!p.points && !p.box && p.text === undefined) throw new Error("empty prompt: give points, a box or a text");
  if (p.points) {
    const { coords, labels } = p.points;
    if (coords.length === 0) throw new Error("point prompt: no points given");
    if (coords.length !== labels.length) throw new Error(`point prompt: ${coords.length} points but ${labels.length} labels`);
    coords.forEach((c, i) => {
      const l = labels[i]!;
      if (l !== 0 && l !== 1 && l !== -1) throw new Error(`point ${i}: label ${l} is not 1 (positive), 0 (negative) or −1 (padding)`);
      if (l !== -1) inWindow(c, `point ${i}`);
    });
  }
  // An all −1 box is upstream's "no foreground of the zoom-out mask in this
  // window"; it is encoded as given, like upstream does.
  if (p.box && !p.box.every((v) => v === -1)) {
    if (p.box.length !== 6) throw new Error(`box prompt: expected 6 numbers (d0,h0,w0,d1,h1,w1), got ${p.box.length}`);
    inWindow(p.box.slice(0, 3), "box corner 0");
    inWindow(p.box.slice(3), "box corner 1");
    for (let a = 0; a < 3; a++) {
      if (p.box[a]! > p.box[a + 3]!) throw new Error(`box prompt: min corner exceeds max corner on axis ${a} (${p.box.join(", ")})`);
    }
  }
  if (p.text !== undefined) {
    if (!config.text) throw new Error("text prompt: this model has no text tower");
    if (typeof p.text === "string" && p.text.trim() === "") throw new Error("text prompt: empty category name");
  }
}


export type { Precision };

/** How a model is loaded. */
export interface SegVolOptions {
  /**
   * The precision weights and activations are stored in: "f32" (default)
   * or "f16" (half the GPU memory; needs the device's shader-f16 feature).
   * Arithmetic stays f32 in either; logits come back as f32.
   */
  precision?: Precision;
}

export class SegVol {
  private readonly textCache = new Map<string, TextEmbedding>();

  private constructor(
    readonly config: SegVolConfig,
    readonly network: SegVolNetwork,
    readonly tokenizer: ClipTokenizer | null,
    /** The categories the weights folder states (categories.json); null when it states none. */
    readonly categories: readonly string[] | null,
    /** The weights folder, for messages. */
    readonly source: string,
    /** The precision weights and activations are stored in on the GPU. */
    readonly precision: Precision,
  ) {}

  /**
   * Loads a weights folder written by `segvol convert`: `config.json`,
   * `model.safetensors` and, for a model with a text tower, the tokenizer
   * files and the categories (categories.json). `source` is a folder path
   * (Node), a URL of the folder (absolute, or relative to the page), the
   * `File`s of the folder a user picked, or any `WeightsFiles`. Every file,
   * key and shape is checked before any GPU work starts. `opts.precision`
   * "f16" stores weights and activations in half precision.
   */
  static async fromWeights(source: WeightsSource, opts: SegVolOptions = {}): Promise<SegVol> {
    const precision = opts.precision ?? "f32";
    if (precision !== "f32" && precision !== "f16") throw new Error(`fromWeights: precision must be "f32" or "f16", got ${JSON.stringify(precision)}`);
    // A string is a folder path where there are files (Node), else a URL relative to the page.
    const byPath = typeof source === "string" && !isUrlLike(source) && HAS_NODE_BUILTINS;
    const folder = byPath ? openWeightsFolder(source) : await openWeights(weightsFiles(source as Exclude<WeightsSource, string> | string));
    const g = await initGpu();
    if (precision === "f16" && !g.hasF16) throw new Error("fromWeights: precision f16 needs the shader-f16 feature, which this device does not have (use f32)");
    bindFrozen(folder.network, folder.file, precision);
    await folder.network.prepare();
    return new SegVol(folder.config, folder.network, folder.tokenizer, folder.categories, folder.dir, precision);
  }

  get spatialSize(): Vec3 {
    return [...this.config.spatial_size] as Vec3;
  }

  /** Encodes one window, C-order [C_in, D, H, W] (C_in = 1 for CT). */
  encodeImage(window: Float32Array | Tensor): ImageEmbedding {
    const [D, H, W] = this.config.spatial_size;
    const C = this.config.in_channels;
    const shape = [1, C, D, H, W];
    if (window instanceof Tensor) {
      if (window.size !== C * D * H * W) {
        throw new ShapeError(`encodeImage: window ${shapeStr(window.shape)} does not match spatial_size ${shapeStr([C, D, H, W])}`);
      }
    } else if (window.length !== C * D * H * W) {
      throw new ShapeError(`encodeImage: window has ${window.length} voxels, spatial_size ${shapeStr([C, D, H, W])} needs ${C * D * H * W}`);
    }
    return noGrad(() => {
      const x = cast(constant(window instanceof Tensor ? window.reshape(shape) : Tensor.from(window, shape)), this.precision);
      const tokens = this.network.encodeImage(x);
      return new ImageEmbedding(keep(tokens.value), keep(this.network.imageInput(tokens).value));
    });
  }

  /** Token ids of a category's prompt (the config's template applied). */
  tokenize(name: string): number[] {
    if (!this.tokenizer || !this.config.text) throw new Error("tokenize: this model has no text tower");
    return this.tokenizer.encode(this.config.text.template.replace("{}", name));
  }

  /** The text embedding of a category, computed once and cached. */
  async encodeText(name: string): Promise<TextEmbedding> {
    if (!this.network.textEncoder) throw new Error(`text prompt "${name}": this model has no text tower`);
    return this.encodeTextIds(this.tokenize(name));
  }

  /** The text embedding of explicit token ids (bos … eos), cached by ids. */
  async encodeTextIds(ids: readonly number[]): Promise<TextEmbedding> {
    if (!this.network.textEncoder) throw new Error("text prompt: this model has no text tower");
    const key = ids.join(",");
    let e = this.textCache.get(key);
    if (!e) {
      const gpu = keep(noGrad(() => this.network.encodeText([ids])).value);
      e = { host: await readAsFloat32(gpu), gpu };
      this.textCache.set(key, e);
    }
    return e;
  }

  /** Checks a prompt against the window before any GPU work. */
  validatePrompt(p: WindowPrompt): void {
    validateWindowPrompt(this.config, p);
  }


  /** Decodes one prompt on an encoded window → logits tensor [1, 1, D, H, W]. */
  async decodeTensor(emb: ImageEmbedding, prompt: WindowPrompt): Promise<Tensor> {
    this.validatePrompt(prompt);
    const text = prompt.text === undefined ? null : typeof prompt.text === "string" ? await this.encodeText(prompt.text) : prompt.text;
    return noGrad(() => cast(this.network.decodeBatch(constant(emb.src), [prompt], text ? constant(text.gpu) : null), "f32").value);
  }

  /** Decodes one prompt → window logits, C-order [D*H*W]. */
  async decode(emb: ImageEmbedding, prompt: WindowPrompt): Promise<Float32Array> {
    const t = await this.decodeTensor(emb, prompt);
    try {
      return await t.readFloat32();
    } finally {
      t.dispose();
    }
  }

  /** Encodes and decodes one window for one prompt. */
  async forward(window: Float32Array, prompt: WindowPrompt): Promise<Float32Array> {
    this.validatePrompt(prompt);
    const emb = this.encodeImage(window);
    try {
      return await this.decode(emb, prompt);
    } finally {
      emb.dispose();
    }
  }

  /**
   * The text the model is given for a text prompt: the spelling of the
   * category it names in this folder's list (src/segvol/categories.ts has
   * the matching rules). A text outside the list throws
   * UnknownCategoryError, unless `allowUnknown` (open-vocabulary use).
   */
  categoryText(text: string, allowUnknown = false): string {
    return resolveText(text, { categories: this.categories, allowUnknown, source: this.source });
  }

  /**
   * Segments a whole volume (spec §6: preprocessing, zoom-out-zoom-in) for
   * any number of targets; prompts are voxel indices (i, j, k) of the input.
   * Text prompts must name a category of the weights folder unless
   * `opts.allowUnknownText`; they are checked before any work.
   */
  async segment(volume: Volume, targets: Target[], opts: SegmentOptions = {}): Promise<SegmentResult> {
    // Malformed targets (no array, empty text) are left for the pipeline's own checks and messages.
    const named = (t: Target) => typeof t?.text === "string" && t.text.trim() !== "";
    const checked = Array.isArray(targets) ? targets.map((t) => (named(t) ? { ...t, text: this.categoryText(t.text!, opts.allowUnknownText) } : t)) : targets;
    return segmentVolume(segvolSegmenter(this), volume, checked, opts);
  }

  dispose(): void {
    for (const e of this.textCache.values()) e.gpu.dispose();
    this.textCache.clear();
    this.network.dispose();
  }
}
