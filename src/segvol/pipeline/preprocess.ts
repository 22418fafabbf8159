// SegVol preprocessing, spec §6 steps 1-4: foreground normalisation, the
// axis transpose, min-max to [0, 1] and the foreground crop. Arithmetic
// follows the upstream NumPy code on a float32 volume (clip bounds, mean and
// std rounded to float32, every elementwise step rounded to float32), with
// the sums taken in float64.
//
// The transpose is free: the NIfTI array (i fastest) read as a C-order array
// of shape [K, J, I] is exactly the model-space volume (D, H, W) = (k, j, i).
//
// The input stays in its stored type (int16 for most CT): integers are exact
// in float32, so reading them as numbers gives the float32 volume's values,
// and the normalised volume is computed row by row when a window needs it
// (PreprocessPlan.rows) rather than kept as a float copy of the crop.
import type { VoxelArray } from "../../io/nifti.js";
import { integerPercentiles, percentiles } from "./percentile.js";
import type { Box3, RowReader, Vec3, Volume } from "./types.js";

const f = Math.fround;

export interface NormStats {
  /** Foreground threshold: the mean of all voxels. */
  threshold: number;
  foregroundVoxels: number;
  lo: number;
  hi: number;
  mean: number;
  std: number;
}

/** Steps 1-4 decided: where to crop and how to normalise. */
export interface PreprocessPlan {
  /** The model-space shape of the whole volume, (K, J, I). */
  fullShape: Vec3;
  /** Foreground crop in model space (end exclusive). */
  cropBox: Box3;
  /** Shape of the cropped volume. */
  shape: Vec3;
  stats: NormStats;
  /** The cropped, normalised volume, C-order [D, H, W], values in [0, 1], computed from the input row by row. */
  rows: RowReader;
}

export interface Preprocessed extends Omit<PreprocessPlan, "rows"> {
  /** The cropped, normalised volume, C-order [D, H, W], values in [0, 1]. */
  data: Float32Array;
}

const isVoxelArray = (d: unknown): d is VoxelArray =>
  d instanceof Float32Array || d instanceof Int16Array || d instanceof Uint16Array || d instanceof Int8Array || d instanceof Uint8Array;

/** Throws unless `volume` is a 3-D float32 (or exact integer) array without NaN or infinite voxels. */
export function checkVolume(volume: Volume): void {
  const { dims, data } = volume;
  if (!Array.isArray(dims) || dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`segment: volume dims must be three positive integers (I, J, K), got ${JSON.stringify(dims)}`);
  }
  if (dims.some((d) => d === 1)) {
    throw new Error(`segment: the image is 2-D (dims ${dims.join("×")}): SegVol segments 3-D volumes`);
  }
  if (!isVoxelArray(data)) throw new Error("segment: volume data must be a Float32Array, Int16Array, Uint16Array, Int8Array or Uint8Array");
  const n = dims[0] * dims[1] * dims[2];
  if (data.length !== n) {
    throw new Error(`segment: volume data has ${data.length} values but dims (${dims.join(", ")}) need ${n}`);
  }
  if (!(data instanceof Float32Array)) return; // integers are finite
  for (let x = 0; x < n; x++) {
    const v = data[x]!;
    if (v - v !== 0) {
      const i = x % dims[0], j = Math.floor(x / dims[0]) % dims[1], k = Math.floor(x / (dims[0] * dims[1]));
      let count = 0;
      for (let y = x; y < n; y++) if (data[y]! - data[y]! !== 0) count++;
      throw new Error(
        `segment: the volume has ${count} non-finite voxel(s) (NaN or ±Inf); the first is ${v} at (i, j, k) = (${i}, ${j}, ${k})`,
      );
    }
  }
}

/** Step 1's statistics: threshold, foreground percentiles, mean and population std. */
export function normStats(data: VoxelArray): NormStats {
  const n = data.length;
  let sum = 0;
  for (let x = 0; x < n; x++) sum += data[x]!;
  const threshold = f(sum / n);
  // The foreground's sum and squared deviations, in index order (as over NumPy's boolean-indexed copy).
  let count = 0;
  let fsum = 0;
  for (let x = 0; x < n; x++) {
    const v = data[x]!;
    if (v > threshold) {
      fsum += v;
      count++;
    }
  }
  if (count === 0) {
    throw new Error("segment: the volume is constant (no voxel above the mean), so it has no foreground to normalise");
  }
  const meanD = fsum / count;
  let sq = 0;
  for (let x = 0; x < n; x++) {
    const v = data[x]!;
    if (v > threshold) {
      const d = v - meanD;
      sq += d * d;
    }
  }
  const std = f(Math.sqrt(sq / count));
  const qs = [0.05, 99.95];
  let lo: number, hi: number;
  if (data instanceof Float32Array) {
    // Selection reorders the foreground copy; it is ours, so no second copy.
    const fg = new Float32Array(count);
    for (let x = 0, m = 0; x < n; x++) if (data[x]! > threshold) fg[m++] = data[x]!;
    [lo, hi] = percentiles(fg, qs, fg) as [number, number];
  } else {
    [lo, hi] = integerPercentiles(data, threshold, qs) as [number, number];
  }
  return { threshold, foregroundVoxels: count, lo, hi, mean: f(meanD), std };
}

