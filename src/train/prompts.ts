// Prompt sampling for the supervised SegVol objective (spec §7), on one
// window's binary (or soft) label of one category, C-order [D, H, W]:
//  - box: the label's bounding box (inclusive corners (d0,h0,w0,d1,h1,w1)),
//    optionally jittered by up to ±jitter voxels per coordinate (upstream
//    trains with 10); all −1 when the label is empty;
//  - points: one random positive (label > 0.9), then 0..maxExtraPositive
//    further positives and 0..maxExtraNegative negatives (label < 0.1), each
//    group distinct voxels, padded with label −1 (coordinates −1) to a fixed
//    count (1 + maxExtraPositive + maxExtraNegative) so that every step's
//    prompt has the same size; with no positive voxel the first point is
//    padding too, as upstream;
//  - the six prompt sets per step: points+text, box+text, text, box, points,
//    box+points; a model without a text tower uses the three spatial sets.
// Voxels are drawn by rank without listing them: a counting pass, k ranks
// chosen with Floyd's algorithm, a second pass mapping ranks to voxels.
import type { Box6, WindowPrompt } from "../segvol/model.js";
import type { Vec3 } from "../segvol/prompt_encoder.js";
import type { Rng } from "./rng.js";

export interface PointSet {
  coords: Vec3[];
  labels: number[];
}

export type PromptSetName = "points+text" | "box+text" | "text" | "box" | "points" | "box+points";

/** Upstream's order of the six sets. */
export const PROMPT_SETS: readonly PromptSetName[] = ["points+text", "box+text", "text", "box", "points", "box+points"];
/** The sets a model without a text tower trains on. */
export const SPATIAL_PROMPT_SETS: readonly PromptSetName[] = ["box", "points", "box+points"];

export interface PointOptions {
  maxExtraPositive?: number;
  maxExtraNegative?: number;
  /** Label above which a voxel is positive (default 0.9). */
  posThreshold?: number;
  /** Label below which a voxel is negative (default 0.1). */
  negThreshold?: number;
}

export interface PromptOptions extends PointOptions {
  /** Box jitter in voxels per coordinate (default 0; upstream uses 10). */
  boxJitter?: number;
}

function checkMask(op: string, mask: ArrayLike<number>, shape: Vec3): void {
  if (!shape.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`${op}: shape must be three positive integers, got [${shape.join(", ")}]`);
  const n = shape[0] * shape[1] * shape[2];
  if (mask.length !== n) throw new Error(`${op}: label has ${mask.length} values, shape [${shape.join(", ")}] needs ${n}`);
}

function coordOf(idx: number, shape: Vec3): Vec3 {
  const w = idx % shape[2];
  const h = Math.floor(idx / shape[2]) % shape[1];
  const d = Math.floor(idx / (shape[1] * shape[2]));
  return [d, h, w];
}

/** The bounding box of voxels > 0 (inclusive corners), or all −1 for an empty label. */
export function labelBox(mask: ArrayLike<number>, shape: Vec3, jitter = 0, rng?: Rng): Box6 {
  const op = "labelBox";
  checkMask(op, mask, shape);
  if (!(Number.isInteger(jitter) && jitter >= 0)) throw new Error(`${op}: jitter must be an integer ≥ 0, got ${jitter}`);
  if (jitter > 0 && !rng) throw new Error(`${op}: jitter needs an rng`);
  const lo: Vec3 = [Infinity, Infinity, Infinity];
  const hi: Vec3 = [-1, -1, -1];
  const [D, H, W] = shape;
  for (let d = 0, i = 0; d < D; d++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++, i++) {
        if (mask[i]! > 0) {
          if (d < lo[0]) lo[0] = d;
          if (d > hi[0]) hi[0] = d;
          if (h < lo[1]) lo[1] = h;
          if (h > hi[1]) hi[1] = h;
          if (w < lo[2]) lo[2] = w;
          if (w > hi[2]) hi[2] = w;
        }
      }
    }
  }
  if (hi[0] < 0) return [-1, -1, -1, -1, -1, -1];
  if (jitter === 0) return [lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]];
  // Upstream clamps the jittered max corner to the size; we clamp to size − 1
  // (a box corner must be a voxel of the window) and keep min ≤ max.
  const box = [0, 0, 0, 0, 0, 0] as Box6;
  for (let a = 0; a < 3; a++) {
    const lim = shape[a]! - 1;
    const a0 = Math.min(lim, Math.max(0, lo[a]! + rng!.int(-jitter, jitter)));
    const a1 = Math.min(lim, Math.max(0, hi[a]! + rng!.int(-jitter, jitter)));
    box[a] = Math.min(a0, a1);
    box[a + 3] = Math.max(a0, a1);
  }
  return box;
}

