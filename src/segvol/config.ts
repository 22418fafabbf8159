// The model configuration (`config.json` of a converted weights folder).
// Every size the model code uses comes from here, so small test models and
// the official one run through the same code. A partial file is merged over
// DEFAULT_CONFIG (the official SegVol); unknown fields and inconsistent sizes
// are refused with an error naming the field and where it came from.
import { readFileSync } from "../node/host.node.js";

export interface VitConfig {
  hidden_size: number;
  mlp_dim: number;
  num_layers: number;
  num_heads: number;
}

export interface DecoderConfig {
  transformer_dim: number;
  depth: number;
  num_heads: number;
  mlp_dim: number;
  num_multimask_outputs: number;
  iou_head_depth: number;
  iou_head_hidden_dim: number;
  attention_downsample_rate: number;
}

export interface TextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  layer_norm_eps: number;
  hidden_act: "quick_gelu" | "gelu_new" | "gelu";
  template: string;
}

export interface SegVolConfig {
  spatial_size: [number, number, number];
  patch_size: [number, number, number];
  in_channels: number;
  vit: VitConfig;
  decoder: DecoderConfig;
  prompt_encoder: { mask_in_chans: number };
  /** null: a model without the text tower (no text prompts). */
  text: TextConfig | null;
}

export const DEFAULT_CONFIG: SegVolConfig = deepFreeze({
  spatial_size: [32, 256, 256],
  patch_size: [4, 16, 16],
  in_channels: 1,
  vit: { hidden_size: 768, mlp_dim: 3072, num_layers: 12, num_heads: 12 },
  decoder: {
    transformer_dim: 768,
    depth: 2,
    num_heads: 8,
    mlp_dim: 2048,
    num_multimask_outputs: 3,
    iou_head_depth: 3,
    iou_head_hidden_dim: 256,
    attention_downsample_rate: 2,
  },
  prompt_encoder: { mask_in_chans: 16 },
  text: {
    vocab_size: 49408,
    hidden_size: 512,
    intermediate_size: 2048,
    num_hidden_layers: 12,
    num_attention_heads: 8,
    max_position_embeddings: 77,
    layer_norm_eps: 1e-5,
    hidden_act: "quick_gelu",
    template: "A computerized tomography of a {}.",
  },
});

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Kind = "posint" | "count" | "posnum" | "triple" | "act" | "template";

// The schema: each leaf's kind. "count" allows 0 (e.g. a decoder of depth 0
// is meaningless but num_multimask_outputs 0 is a valid single-mask model).
const VIT_SCHEMA: Record<keyof VitConfig, Kind> = { hidden_size: "posint", mlp_dim: "posint", num_layers: "posint", num_heads: "posint" };
const DECODER_SCHEMA: Record<keyof DecoderConfig, Kind> = {
  transformer_dim: "posint",
  depth: "posint",
  num_heads: "posint",
  mlp_dim: "posint",
  num_multimask_outputs: "count",
  iou_head_depth: "posint",
  iou_head_hidden_dim: "posint",
  attention_downsample_rate: "posint",
};
const TEXT_SCHEMA: Record<keyof TextConfig, Kind> = {
  vocab_size: "posint",
  hidden_size: "posint",
  intermediate_size: "posint",
  num_hidden_layers: "posint",
  num_attention_heads: "posint",
  max_position_embeddings: "posint",
  layer_norm_eps: "posnum",
  hidden_act: "act",
  template: "template",
};
const ACTS = ["quick_gelu", "gelu_new", "gelu"];
const TOP_KEYS = ["spatial_size", "patch_size", "in_channels", "vit", "decoder", "prompt_encoder", "text"];

/**
 * Merges a (possibly partial) config object over DEFAULT_CONFIG and checks it.
 * `source` (a file path) is named in every error.
 */
export function parseConfig(json: unknown, source = "config"): SegVolConfig {
  const err = (field: string, msg: string): never => {
    throw new ConfigError(`config ${source}: ${field}: ${msg}`);
  };
  const obj = asObject(json, "(top level)", err);
  for (const k of Object.keys(obj)) if (!TOP_KEYS.includes(k)) err(k, `unknown field (known: ${TOP_KEYS.join(", ")})`);

  const d = DEFAULT_CONFIG;
  const cfg: SegVolConfig = {
    spatial_size: "spatial_size" in obj ? (leaf(obj.spatial_size, "triple", "spatial_size", err) as Triple) : [...d.spatial_size],
    patch_size: "patch_size" in obj ? (leaf(obj.patch_size, "triple", "patch_size", err) as Triple) : [...d.patch_size],
    in_channels: "in_channels" in obj ? (leaf(obj.in_channels, "posint", "in_channels", err) as number) : d.in_channels,
    vit: section(obj.vit, "vit", VIT_SCHEMA, d.vit, err),
    decoder: section(obj.decoder, "decoder", DECODER_SCHEMA, d.decoder, err),
    prompt_encoder: section(obj.prompt_encoder, "prompt_encoder", { mask_in_chans: "posint" }, d.prompt_encoder, err),
    text: obj.text === null ? null : section(obj.text, "text", TEXT_SCHEMA, d.text!, err),
  };
  checkConsistency(cfg, err);
  return cfg;
}

