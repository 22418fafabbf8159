// User prompts → model prompts. Users give voxel indices (i, j, k) of the
// input array; the model wants window voxel indices (d, h, w). The spaces:
//   input (i, j, k) → model (d, h, w) = (k, j, i) → cropped (minus the crop
//   start) → zoom-out window (nearest-exact resize of the crop) or a zoom-in
//   window (a box of the padded ROI).
//
// Upstream builds binary maps (a cube for a box, single voxels for points) in
// zoom-out space, resizes them, and reads boxes / random points back from the
// maps. The equivalent coordinate maps used here, per axis (n = cropped size,
// m = window size, src_x(·) / src_n(·) = PyTorch's nearest-exact / nearest
// source index, see resize.ts):
// - zoom-out box [a, b] → the bounding box of the resized cube,
//   {x : a ≤ src_x(x) ≤ b}; where that is empty (a box thinner than one
//   zoom-out voxel) → [pt(a), pt(b)].
// - zoom-out point p → pt(p) = min(⌊(p + ½)·m/n⌋, m−1), the zoom-out voxel
//   whose footprint holds p's centre (when upsampling, one of the voxels the
//   resized point map marks; when downsampling the map could lose the point).
// - zoom-in box (one window only): the zoom-out cube [x0, x1] resized back
//   with `nearest`, {y : x0 ≤ src_n(y) ≤ x1}, cut to the window's ROI data.
// - zoom-in points: the user's own positive points (exact, rather than a
//   random voxel of the blurred map): the first five, in the user's order,
//   that lie inside the window's ROI data, padded to five with label −1
//   points (upstream: 1 random + up to 4 more, padded to 5); none inside →
//   one padding point labelled −1.
// Negative points only reach the zoom-out window (upstream's point map keeps
// positives only).
import { sourceIndex } from "./resize.js";
import type { Box3, Target, Vec3, WindowPrompt } from "./types.js";

type Box6 = [number, number, number, number, number, number];

/** A target's prompts in cropped model space (inclusive boxes). */
export interface CroppedTarget {
  name: string;
  text?: string;
  box?: { lo: Vec3; hi: Vec3 };
  points: { p: Vec3; label: 0 | 1 }[];
  hasPoints: boolean;
}

const EMPTY_BOX: Box6 = [-1, -1, -1, -1, -1, -1];

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

/** Validates targets against the input dims (I, J, K); errors name the target and the problem. */
export function checkTargets(targets: readonly Target[], dims: Vec3): void {
  if (!Array.isArray(targets) || targets.length === 0) throw new Error("segment: no targets given");
  const dimStr = `(${dims.join(", ")})`;
  targets.forEach((t, n) => {
    const who = `target ${n} "${t?.name}"`;
    if (typeof t?.name !== "string" || t.name.length === 0) throw new Error(`segment: target ${n} has no name`);
    const hasText = typeof t.text === "string" && t.text.trim().length > 0;
    if (t.text !== undefined && !hasText) throw new Error(`segment: ${who}: text prompt is empty`);
    const hasPoints = t.points !== undefined && t.points.length > 0;
    if (!hasText && t.box === undefined && !hasPoints) {
      throw new Error(`segment: ${who}: no prompt (give a text, a box or at least one point)`);
    }
    if (t.box !== undefined) {
      const b = t.box;
      if (!Array.isArray(b) || b.length !== 6 || !b.every(isInt)) {
        throw new Error(`segment: ${who}: box must be six integers (i0, j0, k0, i1, j1, k1), got ${JSON.stringify(b)}`);
      }
      for (let a = 0; a < 3; a++) {
        if (b[a]! > b[a + 3]!) throw new Error(`segment: ${who}: box (${b.join(", ")}) has min > max along axis ${"ijk"[a]}`);
        if (b[a]! < 0 || b[a + 3]! >= dims[a]!) {
          throw new Error(`segment: ${who}: box (${b.join(", ")}) lies outside the volume of dims ${dimStr} (valid indices 0..dim−1)`);
        }
      }
    }
    const pts: NonNullable<Target["points"]> = t.points ?? [];
    pts.forEach((pt, q) => {
      const c = pt?.ijk;
      if (!Array.isArray(c) || c.length !== 3 || !c.every(isInt)) {
        throw new Error(`segment: ${who}: point ${q} must have three integer indices (i, j, k), got ${JSON.stringify(c)}`);
      }
      if (c.some((v, a) => v < 0 || v >= dims[a]!)) {
        throw new Error(`segment: ${who}: point ${q} (${c.join(", ")}) lies outside the volume of dims ${dimStr}`);
      }
      if (pt.label !== 0 && pt.label !== 1) {
        throw new Error(`segment: ${who}: point ${q} has label ${JSON.stringify(pt.label)}; labels are 1 (positive) or 0 (negative)`);
      }
    });
  });
}

