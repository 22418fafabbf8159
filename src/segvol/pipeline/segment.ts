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

/** What the stages of one segmentation share. */
interface Run {
  model: WindowSegmenter;
  /** The model's window (D, H, W) and its voxel count. */
  window: Vec3;
  winSize: number;
  pre: ReturnType<typeof planPreprocessing>;
  /** Voxels of the full-size (input-layout) arrays. */
  total: number;
  states: TargetState[];
  /** Encodes and decodes so far (SegmentResult.stats). */
  encodes: number;
  decodes: number;
  /** Windows done and to do, over both stages: the zoom-in windows are added once planned. */
  progress: { done: number; total: number; report: (stage: string) => void };
}

/** Segments every target of one volume; see the module comment. */
export async function segmentVolume(
  model: WindowSegmenter,
  volume: Volume,
  targets: Target[],
  opts: SegmentOptions = {},
): Promise<SegmentResult> {
  const tStart = now();
  const { window, overlap, zoomIn } = checkArguments(model, volume, targets, opts);
  const run = prepare(model, volume, targets, window, opts);
  const tPre = now();
  await zoomOutAll(run);
  const tZoomOut = now();
  let zoomInWindows = 0;
  if (zoomIn) {
    const cache = planZoomIn(run, overlap);
    for (const w of cache.values()) zoomInWindows += w.users.length;
    run.progress.total += zoomInWindows;
    await zoomInAll(run, cache);
    pasteZoomIn(run);
  }
  const tZoomIn = now();
  const results = run.states.map((s) => targetResult(s, run.total));
  const tEnd = now();
  const { cropBox } = run.pre;
  return {
    targets: results,
    cropBox: { start: [...cropBox.start], end: [...cropBox.end] },
    stats: {
      encodes: run.encodes,
      decodes: run.decodes,
      zoomInEncodes: run.encodes - 1,
      zoomInWindows,
      seconds: { preprocess: tPre - tStart, zoomOut: tZoomOut - tPre, zoomIn: tZoomIn - tZoomOut, total: tEnd - tStart },
    },
  };
}

/** Checks the model, the options, the volume and the targets before any work. */
function checkArguments(model: WindowSegmenter, volume: Volume, targets: Target[], opts: SegmentOptions): { window: Vec3; overlap: number; zoomIn: boolean } {
  const window = checkModel(model);
  const overlap = opts.overlap ?? 0.5;
  if (typeof overlap !== "number" || !(overlap >= 0 && overlap < 1)) throw new Error(`segment: overlap must be in [0, 1), got ${overlap}`);
  const zoomIn = opts.zoomIn ?? true;
  checkVolume(volume);
  checkTargets(targets, volume.dims);
  return { window, overlap, zoomIn };
}

/** Preprocesses the volume and gives each target its prompts (in the crop box) and a full-size logit array. */
function prepare(model: WindowSegmenter, volume: Volume, targets: Target[], window: Vec3, opts: SegmentOptions): Run {
  const pre = planPreprocessing(volume);
  const { fullShape, cropBox, shape } = pre;
  const total = fullShape[0] * fullShape[1] * fullShape[2];
  const states: TargetState[] = targets.map((t) => {
    const target = cropTarget(t, cropBox);
    return { target, prompts: planPrompts(target, shape, window), logits: new Float32Array(total), plan: null, sums: null, seconds: 0, windows: 0 };
  });
  const progress = { done: 0, total: states.length, report: (stage: string) => opts.onProgress?.(++progress.done, progress.total, stage) };
  return { model, window, winSize: window[0] * window[1] * window[2], pre, total, states, encodes: 0, decodes: 0, progress };
}