/** Reads and parses a config.json file. */
export function loadConfig(path: string): SegVolConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`config ${path}: cannot read: ${(e as Error).message}`);
  }
  return parseConfigText(text, path);
}

/** Parses the text of a config.json; `path` names it in errors. */
export function parseConfigText(text: string, path = "config.json"): SegVolConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config ${path}: not valid JSON: ${(e as Error).message}`);
  }
  return parseConfig(json, path);
}

type Triple = [number, number, number];
type Err = (field: string, msg: string) => never;

function asObject(v: unknown, field: string, err: Err): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) err(field, `expected an object, got ${describe(v)}`);
  return v as Record<string, unknown>;
}

function section<T extends object>(v: unknown, name: string, schema: Record<keyof T, Kind>, defaults: T, err: Err): T {
  const out = { ...defaults } as Record<string, unknown>;
  if (v === undefined) return out as T;
  const obj = asObject(v, name, err);
  const known = Object.keys(schema);
  for (const [k, val] of Object.entries(obj)) {
    if (!known.includes(k)) err(`${name}.${k}`, `unknown field (known: ${known.join(", ")})`);
    out[k] = leaf(val, schema[k as keyof T], `${name}.${k}`, err);
  }
  return out as T;
}

function leaf(v: unknown, kind: Kind, field: string, err: Err): unknown {
  switch (kind) {
    case "posint":
      if (!Number.isInteger(v) || (v as number) < 1) err(field, `expected a positive integer, got ${describe(v)}`);
      return v;
    case "count":
      if (!Number.isInteger(v) || (v as number) < 0) err(field, `expected a non-negative integer, got ${describe(v)}`);
      return v;
    case "posnum":
      if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) err(field, `expected a positive number, got ${describe(v)}`);
      return v;
    case "triple":
      if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => Number.isInteger(x) && x >= 1)) {
        err(field, `expected 3 positive integers [D, H, W], got ${describe(v)}`);
      }
      return [...(v as number[])];
    case "act":
      if (typeof v !== "string" || !ACTS.includes(v)) err(field, `expected one of ${ACTS.join(", ")}, got ${describe(v)}`);
      return v;
    case "template":
      if (typeof v !== "string" || v.split("{}").length !== 2) err(field, `expected a string with exactly one "{}", got ${describe(v)}`);
      return v;
  }
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Sizes that the architecture ties together (see docs in the spec §2-5). */
function checkConsistency(c: SegVolConfig, err: Err): void {
  for (let i = 0; i < 3; i++) {
    if (c.spatial_size[i]! % c.patch_size[i]! !== 0) {
      err("spatial_size", `${JSON.stringify(c.spatial_size)} is not divisible by patch_size ${JSON.stringify(c.patch_size)} on axis ${i}`);
    }
  }
  if (c.vit.hidden_size % c.vit.num_heads !== 0) {
    err("vit.num_heads", `${c.vit.num_heads} does not divide vit.hidden_size ${c.vit.hidden_size}`);
  }
  const dim = c.decoder.transformer_dim;
  // The decoder attends over the image embedding directly: same width.
  if (dim !== c.vit.hidden_size) err("decoder.transformer_dim", `${dim} must equal vit.hidden_size ${c.vit.hidden_size}`);
  if (dim % c.decoder.num_heads !== 0) err("decoder.num_heads", `${c.decoder.num_heads} does not divide decoder.transformer_dim ${dim}`);
  if (dim % c.decoder.attention_downsample_rate !== 0) {
    err("decoder.attention_downsample_rate", `${c.decoder.attention_downsample_rate} does not divide decoder.transformer_dim ${dim}`);
  }
  const inner = dim / c.decoder.attention_downsample_rate;
  if (inner % c.decoder.num_heads !== 0) {
    err("decoder.num_heads", `${c.decoder.num_heads} does not divide the cross-attention width ${inner} (transformer_dim / attention_downsample_rate)`);
  }
  // Output upscaling goes dim → dim/4 → dim/8; the positional encoding uses dim/2 per sin/cos half.
  if (dim % 8 !== 0) err("decoder.transformer_dim", `${dim} must be divisible by 8 (upscaling to dim/4 and dim/8)`);
  if (c.prompt_encoder.mask_in_chans % 4 !== 0) {
    err("prompt_encoder.mask_in_chans", `${c.prompt_encoder.mask_in_chans} must be divisible by 4 (mask_downscaling's first conv has mask_in_chans/4 channels)`);
  }
  const t = c.text;
  if (t && t.hidden_size % t.num_attention_heads !== 0) {
    err("text.num_attention_heads", `${t.num_attention_heads} does not divide text.hidden_size ${t.hidden_size}`);
  }
}

function deepFreeze<T>(o: T): T {
  if (typeof o === "object" && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
