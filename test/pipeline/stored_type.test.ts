// The pipeline on integer volumes, as readNifti keeps them (int16 CT, uint8
// ...), gives bit for bit what it gives on the same values as float32: the
// statistics (integer percentiles come from a histogram instead of a
// selection), the crop, the normalised crop, every window the model sees,
// and the logits. The float32 path is checked against the NumPy reference
// in pipeline.test.ts; the pipeline fixtures are integer-valued CT, so the
// int16 path is checked against that reference here too.
import { describe, expect, it } from "vitest";
import type { VoxelArray } from "../../src/io/nifti.js";
import { integerPercentiles, percentiles, type SmallIntArray } from "../../src/segvol/pipeline/percentile.js";
import { preprocess } from "../../src/segvol/pipeline/preprocess.js";
import { segmentVolume } from "../../src/segvol/pipeline/segment.js";
import type { Target, Vec3 } from "../../src/segvol/pipeline/types.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { FakeSegmenter } from "./fake-segmenter.js";

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");

/** The four integer types, each holding a transform of the CT values that fits it. */
const TYPES: [string, (v: Float32Array) => SmallIntArray][] = [
  ["int16", (v) => Int16Array.from(v)],
  ["uint16", (v) => Uint16Array.from(v, (x) => x + 1024)],
  ["int8", (v) => Int8Array.from(v, (x) => Math.round(x / 10))],
  ["uint8", (v) => Uint8Array.from(v, (x) => Math.round((x + 1024) / 9))],
];

describe("integer volumes give the float32 results exactly", () => {
  for (const name of ["thin_k", "long_i", "tall_j", "no_zoom"]) {
    const c = loadFixture(`pipeline/case_${name}`)[0]!;
    const dims = c.params.dims as Vec3;
    const ct = c.inputs.volume!.data as Float32Array;
    const targets = c.params.targets as Target[];
    const spatial = c.params.spatial as Vec3;

    it(`${name}: int16 CT matches the NumPy reference's crop`, () => {
      expect(ct.every((v) => Number.isInteger(v))).toBe(true); // the fixture is integer CT
      const pre = preprocess({ dims, data: Int16Array.from(ct) });
      expect(pre.cropBox).toEqual({ start: c.params.crop_start, end: c.params.crop_end });
      expect(relError(pre.data, c.outputs.crop!.data)).toBe(0);
    });

    for (const [type, make] of TYPES) {
      it(`${name}: ${type} preprocessing and zoom-out-zoom-in equal float32's bit for bit`, async () => {
        const int = make(ct);
        const float = Float32Array.from(int);
        const pi = preprocess({ dims, data: int });
        const pf = preprocess({ dims, data: float });
        expect(pi.stats).toEqual(pf.stats);
        expect(pi.cropBox).toEqual(pf.cropBox);
        expect(bits(pi.data)).toBe(bits(pf.data));

        const mi = new FakeSegmenter(spatial), mf = new FakeSegmenter(spatial);
        const opts = { overlap: c.params.overlap as number, zoomIn: c.params.zoom_in as boolean };
        const ri = await segmentVolume(mi, { dims, data: int }, targets, opts);
        const rf = await segmentVolume(mf, { dims, data: float }, targets, opts);
        expect(mi.windows.map(bits)).toEqual(mf.windows.map(bits));
        ri.targets.forEach((t, n) => {
          expect(bits(t.logits), t.name).toBe(bits(rf.targets[n]!.logits));
          expect(t.zoomIn).toEqual(rf.targets[n]!.zoomIn);
        });
      });
    }
  }
});

describe("integerPercentiles", () => {
  it("equals percentiles() of the values above the threshold, ties, extremes and a single value included", () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const qs = [0, 0.05, 12.5, 50, 99.95, 100];
    for (const n of [1, 2, 17, 1000, 4097]) {
      for (const [type, make] of TYPES) {
        const raw = Float32Array.from({ length: n }, () => Math.floor(rand() * 2200) - 1000);
        const data = make(raw);
        for (const above of [-Infinity, -200.5, 0]) {
          const fg = Float32Array.from(Array.from(data as ArrayLike<number>).filter((v) => v > above));
          if (fg.length === 0) {
            expect(() => integerPercentiles(data, above, qs)).toThrow(/no values/);
            continue;
          }
          expect(integerPercentiles(data, above, qs), `${type} n=${n} above ${above}`).toEqual(percentiles(fg, qs));
        }
      }
    }
  });
});

describe("preprocess input types", () => {
  it("refuses arrays it cannot read exactly as float32", () => {
    const dims: Vec3 = [4, 4, 4];
    for (const data of [new Int32Array(64), new Float64Array(64), Array.from({ length: 64 }, () => 0)]) {
      expect(() => preprocess({ dims, data: data as unknown as VoxelArray })).toThrow(
        /volume data must be a Float32Array, Int16Array, Uint16Array, Int8Array or Uint8Array/,
      );
    }
  });
});