/** Input (i, j, k) → model (d, h, w). */
export function toModel(ijk: Vec3): Vec3 {
  return [ijk[2], ijk[1], ijk[0]];
}

/**
 * Moves a checked target into cropped model space. A box is clipped to the
 * crop; one entirely outside it, or a positive point outside it, is an error
 * (the crop holds every non-background voxel); negative points outside are dropped.
 */
export function cropTarget(t: Target, crop: Box3): CroppedTarget {
  const out: CroppedTarget = { name: t.name, points: [], hasPoints: (t.points?.length ?? 0) > 0 };
  if (t.text !== undefined) out.text = t.text;
  const cropStr = () => `model-space (d, h, w) crop [${crop.start.join(", ")}] .. [${crop.end.map((e) => e - 1).join(", ")}]`;
  if (t.box) {
    const lo = toModel([t.box[0], t.box[1], t.box[2]]), hi = toModel([t.box[3], t.box[4], t.box[5]]);
    for (let a = 0; a < 3; a++) {
      lo[a] = Math.max(lo[a]!, crop.start[a]!) - crop.start[a]!;
      hi[a] = Math.min(hi[a]!, crop.end[a]! - 1) - crop.start[a]!;
      if (lo[a]! > hi[a]!) {
        throw new Error(`segment: target "${t.name}": box (${t.box.join(", ")}) lies entirely outside the foreground (${cropStr()})`);
      }
    }
    out.box = { lo, hi };
  }
  for (const pt of t.points ?? []) {
    const m = toModel(pt.ijk);
    const inside = m.every((v, a) => v >= crop.start[a]! && v < crop.end[a]!);
    if (!inside) {
      if (pt.label === 0) continue;
      throw new Error(`segment: target "${t.name}": positive point (${pt.ijk.join(", ")}) lies outside the foreground (${cropStr()})`);
    }
    out.points.push({ p: [m[0] - crop.start[0], m[1] - crop.start[1], m[2] - crop.start[2]], label: pt.label });
  }
  return out;
}

/** pt(p): the zoom-out voxel holding cropped index p's centre. */
export function mapPoint(p: number, n: number, m: number): number {
  return Math.min(Math.floor(((p + 0.5) * m) / n), m - 1);
}

/** A cropped inclusive interval [a, b] (size n) → its interval in the zoom-out window (size m). */
export function mapInterval(a: number, b: number, n: number, m: number): [number, number] {
  let x0 = -1, x1 = -1;
  for (let x = 0; x < m; x++) {
    const s = sourceIndex(x, n, m, "nearest-exact");
    if (s >= a && s <= b) {
      if (x0 < 0) x0 = x;
      x1 = x;
    }
  }
  return x0 < 0 ? [mapPoint(a, n, m), mapPoint(b, n, m)] : [x0, x1];
}

/** A zoom-out interval [x0, x1] (size m) resized back to the crop (size n) with `nearest`; null when no voxel samples it. */
export function unmapInterval(x0: number, x1: number, m: number, n: number): [number, number] | null {
  let y0 = -1, y1 = -1;
  for (let y = 0; y < n; y++) {
    const s = sourceIndex(y, m, n, "nearest");
    if (s >= x0 && s <= x1) {
      if (y0 < 0) y0 = y;
      y1 = y;
    }
  }
  return y0 < 0 ? null : [y0, y1];
}

/** Everything needed to prompt one target's windows. */
export interface PromptPlan {
  zoomOut: WindowPrompt;
  /** The user's box as the zoom-out cube resized back to the crop (inclusive), or null. */
  cube: { lo: Vec3; hi: Vec3 } | null;
}

