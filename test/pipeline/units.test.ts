// Building blocks of the pipeline against NumPy / PyTorch goldens
// (tools/fixtures/gen_pipeline.py) and plain sorted-array references.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { percentiles } from "../../src/segvol/pipeline/percentile.js";
import { normStats, preprocess } from "../../src/segvol/pipeline/preprocess.js";
import { resizeNearest, sourceIndex } from "../../src/segvol/pipeline/resize.js";
import { axisStarts, planWindows, roiFromBox, scanInterval } from "../../src/segvol/pipeline/windows.js";
import type { Vec3 } from "../../src/segvol/pipeline/types.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "pipeline");
const json = (name: string) => JSON.parse(readFileSync(join(fixtures, name), "utf8"));

/** Linear-interpolation percentile on a fully sorted copy (NumPy's formula in float64). */
function sortedPercentile(values: Float32Array, q: number): number {
  const a = Float64Array.from(values).sort();
  const v = (a.length - 1) * (q / 100);
  const i = Math.floor(v);
  const j = Math.min(i + 1, a.length - 1);
  return a[i]! + (a[j]! - a[i]!) * (v - i);
}

describe("percentile", () => {
  const cases = json("percentile.json").cases as { name: string; qs: number[]; values: number[]; expected: number[] }[];
  for (const c of cases) {
    it(`matches np.percentile exactly: ${c.name}`, () => {
      const v = Float32Array.from(c.values);
      const got = percentiles(v, c.qs);
      c.qs.forEach((_, n) => expect(got[n]).toBe(c.expected[n]));
      expect(Array.from(v)).toEqual(Array.from(Float32Array.from(c.values))); // input untouched
    });
  }

  it("selection agrees with a full sort on tie-heavy and random sets", () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (const n of [1, 2, 17, 1000, 4097]) {
      for (const ties of [true, false]) {
        const v = new Float32Array(n);
        for (let x = 0; x < n; x++) v[x] = ties ? Math.floor(rand() * 7) : rand() * 2000 - 1000;
        for (const q of [0, 0.05, 12.5, 50, 99.95, 100]) {
          const want = sortedPercentile(v, q);
          expect(Math.abs(percentiles(v, [q])[0]! - want)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want)));
        }
      }
    }
  });

  it("rejects an empty set and q outside [0, 100]", () => {
    expect(() => percentiles(new Float32Array(0), [50])).toThrow(/percentile: no values/);
    expect(() => percentiles(new Float32Array(3), [101])).toThrow(/q = 101 is outside \[0, 100\]/);
  });
});

describe("nearest index maps", () => {
  const maps = json("index_maps.json").maps as { in: number; out: number; nearest: number[]; "nearest-exact": number[] }[];
  it(`match PyTorch's F.interpolate for ${maps.length} size pairs`, () => {
    for (const m of maps) {
      for (const mode of ["nearest", "nearest-exact"] as const) {
        const got = Array.from({ length: m.out }, (_, d) => sourceIndex(d, m.in, m.out, mode));
        expect(got, `${mode} ${m.in} → ${m.out}`).toEqual(m[mode]);
      }
    }
  });

  it("resizeNearest gathers along every axis", () => {
    const src = Float32Array.from({ length: 2 * 3 * 4 }, (_, x) => x);
    const out = resizeNearest(src, [2, 3, 4], [4, 3, 2], "nearest");
    // d: 0,0,1,1  h: 0,1,2  w: 0,2
    expect(Array.from(out.subarray(0, 6))).toEqual([0, 2, 4, 6, 8, 10]);
    expect(Array.from(out.subarray(12, 18))).toEqual([12, 14, 16, 18, 20, 22]);
  });
});