/** Voxel indices of the given ranks (sorted ascending) among voxels where `pred` holds. */
function voxelsAtRanks(mask: ArrayLike<number>, pred: (v: number) => boolean, ranks: number[]): number[] {
  const sorted = [...ranks].sort((a, b) => a - b);
  const byRank = new Map<number, number>();
  let r = 0, k = 0;
  for (let i = 0; i < mask.length && k < sorted.length; i++) {
    if (!pred(mask[i]!)) continue;
    while (k < sorted.length && sorted[k] === r) byRank.set(sorted[k++]!, i);
    r++;
  }
  return ranks.map((q) => byRank.get(q)!);
}

/** The point prompt of one step; always 1 + maxExtraPositive + maxExtraNegative points. */
export function samplePoints(mask: ArrayLike<number>, shape: Vec3, rng: Rng, opts: PointOptions = {}): PointSet {
  const op = "samplePoints";
  checkMask(op, mask, shape);
  const maxPos = opts.maxExtraPositive ?? 10;
  const maxNeg = opts.maxExtraNegative ?? 10;
  const posT = opts.posThreshold ?? 0.9;
  const negT = opts.negThreshold ?? 0.1;
  if (!(Number.isInteger(maxPos) && maxPos >= 0 && Number.isInteger(maxNeg) && maxNeg >= 0)) {
    throw new Error(`${op}: maxExtraPositive and maxExtraNegative must be integers ≥ 0, got ${maxPos}, ${maxNeg}`);
  }
  if (!(negT <= posT)) throw new Error(`${op}: negThreshold ${negT} exceeds posThreshold ${posT}`);
  const isPos = (v: number) => v > posT;
  const isNeg = (v: number) => v < negT;
  let nPos = 0, nNeg = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i]!;
    if (isPos(v)) nPos++;
    else if (isNeg(v)) nNeg++;
  }
  // Draw counts first, then voxels, in a fixed order (reproducible by seed).
  const wantPos = rng.int(0, maxPos);
  const wantNeg = rng.int(0, maxNeg);
  const coords: Vec3[] = [];
  const labels: number[] = [];
  if (nPos > 0) {
    const first = rng.below(nPos);
    const extra = rng.distinct(nPos, wantPos);
    for (const idx of voxelsAtRanks(mask, isPos, [first, ...extra])) {
      coords.push(coordOf(idx, shape));
      labels.push(1);
    }
  } else {
    coords.push([-1, -1, -1]);
    labels.push(-1);
  }
  if (nNeg > 0 && wantNeg > 0) {
    for (const idx of voxelsAtRanks(mask, isNeg, rng.distinct(nNeg, wantNeg))) {
      coords.push(coordOf(idx, shape));
      labels.push(0);
    }
  }
  const total = 1 + maxPos + maxNeg;
  while (labels.length < total) {
    coords.push([-1, -1, -1]);
    labels.push(-1);
  }
  return { coords, labels };
}

export interface StepPrompts {
  box: Box6;
  points: PointSet;
  /** The prompt sets of this step, in upstream's order. */
  sets: { name: PromptSetName; prompt: WindowPrompt }[];
}

/** Prompts for one category in one window: box, points, and the six (or three spatial) sets. */
export function samplePrompts(
  mask: ArrayLike<number>,
  shape: Vec3,
  category: string | null,
  rng: Rng,
  opts: PromptOptions = {},
): StepPrompts {
  const box = labelBox(mask, shape, opts.boxJitter ?? 0, rng);
  const points = samplePoints(mask, shape, rng, opts);
  return { box, points, sets: promptSets(box, points, category) };
}

/** The prompt sets for a box, points and a category (null: no text tower, spatial sets only). */
export function promptSets(box: Box6, points: PointSet, category: string | null): { name: PromptSetName; prompt: WindowPrompt }[] {
  if (category !== null && category.trim() === "") throw new Error("promptSets: empty category name (pass null for a model without a text tower)");
  const names = category === null ? SPATIAL_PROMPT_SETS : PROMPT_SETS;
  return names.map((name) => {
    const prompt: WindowPrompt = {};
    const parts = name.split("+");
    if (parts.includes("points")) prompt.points = { coords: points.coords.map((c) => [...c] as Vec3), labels: [...points.labels] };
    if (parts.includes("box")) prompt.box = [...box] as Box6;
    if (parts.includes("text")) prompt.text = category!;
    return { name, prompt };
  });
}
