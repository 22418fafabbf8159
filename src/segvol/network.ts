// The SegVol network, written once: the image encoder (§2), prompt encoder
// (§3), mask decoder (§4) and text tower (§5) as one module tree whose
// parameter names, shapes and order are the checkpoint's. Inference (the
// `SegVol` class, under `noGrad`) and training (`TrainableSegVol`, on the
// tape) both run this code; they differ only in how parameters are bound.
import { scoped, type Var } from "../autograd/autograd.js";
import { add } from "../autograd/ops.js";
import { ShapeError } from "../kernels/check.js";
import { Module } from "../nn/module.js";
import { shapeStr } from "../tensor/tensor.js";
import type { SegVolConfig } from "./config.js";
import { ImageEncoder } from "./image_encoder.js";
import { MaskDecoder } from "./mask_decoder.js";
import { PromptEncoder, type SpatialPrompt } from "./prompt_encoder.js";
import { TextEncoder } from "./text_encoder.js";

/** A prompt's token layout (point count, box, text): prompts with equal layouts decode as one batch. */
export function promptLayout(prompt: SpatialPrompt & { text?: unknown }): string {
  return `points ${prompt.points ? prompt.points.coords.length : 0}, box ${prompt.box ? "yes" : "no"}, text ${prompt.text !== undefined ? "yes" : "no"}`;
}

export class SegVolNetwork extends Module {
  readonly imageEncoder: ImageEncoder;
  readonly maskDecoder: MaskDecoder;
  readonly promptEncoder: PromptEncoder;
  readonly textEncoder: TextEncoder | null;

  /** SegVol registers image_encoder, mask_decoder, prompt_encoder, text_encoder in that order. */
  constructor(readonly config: SegVolConfig) {
    super();
    this.imageEncoder = this.child("image_encoder", new ImageEncoder(config));
    this.maskDecoder = this.child("mask_decoder", new MaskDecoder(config));
    this.promptEncoder = this.child("prompt_encoder", new PromptEncoder(config));
    this.textEncoder = config.text ? this.child("text_encoder", new TextEncoder(config)) : null;
  }

  /** Reads what the host part of the prompt encoder needs (call once after binding). */
  async prepare(): Promise<void> {
    await this.promptEncoder.prepare();
  }

  /** window [1, C_in, D, H, W] → image tokens [1, N, hidden] (token-major). */
  encodeImage(window: Var): Var {
    const [D, H, W] = this.config.spatial_size;
    const want = [1, this.config.in_channels, D, H, W];
    if (window.shape.length !== 5 || window.shape.some((d, i) => d !== want[i])) {
      throw new ShapeError(`encodeImage: window ${shapeStr(window.shape)} must be ${shapeStr(want)}`);
    }
    return this.imageEncoder.forward(window);
  }

  /** The decoder's image input: the tokens plus the dense embedding, no_mask_embed broadcast over the grid (SegVol feeds no mask prompt). */
  imageInput(tokens: Var): Var {
    return add(tokens, this.promptEncoder.noMask.weight.v);
  }

  /** Prompts of token ids (bos … eos each) → text embeddings [B, transformer_dim]. */
  encodeText(prompts: readonly (readonly number[])[]): Var {
    if (!this.textEncoder) throw new Error("text prompt: this model has no text tower");
    return this.textEncoder.forward(prompts);
  }

  /**
   * Decodes B prompts of one token layout (`promptLayout`) on one window's
   * image input [1, N, C] (`imageInput`) → logits [B, 1, D, H, W], one
   * batched pass for all. `texts` [B, C] holds the prompts' text
   * embeddings when the layout has text (null otherwise).
   */
  decodeBatch(image: Var, prompts: readonly (SpatialPrompt & { text?: unknown })[], texts: Var | null): Var {
    const B = prompts.length;
    if (B === 0) throw new Error("decodeBatch: no prompts");
    const layout = promptLayout(prompts[0]!);
    prompts.forEach((p, b) => {
      if (promptLayout(p) !== layout) throw new Error(`decodeBatch: prompt ${b} has layout ${promptLayout(p)}, prompt 0 has ${layout} (a batch shares one layout)`);
    });
    const withText = prompts[0]!.text !== undefined;
    if (withText && !texts) throw new Error("decodeBatch: the prompts have text but no text embeddings were given");
    const C = this.config.decoder.transformer_dim;
    if (withText && (texts!.shape.length !== 2 || texts!.shape[0] !== B || texts!.shape[1] !== C)) {
      throw new ShapeError(`decodeBatch: text embeddings ${shapeStr(texts!.shape)} must be [${B}, ${C}] (one row per prompt)`);
    }
    const textIn = withText ? texts : null;
    return scoped(() => {
      const sparse = this.promptEncoder.sparse(prompts, textIn);
      return this.maskDecoder.forward(image, this.promptEncoder.dense(), sparse, textIn, B);
    });
  }

  /** Frees every parameter and cache. */
  dispose(): void {
    this.promptEncoder.disposeCaches();
    this.disposeParameters();
  }
}
