// SegVol preprocessing, spec §6 steps 1-4: foreground normalisation, the
// axis transpose, min-max to [0, 1] and the foreground crop. Arithmetic
// follows the upstream NumPy code on a float32 volume (clip bounds, mean and
// std rounded to float32, every elementwise step rounded to float32), with
// the sums taken in float64.
//
// The transpose is free: the NIfTI array (i fastest) read as a C-order array
// of shape [K, J, I] is exactly the model-space volume (D, H, W) = (k, j, i).
import { percentiles } from "./percentile.js";
import type { Box3, Vec3, Volume } from "./types.js";

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

export interface Preprocessed {
  /** The model-space shape of the whole volume, (K, J, I). */
  fullShape: Vec3;
  /** Foreground crop in model space (end exclusive). */
  cropBox: Box3;
  /** Shape of the cropped volume. */
  shape: Vec3;
  /** The cropped, normalised volume, C-order [D, H, W], values in [0, 1]. */
  data: Float32Array;
  stats: NormStats;
}

/** Throws unless `volume` is a 3-D float32 array without NaN or infinite voxels. */
export function checkVolume(volume: Volume): void {
  const { dims, data } = volume;
  if (!Array.isArray(dims) || dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`segment: volume dims must be three positive integers (I, J, K), got ${JSON.stringify(dims)}`);
  }
  if (!(data instanceof Float32Array)) throw new Error("segment: volume data must be a Float32Array");
  const n = dims[0] * dims[1] * dims[2];
  if (data.length !== n) {
    throw new Error(`segment: volume data has ${data.length} values but dims (${dims.join(", ")}) need ${n}`);
  }
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
export function normStats(data: Float32Array): NormStats {
  const n = data.length;
  let sum = 0;
  for (let x = 0; x < n; x++) sum += data[x]!;
  const threshold = f(sum / n);
  let count = 0;
  for (let x = 0; x < n; x++) if (data[x]! > threshold) count++;
  if (count === 0) {
    throw new Error("segment: the volume is constant (no voxel above the mean), so it has no foreground to normalise");
  }
  const fg = new Float32Array(count);
  let m = 0;
  let fsum = 0;
  for (let x = 0; x < n; x++) {
    const v = data[x]!;
    if (v > threshold) {
      fg[m++] = v;
      fsum += v;
    }
  }
  const meanD = fsum / count;
  let sq = 0;
  for (let x = 0; x < count; x++) {
    const d = fg[x]! - meanD;
    sq += d * d;
  }
  const std = f(Math.sqrt(sq / count));
  // Selection reorders `fg`; it is ours, so no copy is needed.
  const [lo, hi] = percentiles(fg, [0.05, 99.95], fg) as [number, number];
  return { threshold, foregroundVoxels: count, lo, hi, mean: f(meanD), std };
}

/** Steps 1-4. */
export function preprocess(volume: Volume): Preprocessed {
  checkVolume(volume);
  return preprocessChecked(volume);
}

/** Steps 1-4 on a volume that already passed `checkVolume`. */
export function preprocessChecked(volume: Volume): Preprocessed {
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
  // Step 4: MONAI CropForeground keeps voxels > 0 after min-max, i.e. those whose normalised value exceeds the minimum.
  const [D, H, W] = fullShape;
  const start: Vec3 = [D, H, W], end: Vec3 = [0, 0, 0];
  let x = 0;
  for (let d = 0; d < D; d++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++, x++) {
        // Voxels at or below the lower clip bound all clip to lo, as does the minimum: never foreground.
        const v = data[x]!;
        if (v > lo && norm(v) > nmin) {
          if (d < start[0]) start[0] = d;
          if (d >= end[0]) end[0] = d + 1;
          if (h < start[1]) start[1] = h;
          if (h >= end[1]) end[1] = h + 1;
          if (w < start[2]) start[2] = w;
          if (w >= end[2]) end[2] = w + 1;
        }
      }
    }
  }
  if (end[0] === 0) throw new Error("segment: after normalisation every voxel equals the minimum: no foreground to crop");
  const shape: Vec3 = [end[0] - start[0], end[1] - start[1], end[2] - start[2]];
  const out = new Float32Array(shape[0] * shape[1] * shape[2]);
  let o = 0;
  for (let d = start[0]; d < end[0]; d++) {
    for (let h = start[1]; h < end[1]; h++) {
      const row = (d * H + h) * W;
      for (let w = start[2]; w < end[2]; w++) out[o++] = f(f(norm(data[row + w]!) - nmin) / range);
    }
  }
  return { fullShape, cropBox: { start, end }, shape, data: out, stats };
}
