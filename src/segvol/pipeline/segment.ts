// Zoom-out-zoom-in over a whole volume for many targets at once (spec §6
// steps 5-8). Unlike upstream, which re-runs everything per category, the
// zoom-out window is encoded once for all targets, and each zoom-in window is
// encoded once for every target whose ROI produces exactly that window
// (cached by its crop box, encoded lazily, released when its last user is done).
//
// All full-size arrays live in the input layout (i fastest), which is also
// the model-space C-order layout (D, H, W) = (k, j, i): pasting is a copy
// into a sub-box and "undoing the transpose" costs nothing.
import { checkVolume, planPreprocessing } from "./preprocess.js";
import { checkTargets, cropTarget, maskBoxInWindow, planPrompts, zoomInPrompt, type CroppedTarget, type PromptPlan } from "./prompts.js";
import { resizeNearest, resizeNearestInto } from "./resize.js";
import type { SegmentOptions, SegmentResult, Target, TargetResult, Vec3, Volume, WindowSegmenter, ZoomInPlan } from "./types.js";
import { extractWindow, planWindows, roiFromBox, windowGeometry } from "./windows.js";

const now = () => performance.now() / 1000;

function checkModel(model: WindowSegmenter): Vec3 {
  const s = model?.spatialSize;
  if (!Array.isArray(s) || s.length !== 3 || !s.every((v) => Number.isInteger(v) && v > 0)) {
    throw new Error(`segment: model.spatialSize must be three positive integers (D, H, W), got ${JSON.stringify(s)}`);
  }
  return [s[0], s[1], s[2]];
}

async function decodeChecked(model: WindowSegmenter, emb: unknown, prompt: Parameters<WindowSegmenter["decode"]>[1], size: number, what: string): Promise<Float32Array> {
  const out = await model.decode(emb, prompt);
  if (!(out instanceof Float32Array) || out.length !== size) {
    throw new Error(`segment: model.decode for ${what} returned ${out?.length} values, expected a Float32Array of ${size} (one window)`);
  }
  // NaN would silently read as background everywhere downstream.
  for (let x = 0; x < size; x++) {
    if (out[x]! - out[x]! !== 0) throw new Error(`segment: model.decode for ${what} returned a non-finite logit (${out[x]}) at window index ${x}`);
  }
  return out;
}

/** Bounding box (inclusive) of logits > 0 inside the crop box of a full-size array; null when empty. */
function cropMaskBox(logits: Float32Array, fullShape: Vec3, start: Vec3, shape: Vec3): { lo: Vec3; hi: Vec3 } | null {
  const [, H, W] = fullShape;
  const lo: Vec3 = [Infinity, Infinity, Infinity], hi: Vec3 = [-1, -1, -1];
  for (let d = 0; d < shape[0]; d++) {
    for (let h = 0; h < shape[1]; h++) {
      const row = ((d + start[0]) * H + h + start[1]) * W + start[2];
      let first = -1, last = -1;
      for (let w = 0; w < shape[2]; w++) {
        if (logits[row + w]! > 0) {
          if (first < 0) first = w;
          last = w;
        }
      }
      if (first < 0) continue;
      if (d < lo[0]) lo[0] = d;
      hi[0] = Math.max(hi[0], d);
      if (h < lo[1]) lo[1] = h;
      hi[1] = Math.max(hi[1], h);
      if (first < lo[2]) lo[2] = first;
      hi[2] = Math.max(hi[2], last);
    }
  }
  return hi[0] < 0 ? null : { lo, hi };
}

interface TargetState {
  target: CroppedTarget;
  prompts: PromptPlan;
  logits: Float32Array;
  plan: ZoomInPlan | null;
  /** Sum of window logits over the ROI (float32, as MONAI accumulates). */
  sums: Float32Array | null;
  seconds: number;
  windows: number;
}

interface CachedWindow {
  origin: Vec3;
  valid: { start: Vec3; end: Vec3 };
  users: TargetState[];
}

