// The matmul, attention and conv-GEMM shapes one window of a SegVol model
// runs (image encoder and mask decoder; the text tower's are a few tokens
// long and cost little), read off its configuration, and `tuneModel`, which
// times them and caches the winners: what `segvol tune` runs. Shapes whose
// dimensions share a bucket share a tuned variant, so the list holds each
// bucket once.
import { tunedKey, type TunedOp } from "../kernels/profile.js";
import { entriesOf, saveTunedChoices, type CacheOptions } from "../tune/cache.js";
import { tuneDims, tuneShapes, type TuneShape, type TuneShapesOptions } from "../tune/jobs.js";
import type { TuneResult } from "../tune/tuner.js";
import type { SegVolConfig } from "./config.js";

/**
 * Decoder tokens of one prompt: the IoU token, the mask tokens and the
 * sparse prompt rows (a box's two corners, or points and their padding
 * point). 8 holds a box or a few points: one bucket for all of them.
 */
export const PROMPT_TOKENS = 8;

function encoderShapes(c: SegVolConfig, tokens: number): TuneShape[] {
  const { hidden_size: E, mlp_dim, num_heads } = c.vit;
  const patch = c.patch_size[0] * c.patch_size[1] * c.patch_size[2] * c.in_channels;
  return [
    { op: "gemm", M: tokens, N: E, K: patch }, // patch embedding
    { op: "matmul", M: tokens, N: E, K: E }, // q, k, v and the output projection
    { op: "matmul", M: tokens, N: mlp_dim, K: E },
    { op: "matmul", M: tokens, N: E, K: mlp_dim },
    { op: "attention", Nq: tokens, Nk: tokens, H: num_heads, dk: E / num_heads, dv: E / num_heads },
  ];
}

function decoderShapes(c: SegVolConfig, tokens: number, T: number): TuneShape[] {
  const d = c.decoder;
  const C = d.transformer_dim;
  const inner = C / d.attention_downsample_rate;
  const H = d.num_heads;
  const voxels = tokens * 8; // after the first upscaling (stride 2 on each axis)
  return [
    { op: "matmul", M: T, N: C, K: C }, // token self-attention projections, hypernetwork
    { op: "attention", Nq: T, Nk: T, H, dk: C / H, dv: C / H },
    { op: "matmul", M: T, N: inner, K: C }, // cross-attention projections of the tokens
    { op: "matmul", M: T, N: C, K: inner },
    { op: "matmul", M: tokens, N: inner, K: C }, // … and of the image
    { op: "matmul", M: tokens, N: C, K: inner },
    { op: "attention", Nq: T, Nk: tokens, H, dk: inner / H, dv: inner / H }, // token to image
    { op: "attention", Nq: tokens, Nk: T, H, dk: inner / H, dv: inner / H }, // image to token
    { op: "matmul", M: T, N: d.mlp_dim, K: C },
    { op: "matmul", M: T, N: C, K: d.mlp_dim },
    { op: "gemm", M: (C / 4) * 8, N: tokens, K: C }, // upscaling ConvTranspose3d, kernel = stride 2
    { op: "gemm", M: (C / 8) * 8, N: voxels, K: C / 4 },
    { op: "matmul", M: 1, N: voxels * 8, K: C / 8 }, // the mask: hypernetwork output · upscaled embedding
  ];
}

/** The shapes one window of the model `c` runs, each bucket once, encoder first. */
export function modelTuneShapes(c: SegVolConfig, promptTokens = PROMPT_TOKENS): TuneShape[] {
  const tokens = c.spatial_size.reduce((n, s, i) => n * (s / c.patch_size[i]!), 1);
  const all = [...encoderShapes(c, tokens), ...decoderShapes(c, tokens, promptTokens)];
  // Buckets are the same at every precision: compare the keys at one.
  const bucket = (s: TuneShape) => tunedKey(s.op, tuneDims(s), "f32");
  return all.filter((s, i) => all.findIndex((o) => bucket(o) === bucket(s)) === i);
}

export interface TuneModelOptions extends TuneShapesOptions, CacheOptions {
  /** Tune only these ops (default all). */
  ops?: readonly TunedOp[];
}

/**
 * Times every candidate of the model's shapes on this adapter at
 * `opts.precision` (default f32; see src/tune/tuner.ts), installs the
 * winners in the device profile and adds them to the adapter's cache (a file in Node, IndexedDB in a page).
 * Returns the results and where the cache was written (null when nothing
 * was timed: no timestamp-query).
 */
export async function tuneModel(c: SegVolConfig, opts: TuneModelOptions = {}): Promise<{ results: TuneResult[]; cachedAt: string | null }> {
  const shapes = modelTuneShapes(c).filter((s) => !opts.ops || opts.ops.includes(s.op));
  const results = await tuneShapes(shapes, opts);
  const cachedAt = results.length > 0 ? await saveTunedChoices(entriesOf(results), opts) : null;
  return { results, cachedAt };
}