/** Zoom-out: the whole crop resized to one window, one encode shared by all targets. */
async function zoomOutAll(run: Run): Promise<void> {
  const { model, window, winSize, states, pre } = run;
  const { fullShape, cropBox, shape } = pre;
  const small = resizeNearest(pre.rows, shape, window, "nearest-exact");
  let t = now();
  const zEmb = await model.encode(small);
  const zEncode = now() - t;
  run.encodes = 1;
  try {
    for (const s of states) {
      t = now();
      const out = await decodeChecked(model, zEmb, s.prompts.zoomOut, winSize, `the zoom-out window of "${s.target.name}"`);
      run.decodes++;
      resizeNearestInto(out, window, shape, "nearest", s.logits, fullShape, cropBox.start);
      s.seconds += now() - t + zEncode / states.length;
      s.windows++;
      run.progress.report("zoom-out");
    }
  } finally {
    model.release(zEmb);
  }
}

/**
 * Zoom-in planning: each target with foreground gets sliding windows over its
 * mask's ROI; the windows are keyed by their crop box, so that targets sharing
 * a window share its encode.
 */
function planZoomIn(run: Run, overlap: number): Map<string, CachedWindow> {
  const { window, states, pre } = run;
  const { fullShape, cropBox, shape } = pre;
  const cache = new Map<string, CachedWindow>();
  for (const s of states) {
    // The mask's box over the whole crop: a "window" at the crop's corner whose valid part is all of it.
    const box = maskBoxInWindow(s.logits, fullShape, cropBox.start, [0, 0, 0], { start: [0, 0, 0], end: shape });
    if (!box) continue; // no foreground: the zoom-out result stands
    s.plan = planWindows(roiFromBox([box[0], box[1], box[2]], [box[3], box[4], box[5]], shape, window), window, overlap);
    const r = s.plan.roi;
    s.sums = new Float32Array((r.end[0] - r.start[0]) * (r.end[1] - r.start[1]) * (r.end[2] - r.start[2]));
    for (const start of s.plan.windowStarts) {
      const g = windowGeometry(s.plan, start, window);
      let entry = cache.get(g.key);
      if (!entry) cache.set(g.key, (entry = { origin: g.origin, valid: g.valid, users: [] }));
      entry.users.push(s);
    }
  }
  return cache;
}

/** Zoom-in: each distinct window encoded once, decoded for each of its targets, released (and uncached) after its last. */
async function zoomInAll(run: Run, cache: Map<string, CachedWindow>): Promise<void> {
  const { model, window, winSize, pre } = run;
  const { fullShape, cropBox } = pre;
  for (const [key, w] of cache) {
    let t = now();
    const emb = await model.encode(extractWindow(pre.rows, w.origin, w.valid, window));
    const share = (now() - t) / w.users.length;
    run.encodes++;
    try {
      for (const s of w.users) {
        t = now();
        const single = s.plan!.windowStarts.length === 1;
        const maskBox = maskBoxInWindow(s.logits, fullShape, cropBox.start, w.origin, w.valid);
        const prompt = zoomInPrompt(s.target, s.prompts, w.origin, w.valid, maskBox, single);
        const out = await decodeChecked(model, emb, prompt, winSize, `zoom-in window ${key} of "${s.target.name}"`);
        run.decodes++;
        accumulate(s, out, w, window);
        s.seconds += now() - t + share;
        s.windows++;
        run.progress.report("zoom-in");
      }
    } finally {
      model.release(emb);
    }
    cache.delete(key);
  }
}

/** Replaces each zoomed-in target's logits over its ROI with the average of its windows. */
function pasteZoomIn(run: Run): void {
  for (const s of run.states) {
    if (!s.plan) continue;
    const t = now();
    pasteAverage(s, run.window, run.pre.fullShape, run.pre.cropBox.start);
    s.seconds += now() - t;
  }
}

/** A target's result: its mask (logit > 0) in the input layout, with its logits and counts. */
function targetResult(s: TargetState, total: number): TargetResult {
  const mask = new Uint8Array(total);
  let voxels = 0;
  for (let x = 0; x < total; x++) {
    if (s.logits[x]! > 0) {
      mask[x] = 1;
      voxels++;
    }
  }
  return { name: s.target.name, mask, logits: s.logits, voxels, seconds: s.seconds, windows: s.windows, zoomIn: s.plan };
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