/** Segments every target of one volume; see the module comment. */
export async function segmentVolume(
  model: WindowSegmenter,
  volume: Volume,
  targets: Target[],
  opts: SegmentOptions = {},
): Promise<SegmentResult> {
  const tStart = now();
  const window = checkModel(model);
  const overlap = opts.overlap ?? 0.5;
  if (typeof overlap !== "number" || !(overlap >= 0 && overlap < 1)) throw new Error(`segment: overlap must be in [0, 1), got ${overlap}`);
  const zoomIn = opts.zoomIn ?? true;
  checkVolume(volume);
  checkTargets(targets, volume.dims);
  const winSize = window[0] * window[1] * window[2];

  const pre = planPreprocessing(volume);
  const { fullShape, cropBox, shape } = pre;
  const total = fullShape[0] * fullShape[1] * fullShape[2];
  const states: TargetState[] = targets.map((t) => {
    const target = cropTarget(t, cropBox);
    return { target, prompts: planPrompts(target, shape, window), logits: new Float32Array(total), plan: null, sums: null, seconds: 0, windows: 0 };
  });
  const tPre = now();

  // Zoom-out: one encode shared by all targets.
  let progressDone = 0;
  let progressTotal = states.length;
  const progress = (stage: string) => opts.onProgress?.(++progressDone, progressTotal, stage);
  const small = resizeNearest(pre.rows, shape, window, "nearest-exact");
  let t = now();
  const zEmb = await model.encode(small);
  const zEncode = now() - t;
  let encodes = 1, decodes = 0;
  try {
    for (const s of states) {
      t = now();
      const out = await decodeChecked(model, zEmb, s.prompts.zoomOut, winSize, `the zoom-out window of "${s.target.name}"`);
      decodes++;
      resizeNearestInto(out, window, shape, "nearest", s.logits, fullShape, cropBox.start);
      s.seconds += now() - t + zEncode / states.length;
      s.windows++;
      progress("zoom-out");
    }
  } finally {
    model.release(zEmb);
  }
  const tZoomOut = now();

  // Zoom-in: plan every target's windows, then visit each distinct window once.
  const cache = new Map<string, CachedWindow>();
  let zoomInWindows = 0;
  if (zoomIn) {
    for (const s of states) {
      const box = cropMaskBox(s.logits, fullShape, cropBox.start, shape);
      if (!box) continue; // no foreground: the zoom-out result stands
      s.plan = planWindows(roiFromBox(box.lo, box.hi, shape, window), window, overlap);
      const r = s.plan.roi;
      s.sums = new Float32Array((r.end[0] - r.start[0]) * (r.end[1] - r.start[1]) * (r.end[2] - r.start[2]));
      for (const start of s.plan.windowStarts) {
        const g = windowGeometry(s.plan, start, window);
        let entry = cache.get(g.key);
        if (!entry) cache.set(g.key, (entry = { origin: g.origin, valid: g.valid, users: [] }));
        entry.users.push(s);
        zoomInWindows++;
      }
    }
    progressTotal += zoomInWindows;
    for (const [key, w] of cache) {
      t = now();
      const emb = await model.encode(extractWindow(pre.rows, w.origin, w.valid, window));
      const share = (now() - t) / w.users.length;
      encodes++;
      try {
        for (const s of w.users) {
          t = now();
          const single = s.plan!.windowStarts.length === 1;
          const maskBox = maskBoxInWindow(s.logits, fullShape, cropBox.start, w.origin, w.valid);
          const prompt = zoomInPrompt(s.target, s.prompts, w.origin, w.valid, maskBox, single);
          const out = await decodeChecked(model, emb, prompt, winSize, `zoom-in window ${key} of "${s.target.name}"`);
          decodes++;
          accumulate(s, out, w, window);
          s.seconds += now() - t + share;
          s.windows++;
          progress("zoom-in");
        }
      } finally {
        model.release(emb);
      }
      cache.delete(key);
    }
    for (const s of states) {
      if (!s.plan) continue;
      t = now();
      pasteAverage(s, window, fullShape, cropBox.start);
      s.seconds += now() - t;
    }
  }
  const tZoomIn = now();

  const results: TargetResult[] = states.map((s) => {
    const mask = new Uint8Array(total);
    let voxels = 0;
    for (let x = 0; x < total; x++) {
      if (s.logits[x]! > 0) {
        mask[x] = 1;
        voxels++;
      }
    }
    return { name: s.target.name, mask, logits: s.logits, voxels, seconds: s.seconds, windows: s.windows, zoomIn: s.plan };
  });
  const tEnd = now();
  return {
    targets: results,
    cropBox: { start: [...cropBox.start], end: [...cropBox.end] },
    stats: {
      encodes,
      decodes,
      zoomInEncodes: encodes - 1,
      zoomInWindows,
      seconds: { preprocess: tPre - tStart, zoomOut: tZoomOut - tPre, zoomIn: tZoomIn - tZoomOut, total: tEnd - tStart },
    },
  };
}

/** Adds one window's logits over its ROI part to the target's sums. */
function accumulate(s: TargetState, out: Float32Array, w: CachedWindow, window: Vec3): void {
  const roi = s.plan!.roi;
  const rh = roi.end[1] - roi.start[1], rw = roi.end[2] - roi.start[2];
  const sums = s.sums!;
  for (let d = w.valid.start[0]; d < w.valid.end[0]; d++) {
    for (let h = w.valid.start[1]; h < w.valid.end[1]; h++) {
      const src = ((d - w.origin[0]) * window[1] + h - w.origin[1]) * window[2] - w.origin[2];
      const dst = ((d - roi.start[0]) * rh + h - roi.start[1]) * rw - roi.start[2];
      for (let x = w.valid.start[2]; x < w.valid.end[2]; x++) sums[dst + x] = sums[dst + x]! + out[src + x]!;
    }
  }
}

/** How many windows of a grid cover each index of one axis (in ROI coordinates). */
function coverCounts(starts: number[], size: number, pad: number, window: number): Int32Array {
  const c = new Int32Array(size);
  for (const s of starts) for (let y = Math.max(0, s - pad); y < Math.min(size, s - pad + window); y++) c[y]!++;
  return c;
}

/** Divides the sums by the window counts and replaces the ROI of the global logits. */
function pasteAverage(s: TargetState, window: Vec3, fullShape: Vec3, cropStart: Vec3): void {
  const plan = s.plan!;
  const { roi } = plan;
  const size: Vec3 = [roi.end[0] - roi.start[0], roi.end[1] - roi.start[1], roi.end[2] - roi.start[2]];
  const uniq = (a: number) => [...new Set(plan.windowStarts.map((v) => v[a]!))];
  const [cd, ch, cw] = [0, 1, 2].map((a) => coverCounts(uniq(a), size[a]!, plan.padBefore[a]!, window[a]!)) as [Int32Array, Int32Array, Int32Array];
  const sums = s.sums!;
  let x = 0;
  for (let d = 0; d < size[0]; d++) {
    for (let h = 0; h < size[1]; h++) {
      const row = ((d + roi.start[0] + cropStart[0]) * fullShape[1] + h + roi.start[1] + cropStart[1]) * fullShape[2] + roi.start[2] + cropStart[2];
      const c = cd[d]! * ch[h]!;
      for (let w = 0; w < size[2]; w++, x++) s.logits[row + w] = Math.fround(sums[x]! / (c * cw[w]!));
    }
  }
  s.sums = null;
}