export function planPrompts(t: CroppedTarget, cropShape: Vec3, window: Vec3): PromptPlan {
  const zoomOut: WindowPrompt = {};
  if (t.text !== undefined) zoomOut.text = t.text;
  let cube: PromptPlan["cube"] = null;
  if (t.box) {
    const box: Box6 = [0, 0, 0, 0, 0, 0];
    const lo: Vec3 = [0, 0, 0], hi: Vec3 = [0, 0, 0];
    let empty = false;
    for (let a = 0; a < 3; a++) {
      const [x0, x1] = mapInterval(t.box.lo[a]!, t.box.hi[a]!, cropShape[a]!, window[a]!);
      box[a] = x0;
      box[a + 3] = x1;
      const back = unmapInterval(x0, x1, window[a]!, cropShape[a]!);
      if (back) [lo[a], hi[a]] = back;
      else empty = true;
    }
    zoomOut.box = box;
    cube = empty ? null : { lo, hi };
  }
  if (t.points.length > 0) {
    zoomOut.points = {
      coords: t.points.map(({ p }) => [0, 1, 2].map((a) => mapPoint(p[a]!, cropShape[a]!, window[a]!)) as Vec3),
      labels: t.points.map(({ label }) => label),
    };
  }
  return { zoomOut, cube };
}

/**
 * The prompt of one zoom-in window. `origin` is the window's corner in
 * cropped coordinates, `valid` the part of it holding ROI data, `maskBox`
 * the zoom-out mask's box inside the window (window coordinates, or null).
 */
export function zoomInPrompt(
  t: CroppedTarget,
  plan: PromptPlan,
  origin: Vec3,
  valid: Box3,
  maskBox: Box6 | null,
  singleWindow: boolean,
): WindowPrompt {
  const prompt: WindowPrompt = {};
  if (t.text !== undefined) prompt.text = t.text;
  if (t.box === undefined && !t.hasPoints) return prompt;
  let box: Box6 = maskBox ?? EMPTY_BOX;
  if (t.box !== undefined && singleWindow) {
    box = EMPTY_BOX;
    if (plan.cube) {
      const b: Box6 = [0, 0, 0, 0, 0, 0];
      let ok = true;
      for (let a = 0; a < 3; a++) {
        const lo = Math.max(plan.cube.lo[a]!, valid.start[a]!), hi = Math.min(plan.cube.hi[a]!, valid.end[a]! - 1);
        if (lo > hi) ok = false;
        b[a] = lo - origin[a]!;
        b[a + 3] = hi - origin[a]!;
      }
      if (ok) box = b;
    }
  }
  prompt.box = [...box];
  if (t.hasPoints) {
    const coords: Vec3[] = [], labels: number[] = [];
    for (const { p, label } of t.points) {
      if (label !== 1 || coords.length === 5) continue;
      if (p.every((v, a) => v >= valid.start[a]! && v < valid.end[a]!)) {
        coords.push([p[0] - origin[0], p[1] - origin[1], p[2] - origin[2]]);
        labels.push(1);
      }
    }
    const total = coords.length === 0 ? 1 : 5;
    while (coords.length < total) {
      coords.push([-1, -1, -1]);
      labels.push(-1);
    }
    prompt.points = { coords, labels };
  }
  return prompt;
}

/** The zoom-out mask's (logits > 0) bounding box inside a window, in window coordinates; null when empty. */
export function maskBoxInWindow(
  logits: Float32Array,
  fullShape: Vec3,
  cropStart: Vec3,
  origin: Vec3,
  valid: Box3,
): Box6 | null {
  const [, H, W] = fullShape;
  let d0 = Infinity, h0 = Infinity, w0 = Infinity, d1 = -1, h1 = -1, w1 = -1;
  for (let d = valid.start[0]; d < valid.end[0]; d++) {
    for (let h = valid.start[1]; h < valid.end[1]; h++) {
      const row = ((d + cropStart[0]) * H + h + cropStart[1]) * W + cropStart[2];
      for (let w = valid.start[2]; w < valid.end[2]; w++) {
        if (logits[row + w]! > 0) {
          if (d < d0) d0 = d;
          if (d > d1) d1 = d;
          if (h < h0) h0 = h;
          if (h > h1) h1 = h;
          if (w < w0) w0 = w;
          if (w > w1) w1 = w;
        }
      }
    }
  }
  if (d1 < 0) return null;
  return [d0 - origin[0], h0 - origin[1], w0 - origin[2], d1 - origin[0], h1 - origin[1], w1 - origin[2]];
}