describe("zoom-in planning", () => {
  it("widens a small box by half the shortfall, clamped (inclusive-end quirk)", () => {
    // D: box 3..4 (2 wide) in 40, window 8 → shortfall 6 → 0..7; H: box 0..1 at the edge → clamped start.
    // W: box 28..29 in 30 → end min(29+11, 30) = 30 → slice end 30.
    const roi = roiFromBox([3, 0, 28], [4, 1, 29], [40, 50, 30], [8, 32, 24]);
    expect(roi).toEqual({ start: [0, 0, 17], end: [8, 17, 30] });
    // Larger than a window: unchanged.
    expect(roiFromBox([2, 2, 2], [30, 40, 29], [40, 50, 30], [8, 32, 24])).toEqual({ start: [2, 2, 2], end: [31, 41, 30] });
  });

  it("scan intervals and starts as MONAI computes them", () => {
    expect(scanInterval(32, 32, 0.5)).toBe(32);
    expect(scanInterval(45, 32, 0.5)).toBe(16);
    expect(scanInterval(45, 24, 0.3)).toBe(16); // int(24 * 0.7) = int(16.799…)
    expect(axisStarts(45, 32, 16)).toEqual([0, 13]);
    expect(axisStarts(100, 32, 16)).toEqual([0, 16, 32, 48, 64, 68]);
    expect(axisStarts(32, 32, 32)).toEqual([0]);
  });

  it("pads an ROI smaller than a window symmetrically (extra zero after)", () => {
    const plan = planWindows({ start: [0, 5, 0], end: [5, 50, 24] }, [8, 32, 24] as Vec3, 0.5);
    expect(plan.padBefore).toEqual([1, 0, 0]);
    expect(plan.padAfter).toEqual([2, 0, 0]);
    expect(plan.windowStarts).toEqual([
      [0, 0, 0],
      [0, 13, 0],
    ]);
  });
});

describe("preprocess crop", () => {
  /** Steps 1-4 voxel by voxel (float32 arithmetic as NumPy does it), for the crop box. */
  function bruteCrop(data: Float32Array, dims: Vec3) {
    const f = Math.fround;
    const st = normStats(data);
    const lo = f(st.lo), hi = f(st.hi), std = Math.max(st.std, 1e-8);
    const norm = Float32Array.from(data, (v) => f(f(Math.min(Math.max(v, lo), hi) - st.mean) / std));
    let mn = Infinity, mx = -Infinity;
    for (const v of norm) (mn = Math.min(mn, v)), (mx = Math.max(mx, v));
    const range = Math.max(f(mx - mn), 1e-8);
    const start = [Infinity, Infinity, Infinity], end = [0, 0, 0];
    norm.forEach((v, x) => {
      if (f(f(v - mn) / range) > 0) {
        const c = [Math.floor(x / (dims[0] * dims[1])), Math.floor(x / dims[0]) % dims[1], x % dims[0]];
        c.forEach((v2, a) => ((start[a] = Math.min(start[a]!, v2)), (end[a] = Math.max(end[a]!, v2 + 1))));
      }
    });
    return { start, end };
  }

  it("matches a voxel-by-voxel crop on volumes of very different value scales", () => {
    let seed = 99;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const dims: Vec3 = [11, 9, 7];
    for (const [scale, offset] of [[1000, -1000], [1e-30, 0], [3e7, 1e9], [1, 0.5], [1e-3, -7]] as const) {
      const data = new Float32Array(dims[0] * dims[1] * dims[2]);
      for (let x = 0; x < data.length; x++) data[x] = offset;
      for (let k = 1; k < 6; k++) for (let j = 2; j < 8; j++) for (let i = 3; i < 9; i++) data[i + 11 * (j + 9 * k)] = offset + scale * (0.2 + rand());
      const pre = preprocess({ dims, data });
      expect(pre.cropBox, `scale ${scale}`).toEqual(bruteCrop(data, dims));
    }
  });

  it("a voxel equal to the lower clip bound is background (it normalises to the minimum)", () => {
    const dims: Vec3 = [11, 9, 7];
    const data = new Float32Array(dims[0] * dims[1] * dims[2]).fill(-1000);
    // Integer block with many ties at its minimum 10, which becomes the 0.05th percentile.
    for (let k = 1; k < 6; k++) for (let j = 2; j < 8; j++) for (let i = 3; i < 9; i++) data[i + 11 * (j + 9 * k)] = 10 + ((i + j + k) % 5 === 0 ? 0 : (i * j + k) % 9);
    data[0] = 10; // outside the block, equal to lo
    const pre = preprocess({ dims, data });
    expect(pre.stats.lo).toBe(10);
    expect(pre.cropBox).toEqual({ start: [1, 2, 3], end: [6, 8, 9] });
    expect(pre.cropBox).toEqual(bruteCrop(data, dims));
  });
});
