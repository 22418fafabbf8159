// From-scratch initial weights for a SegVol configuration: what the upstream
// modules hold right after construction in PyTorch (SegVol's model is built
// from MONAI's ViT, SAM's prompt encoder and mask decoder, and HF's CLIP text
// model), so a model trained from these starts where a PyTorch run would:
//
//  - nn.Linear, nn.Conv2d: kaiming_uniform(a=√5) weights, i.e. U(±1/√fan_in)
//    with fan_in = in_features (· kernel area), biases U(±1/√fan_in);
//  - nn.ConvTranspose3d: the same formula, but PyTorch computes fan_in from
//    weight dim 1, which for a transposed conv ([in, out, k, k, k]) is
//    out_channels · k³;
//  - LayerNorm (also SAM's LayerNorm2d and the decoder's LayerNorm over the
//    upscaled block): weight 1, bias 0;
//  - nn.Embedding tables (SAM's iou/mask tokens, point embeddings,
//    not_a_point_embed, no_mask_embed): N(0, 1);
//  - SAM's random-Fourier positional matrix: N(0, 1) · scale, scale 1;
//  - CLIP's token and position embeddings: N(0, 0.02) (HF's _init_weights);
//  - MONAI's PatchEmbeddingBlock: position embeddings and the patch Linear
//    weight trunc_normal(std 0.02, ±2), the patch Linear bias 0 (MONAI
//    re-initialises that block itself; the transformer blocks keep PyTorch's
//    Linear default).
//
// Every parameter draws from its own generator, seeded from (seed, name), so
// a tensor's values do not depend on which other tensors the config has.
import type { SegVolConfig } from "../segvol/config.js";
import { expectedParameters } from "../segvol/params.js";
import { Rng } from "./rng.js";

export interface InitTensor {
  shape: number[];
  data: Float32Array;
}

/** How one parameter is drawn (exported so tests and tools can name the rule). */
export type InitRule =
  | { kind: "uniform"; bound: number }
  | { kind: "normal"; std: number; truncate?: number }
  | { kind: "constant"; value: number };

const NORM = /(?:^|\.)(?:norm\d*|norm_final_attn|layer_norm\d+|final_layer_norm|output_upscaling\.1|mask_downscaling\.[14])\.(?:weight|bias)$/;
const EMBEDDING_TABLE = /^(?:mask_decoder\.(?:iou_token|mask_tokens)|prompt_encoder\.(?:point_embeddings\.\d+|not_a_point_embed|no_mask_embed))\.weight$/;
const CONV_TRANSPOSE = /^mask_decoder\.output_upscaling\.[03]\.(weight|bias)$/;
const CONV2D = /^prompt_encoder\.mask_downscaling\.[036]\.(weight|bias)$/;
const MONAI_PATCH = "image_encoder.patch_embedding.";

/**
 * The rule for parameter `name` of shape `shape`; `shapes` gives the other
 * parameters (a bias's bound comes from its weight's fan-in).
 */
export function initRule(name: string, shape: readonly number[], shapes: ReadonlyMap<string, readonly number[]>): InitRule {
  const weightOf = (bias: string): readonly number[] => {
    const w = shapes.get(bias.replace(/\.bias$/, ".weight"));
    if (!w) throw new Error(`initWeights: ${name} has no sibling weight to take the fan-in from`);
    return w;
  };
  const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const isBias = name.endsWith(".bias");

  if (NORM.test(name)) return { kind: "constant", value: isBias ? 0 : 1 };
  if (name === "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix") return { kind: "normal", std: 1 };
  if (EMBEDDING_TABLE.test(name)) return { kind: "normal", std: 1 };
  if (/\.embeddings\.(?:token|position)_embedding\.weight$/.test(name)) return { kind: "normal", std: 0.02 };
  if (name.startsWith(MONAI_PATCH)) {
    if (name === `${MONAI_PATCH}position_embeddings` || name === `${MONAI_PATCH}patch_embeddings.1.weight`) return { kind: "normal", std: 0.02, truncate: 2 };
    if (name === `${MONAI_PATCH}patch_embeddings.1.bias`) return { kind: "constant", value: 0 };
  }
  if (CONV_TRANSPOSE.test(name)) {
    const w = isBias ? weightOf(name) : shape; // [in, out, k, k, k]
    return { kind: "uniform", bound: 1 / Math.sqrt(prod(w.slice(1))) };
  }
  if (CONV2D.test(name)) {
    const w = isBias ? weightOf(name) : shape; // [out, in, kh, kw]
    return { kind: "uniform", bound: 1 / Math.sqrt(prod(w.slice(1))) };
  }
  // Everything else is an nn.Linear ([out, in] weight, [out] bias).
  const w = isBias ? weightOf(name) : shape;
  if (w.length !== 2 || !(name.endsWith(".weight") || isBias)) {
    throw new Error(`initWeights: no initialisation rule for ${name} [${shape.join(", ")}] (not a Linear, norm, embedding or conv)`);
  }
  return { kind: "uniform", bound: 1 / Math.sqrt(w[1]!) };
}

/** FNV-1a of a string: spreads parameter names over seeds. */
function fnv1a(s: string): number {
  let h = 2166136261;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h >>> 0;
}

/** Standard normal draws (Box-Muller, both halves used). */
function normals(rng: Rng, out: Float32Array, std: number, truncate?: number): void {
  let i = 0;
  const put = (z: number): void => {
    const v = z * std;
    if (truncate !== undefined && Math.abs(v) > truncate) return; // redraw (trunc_normal_ semantics)
    out[i++] = v;
  };
  while (i < out.length) {
    const u1 = 1 - rng.float(); // (0, 1]: log is finite
    const u2 = rng.float();
    const r = Math.sqrt(-2 * Math.log(u1));
    put(r * Math.cos(2 * Math.PI * u2));
    if (i < out.length) put(r * Math.sin(2 * Math.PI * u2));
  }
}

/** Fills `out` following `rule`, drawing from `rng`. */
export function fillRule(rule: InitRule, rng: Rng, out: Float32Array): void {
  switch (rule.kind) {
    case "constant":
      out.fill(rule.value);
      return;
    case "uniform":
      for (let i = 0; i < out.length; i++) out[i] = rule.bound * (2 * rng.float() - 1);
      return;
    case "normal":
      normals(rng, out, rule.std, rule.truncate);
      return;
  }
}

/**
 * Initial values of every parameter of `cfg` (names and shapes of
 * expectedParameters, in its order), deterministic for a given seed.
 */
export function initWeights(cfg: SegVolConfig, seed: number): Map<string, InitTensor> {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`initWeights: seed must be an integer in [0, 2^32), got ${seed}`);
  const shapes = expectedParameters(cfg);
  const out = new Map<string, InitTensor>();
  for (const [name, shape] of shapes) {
    const rule = initRule(name, shape, shapes);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    fillRule(rule, new Rng((Math.imul(seed, 0x9e3779b1) ^ fnv1a(name)) >>> 0), data);
    out.set(name, { shape: [...shape], data });
  }
  return out;
}
