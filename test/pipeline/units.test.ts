// Building blocks of the pipeline against NumPy / PyTorch goldens
// (tools/fixtures/gen_pipeline.py) and plain sorted-array references.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { percentiles } from "../../src/segvol/pipeline/percentile.js";
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
