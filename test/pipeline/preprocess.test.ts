// Preprocessing (steps 1-4) against a brute-force reference written from the
// spec rather than from preprocess.ts: every voxel normalised in float32 the
// way the upstream NumPy code does (foreground = voxels above the mean, clip
// to its 0.05 / 99.95 percentiles, standardise, min-max to [0, 1]) and the
// crop taken as the bounding box of the voxels above 0 (MONAI's
// CropForeground), with no row scanning and no search for the cut value.
// The volumes are built to reach the cases the NumPy goldens do not: voxels
// tied at the clip bound (they normalise to the minimum, so they are
// background), an outlier above the upper clip bound, a foreground touching
// the volume's first column after an empty row, values a few float32 steps
// above the clip bound that still normalise to the minimum, a last voxel
// that is not the minimum, and a volume with no foreground left.
import { describe, expect, it } from "vitest";
import { normStats, planPreprocessing, preprocess } from "../../src/segvol/pipeline/preprocess.js";
import type { Vec3 } from "../../src/segvol/pipeline/types.js";

const f = Math.fround;

/** NumPy 1.2x's linear percentile of float32 values (`_lerp`: diff in float32, from the upper neighbour at t ≥ 0.5). */
function npPercentile(sorted: Float64Array, q: number): number {
  const virt = (sorted.length - 1) * (q / 100);
  const i = Math.floor(virt), j = Math.min(i + 1, sorted.length - 1);
  const t = virt - i, a = sorted[i]!, b = sorted[j]!;
  const diff = f(b - a);
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/** The spec, voxel by voxel: the normalised volume (model order) and its crop. */
function reference(data: Float32Array | Int16Array, dims: Vec3): { start: Vec3; end: Vec3; normalised: Float32Array } {
  const values = Float64Array.from(data);
  const threshold = f(values.reduce((s, v) => s + v, 0) / values.length);
  const fg = values.filter((v) => v > threshold);
  const meanD = fg.reduce((s, v) => s + v, 0) / fg.length;
  const std = Math.max(f(Math.sqrt(fg.reduce((s, v) => s + (v - meanD) ** 2, 0) / fg.length)), 1e-8);
  const sorted = fg.slice().sort();
  const lo = f(npPercentile(sorted, 0.05)), hi = f(npPercentile(sorted, 99.95)), mean = f(meanD);
  const norm = values.map((v) => f(f(Math.min(Math.max(v, lo), hi) - mean) / std));
  const nmin = norm.reduce((m, v) => Math.min(m, v), Infinity);
  const range = Math.max(f(norm.reduce((m, v) => Math.max(m, v), -Infinity) - nmin), 1e-8);
  const normalised = Float32Array.from(norm, (v) => f(f(v - nmin) / range));
  // Input (i, j, k), i fastest = model (d, h, w) = (k, j, i) in C order.
  const [I, J, K] = dims;
  const start: Vec3 = [K, J, I], end: Vec3 = [0, 0, 0];
  normalised.forEach((v, x) => {
    if (!(v > 0)) return;
    const m: Vec3 = [Math.floor(x / (I * J)), Math.floor(x / I) % J, x % I];
    for (let a = 0; a < 3; a++) {
      start[a] = Math.min(start[a]!, m[a]!);
      end[a] = Math.max(end[a]!, m[a]! + 1);
    }
  });
  return { start, end, normalised };
}

/** `preprocess` against `reference`: the crop box, its shape and every normalised voxel in it, exactly. */
function expectSpec(data: Float32Array | Int16Array, dims: Vec3, crop?: { start: Vec3; end: Vec3 }): void {
  const want = reference(data, dims);
  if (crop) expect(want).toMatchObject(crop); // the volume reaches the case it was built for
  const got = preprocess({ dims, data });
  expect(got.cropBox).toEqual({ start: want.start, end: want.end });
  const shape: Vec3 = [want.end[0] - want.start[0], want.end[1] - want.start[1], want.end[2] - want.start[2]];
  expect(got.shape).toEqual(shape);
  const [I, J] = dims;
  const cropped = new Float32Array(shape[0] * shape[1] * shape[2]);
  for (let d = 0, o = 0; d < shape[0]; d++) {
    for (let h = 0; h < shape[1]; h++, o += shape[2]) {
      const row = ((d + want.start[0]) * J + h + want.start[1]) * I + want.start[2];
      cropped.set(want.normalised.subarray(row, row + shape[2]), o);
    }
  }
  expect(got.data).toEqual(cropped);
}

/** An int16 volume of air (−1000) with `fill(i, j, k)` where it returns a value. */
function int16Volume(dims: Vec3, fill: (i: number, j: number, k: number) => number | undefined): Int16Array {
  const data = new Int16Array(dims[0] * dims[1] * dims[2]).fill(-1000);
  for (let k = 0; k < dims[2]; k++) for (let j = 0; j < dims[1]; j++) for (let i = 0; i < dims[0]; i++) {
    const v = fill(i, j, k);
    if (v !== undefined) data[i + dims[0] * (j + dims[1] * k)] = v;
  }
  return data;
}

describe("preprocess against the voxel-by-voxel spec", () => {
  it("treats voxels tied at the lower clip bound as background and clips an outlier, with the tissue at the first column", () => {
    const dims: Vec3 = [12, 10, 8];
    // Tissue at i 0..10, j 3..9, k 2..7 (rows j < 3 empty, so the first tissue row follows an empty one);
    // its last column (i = 10) holds the lowest tissue value, 20, in 42 voxels: the 0.05 percentile is
    // exactly 20, so that column normalises to the minimum and lies outside the crop. One voxel is
    // 3000, above the 99.95 percentile.
    const data = int16Volume(dims, (i, j, k) => {
      if (i > 10 || j < 3 || k < 2) return undefined;
      if (i === 10) return 20;
      return i === 4 && j === 6 && k === 5 ? 3000 : 40 + ((i * 7 + j * 3 + k * 5) % 31);
    });
    expectSpec(data, dims, { start: [2, 3, 0], end: [8, 10, 10] });
  });

  it("crops to the tissue when the last voxel of the volume is tissue, not air", () => {
    const dims: Vec3 = [9, 7, 6];
    const data = int16Volume(dims, (i, j, k) => (i >= 3 && j >= 2 && k >= 1 ? 100 + ((i * 5 + j * 11 + k * 3) % 37) : undefined));
    expectSpec(data, dims, { start: [1, 2, 3], end: [6, 7, 9] });
  });

  it("leaves out values a few float32 steps above the clip bound that still normalise to the minimum", () => {
    // Air −1e7; tissue of 1e6, 1.7e6 and 2.4e6 at i 32..39 (mean ≈ 1.6e6: (v − mean) in float32 moves
    // in steps of 0.125); two voxels of 1, the lowest tissue value and so the lower clip bound. In
    // front of the tissue, along i, a ladder of values 1 + (i + 1)/64 rising towards it: those that
    // still normalise to the minimum are background, and the first that does not starts the crop.
    const dims: Vec3 = [40, 8, 8];
    const data = new Float32Array(dims[0] * dims[1] * dims[2]).fill(-1e7);
    const at = (i: number, j: number, k: number) => i + dims[0] * (j + dims[1] * k);
    for (let k = 2; k < 6; k++) for (let j = 2; j < 6; j++) for (let i = 32; i < 40; i++) data[at(i, j, k)] = 1e6 + ((i + j + k) % 3) * 7e5;
    data[at(33, 3, 3)] = 1;
    data[at(34, 3, 3)] = 1;
    for (let i = 0; i < 32; i++) data[at(i, 3, 3)] = 1 + (i + 1) / 64;
    const first = reference(data, dims).start[2];
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(32);
    expectSpec(data, dims, { start: [2, 2, first], end: [6, 6, 40] });
  });

  it("leaves out voxels exactly at the cut value, after the tissue in a row", () => {
    // Air −5; tissue +1 at i 1..3 and −1 at i 4..6: mean 0, std 1, clip bounds −1 and 1, so the
    // normalised value is the value itself and the −1 voxels are exactly the minimum.
    const dims: Vec3 = [8, 6, 4];
    const data = new Float32Array(dims[0] * dims[1] * dims[2]).fill(-5);
    for (let k = 1; k < 3; k++) for (let j = 1; j < 5; j++) for (let i = 1; i < 7; i++) data[i + dims[0] * (j + dims[1] * k)] = i < 4 ? 1 : -1;
    expectSpec(data, dims, { start: [1, 1, 1], end: [3, 5, 4] });
  });

  it("refuses a volume whose foreground is a single value: everything normalises to the minimum", () => {
    const dims: Vec3 = [6, 5, 4];
    const data = int16Volume(dims, (i, j, k) => (i > 1 && j > 1 && k > 1 ? 1 : 0));
    expect(() => preprocess({ dims, data })).toThrow("segment: after normalisation every voxel equals the minimum: no foreground to crop");
  });
});

describe("preprocessing's parts", () => {
  it("counts only voxels above the mean as foreground, in float32 and integer volumes", () => {
    // Mean 2: the voxel equal to it is not foreground, so the foreground is {4} alone.
    for (const data of [Float32Array.from([0, 2, 4]), Int16Array.from([0, 2, 4])]) {
      expect(normStats(data), data.constructor.name).toEqual({ threshold: 2, foregroundVoxels: 1, lo: 4, hi: 4, mean: 4, std: 0 });
    }
  });

  it("reads exactly the asked part of a row of the normalised crop", () => {
    const dims: Vec3 = [9, 7, 6];
    const data = int16Volume(dims, (i, j, k) => (i >= 2 && j >= 2 && k >= 1 ? 100 + ((i * 5 + j * 11 + k * 3) % 37) : undefined));
    const whole = preprocess({ dims, data });
    const plan = planPreprocessing({ dims, data });
    const out = new Float32Array(8).fill(-7);
    plan.rows(2, 3, 1, 4, out, 2);
    const row = (2 * whole.shape[1] + 3) * whole.shape[2];
    expect(Array.from(out)).toEqual([-7, -7, ...whole.data.subarray(row + 1, row + 4), -7, -7, -7]);
  });
});