// float32 values in order as integers (−0 and +0 share 0), and back.
const fbuf = new Float32Array(1);
const ibuf = new Int32Array(fbuf.buffer);
function orderKey(v: number): number {
  fbuf[0] = v;
  const i = ibuf[0]!;
  return i >= 0 ? i : -(i & 0x7fffffff);
}
function fromKey(k: number): number {
  ibuf[0] = k >= 0 ? k : -k | 0x80000000;
  return fbuf[0]!;
}

/** The largest float32 `v ≥ from` with `!above(v)`, for a monotone predicate false at `from`; +Inf when never above. */
function cutValue(from: number, above: (v: number) => boolean): number {
  const inf = orderKey(Infinity);
  let lo = orderKey(from);
  if (above(fromKey(lo))) throw new Error("preprocess: internal error, the clip bound normalises above the minimum");
  // Gallop up in ulps until the predicate holds, then bisect.
  let step = 1;
  let hi = Math.min(lo + step, inf);
  while (!above(fromKey(hi))) {
    if (hi === inf) return Infinity;
    lo = hi;
    step *= 2;
    hi = Math.min(lo + step, inf);
  }
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (above(fromKey(mid))) hi = mid;
    else lo = mid;
  }
  return fromKey(lo);
}

/** Steps 1-4, with the normalised crop as one array (training, tests). */
export function preprocess(volume: Volume): Preprocessed {
  checkVolume(volume);
  const { rows, ...plan } = planPreprocessing(volume);
  const [D, H, W] = plan.shape;
  const data = new Float32Array(D * H * W);
  for (let d = 0, o = 0; d < D; d++) for (let h = 0; h < H; h++, o += W) rows(d, h, 0, W, data, o);
  return { ...plan, data };
}

/** Steps 1-4 on a volume that already passed `checkVolume`, the normalised crop read on demand. */
export function planPreprocessing(volume: Volume): PreprocessPlan {
  const { dims, data } = volume;
  const stats = normStats(data);
  const fullShape: Vec3 = [dims[2], dims[1], dims[0]];
  const n = data.length;
  // np.clip casts the float64 percentiles to the array's float32.
  const lo = f(stats.lo), hi = f(stats.hi), mean = stats.mean, std = Math.max(stats.std, 1e-8);
  const norm = (v: number) => f(f((v < lo ? lo : v > hi ? hi : v) - mean) / std);
  // Normalisation is monotone, so the min and max come from the clipped extremes.
  let vmin = Infinity, vmax = -Infinity;
  for (let x = 0; x < n; x++) {
    const v = data[x]!;
    if (v < vmin) vmin = v;
    if (v > vmax) vmax = v;
  }
  const nmin = norm(vmin);
  const range = Math.max(f(norm(vmax) - nmin), 1e-8);
  // Step 4: MONAI CropForeground keeps voxels > 0 after min-max, i.e. those
  // whose normalised value exceeds the minimum. Normalisation is monotone, so
  // that is "raw value > cut", with cut the largest float32 that still
  // normalises to the minimum (found by stepping up from the clip bound).
  const cut = cutValue(Math.max(lo, vmin), (v) => norm(v) > nmin);
  const [D, H, W] = fullShape;
  const start: Vec3 = [D, H, W], end: Vec3 = [0, 0, 0];
  for (let d = 0, row = 0; d < D; d++) {
    for (let h = 0; h < H; h++, row += W) {
      let first = -1;
      for (let w = 0; w < W; w++) {
        if (data[row + w]! > cut) {
          first = w;
          break;
        }
      }
      if (first < 0) continue;
      let last = W - 1;
      while (!(data[row + last]! > cut)) last--;
      if (d < start[0]) start[0] = d;
      end[0] = d + 1;
      if (h < start[1]) start[1] = h;
      if (h >= end[1]) end[1] = h + 1;
      if (first < start[2]) start[2] = first;
      if (last >= end[2]) end[2] = last + 1;
    }
  }
  if (end[0] === 0) throw new Error("segment: after normalisation every voxel equals the minimum: no foreground to crop");
  const shape: Vec3 = [end[0] - start[0], end[1] - start[1], end[2] - start[2]];
  const rows: RowReader = (d, h, w0, w1, out, at) => {
    const row = ((d + start[0]) * H + h + start[1]) * W + start[2];
    for (let w = w0; w < w1; w++) out[at++] = f(f(norm(data[row + w]!) - nmin) / range);
  };
  return { fullShape, cropBox: { start, end }, shape, stats, rows };
}
