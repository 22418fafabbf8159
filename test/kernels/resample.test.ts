// resize3d against PyTorch F.interpolate goldens (tools/fixtures/gen_resample.py).
// Tolerance: trilinear max |err| ≤ 1e-4 · max |expected|; nearest modes exact.
// f16 storage: every case again on inputs rounded to f16. Nearest modes copy
// values, so the result is exactly the golden rounded to f16. Trilinear
// blends up to 8 inputs with weights ≥ 0 summing to 1, so rounding the
// inputs moves an output by at most u·max|x| and the store rounds it by
// u·|y| (u = 2^-11), on top of the f32 tolerance 1e-4·max|y|; 2^-24 covers
// f16 subnormals. Every case runs under every forward variant
// (resizeVariants: scalar and vec4 stores, blocks of 1, 3 and 64 vectors).
import { describe, expect, it, vi } from "vitest";
import { cast } from "../../src/kernels/layout.js";
import { chooseResize, nearestSource, resize3d, resize3dBackward, resizeVariants, type ResizeMode } from "../../src/kernels/resample.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import {
  F16_SUBNORMAL_HALF_STEP,
  F16_UNIT,
  PRECISIONS,
  boundRatio,
  fixtureTensor,
  forEachGolden,
  maxAbs,
  readAs,
  roundF16,
  roundF16All,
  skipWithoutF16,
  type TestPrecision,
} from "../helpers/f16.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";
import { refResize } from "./reference.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/resample");
const noF16 = profile.f16 ? false : "the adapter lacks shader-f16";

/**
 * Checks a resize read back as f32 (`got`, computed at precision p) against
 * `want`: nearest modes exactly (rounded to f16 at f16), trilinear within
 * 1e-4 · max |want| at f32 and within the f16 bound of the header at f16.
 * `x` is the input whose f16 rounding the bound must cover: the golden's
 * f32 input, or none ([]) where `want` was computed on the rounded input.
 */
function expectResize(got: Float32Array, want: ArrayLike<number>, x: ArrayLike<number>, mode: ResizeMode, p: TestPrecision, what: string): void {
  if (mode !== "trilinear") {
    expect(Array.from(got), what).toEqual(p === "f32" ? Array.from(want) : Array.from(want, roundF16));
    return;
  }
  const my = maxAbs(want);
  if (p === "f32") {
    expect(relError(got, want), what).toBeLessThanOrEqual(1e-4);
    return;
  }
  const mx = maxAbs(x);
  const bound = Array.from(want, (y) => F16_UNIT * (mx + Math.abs(y)) + 1e-4 * my + 4 * F16_SUBNORMAL_HALF_STEP);
  expect(boundRatio(got, want, bound), what).toBeLessThanOrEqual(1);
}

describe("resize3d vs PyTorch", () => {
  forEachGolden(resizeVariants(), cases, async (c, variant, p) => {
    const y = resize3d(fixtureTensor(c.inputs.x!, p), c.params.size as [number, number, number], c.params.mode as ResizeMode, c.params.align_corners as boolean, variant);
    expect(y.shape).toEqual(c.outputs.y!.shape);
    expectResize(await readAs(y, p), c.outputs.y!.data, c.inputs.x!.data, c.params.mode as ResizeMode, p, c.name);
  });

  // The goldens' output widths (1, 4, 5, 9, 11, 18, 20, 41) leave some tails
  // untested: widths 3 and 7 (scalar stores), and vec4 rows whose last block
  // of three vectors is partial (12: one block; 28: a block of one vector).
  // refResize (float64, written from PyTorch's formulas) is the reference.
  // Each width runs with D and H both shrinking (groups of one output: the
  // kernel has no group loop) and growing (groups of several), so every
  // form of the kernel occurs: W shrinking (1, 3, 5: each output loads its
  // columns), kept (7) and growing (12, 28: the trilinear walk), under each
  // of the four combinations of D and H groups.
  forEachVariant(resizeVariants(), (variant) => {
    for (const p of PRECISIONS) {
      it(`${p}: W tails 1, 3, 5, 7, 12, 28 in every mode, D and H shrinking and growing`, async (ctx) => {
        skipWithoutF16(ctx, p);
        const inDims = [5, 6, 7] as const;
        const x = Float32Array.from({ length: 2 * 5 * 6 * 7 }, (_, i) => Math.sin(i * 0.37) * 3 + (i % 11) / 4);
        const xt = fixtureTensor({ data: x, shape: [1, 2, ...inDims] }, p);
        const xr = p === "f32" ? x : roundF16All(x);
        for (const outW of [1, 3, 5, 7, 12, 28]) {
          for (const [outD, outH] of [[2, 3], [2, 13], [11, 3], [11, 13]]) {
            for (const [mode, align] of [["trilinear", false], ["trilinear", true], ["nearest", false], ["nearest-exact", false]] as const) {
              const size = [outD, outH, outW] as [number, number, number];
              const got = await readAs(resize3d(xt, size, mode, align, variant), p);
              expectResize(got, refResize(xr, 2, inDims, size, mode, align), [], mode, p, `${mode}${align ? " align_corners" : ""} → ${size.join("x")}`);
            }
          }
        }
      });
    }
  });

  // Where every output's source columns are an even column and the next in
  // rows of even length, trilinear reads each source row's two columns as
  // one vec2 ("pairs"): halving W, 8 → 4 (vec4 stores) and 12 → 6 (scalar
  // stores), and align_corners to one column (8 → 1, weight 0 on the
  // second), D and H shrinking and growing. The spy checks the kernel's
  // choice, also where it must not pair: 8 → 3 and align_corners 8 → 4
  // (odd source columns, the latter only the last), and 5 → 1 (column 2 of
  // rows of odd length, which start on odd elements).
  forEachVariant(resizeVariants(), (variant) => {
    for (const p of PRECISIONS) {
      it(`${p}: trilinear reads column pairs where every source column is even`, async (ctx) => {
        skipWithoutF16(ctx, p);
        const g = gpu();
        const cases: [number, [number, number, number], boolean, boolean][] = [
          [8, [2, 3, 4], false, true],
          [8, [11, 13, 4], false, true],
          [12, [2, 3, 6], false, true],
          [12, [11, 13, 6], false, true],
          [8, [3, 4, 1], true, true],
          [8, [3, 4, 3], false, false],
          [8, [11, 3, 4], true, false],
          [5, [2, 3, 1], false, false],
          [5, [11, 13, 1], false, false],
        ];
        for (const [inW, size, align, pairs] of cases) {
          const inDims = [5, 6, inW] as const;
          const x = Float32Array.from({ length: 2 * 5 * 6 * inW }, (_, i) => Math.cos(i * 0.29) * 2 + (i % 7) / 3);
          const xt = fixtureTensor({ data: x, shape: [1, 2, ...inDims] }, p);
          const xr = p === "f32" ? x : roundF16All(x);
          const what = `${inW} → ${size.join("x")}${align ? " align_corners" : ""}`;
          const keys: string[] = [];
          const pipeline = g.pipeline.bind(g);
          const spy = vi.spyOn(g, "pipeline").mockImplementation((key, code, entry) => (keys.push(key), pipeline(key, code, entry)));
          const y = resize3d(xt, size, "trilinear", align, variant);
          spy.mockRestore();
          expect(keys.some((k) => k.includes('"columns":"pairs"')), what).toBe(pairs);
          expectResize(await readAs(y, p), refResize(xr, 2, inDims, size, "trilinear", align), [], "trilinear", p, what);
        }
      });
    }
  });

  it("refuses a variant that is not one, and forcing reaches the chooser", () => {
    expect(() => chooseResize(profile, 1, 8, { vec: 2 as 4 })).toThrow(/resize3d: variant per=1 vec=2 is not one/);
    expect(() => chooseResize(profile, 1, 8, { per: 65 })).toThrow(/resize3d: variant per=65 vec=4 is not one \(vec 1 or 4, per 1-64\)/);
    expect(chooseResize({ ...profile, force: { resize: { vec: 1 } } }, 1, 8)).toEqual({ vec: 1, per: 1 });
    expect(chooseResize({ ...profile, force: { resize: { per: 5 } } }, 1, 8, { vec: 1 })).toEqual({ vec: 1, per: 5 });
    // Enough rows: the longest walk; too few: shorter ones, down to one vector.
    expect(chooseResize(profile, 8192, 256)).toEqual({ vec: 4, per: 64 });
    // SegVol's logits upsampling: 16 plane groups × 64 row groups, 256 columns: 4 blocks of 16 vec4s keep 4096 invocations.
    expect(chooseResize(profile, 16 * 64, 256)).toEqual({ vec: 4, per: 16 });
  });

  describe("f16 storage", () => {
    it.skipIf(noF16)("trilinear blends in f32: the difference of two neighbours overflows f16 where the result does not", async () => {
      // Neighbours ±60000 (f16 values) differ by 120000, past f16's 65504;
      // every blend lies in [-60000, 60000] and is an f16 value (spacing 32).
      const x = cast(Tensor.from([60000, -60000, 60000, -60000], [1, 1, 4]), "f16");
      for (const w of [8, 6]) {
        // 8: the vec4 store path, 6: the scalar one.
        const got = await cast(resize3d(x, [1, 1, w], "trilinear"), "f32").readFloat32();
        const want = Array.from({ length: w }, (_, o) => {
          const s = Math.max(0, (4 / w) * (o + 0.5) - 0.5);
          const c0 = Math.min(Math.floor(s), 3);
          const v0 = c0 % 2 === 0 ? 60000 : -60000;
          return c0 === 3 ? v0 : v0 - (s - c0) * 2 * v0;
        });
        expect(Array.from(got), `width ${w}`).toEqual(want.map(roundF16));
      }
    });
  });

  it("nearest source indices match the host model of PyTorch's float rounding over many sizes", async () => {
    // An index ramp along W reveals which source column each output read.
    const inW = 97;
    const ramp = Float32Array.from({ length: inW }, (_, i) => i);
    const x = Tensor.from(ramp, [1, 1, inW]);
    for (const mode of ["nearest", "nearest-exact"] as const) {
      for (const outW of [1, 3, 7, 31, 96, 97, 98, 193, 194, 301, 777]) {
        const got = await resize3d(x, [1, 1, outW], mode).readFloat32();
        const scale = Math.fround(inW / outW);
        const want = Array.from({ length: outW }, (_, w) => nearestSource(w, inW, scale, mode));
        expect(Array.from(got), `${mode} ${inW}→${outW}`).toEqual(want);
      }
    }
  });

  it("rejects bad arguments naming the op and shapes", () => {
    const x = Tensor.zeros([2, 3, 4]);
    expect(() => resize3d(x, [0, 2, 2], "nearest")).toThrow(/resize3d\(nearest\): size must be three positive integers, got \[0,2,2\] for input \[2, 3, 4\]/);
    expect(() => resize3d(Tensor.zeros([3, 4]), [2, 2, 2], "trilinear")).toThrow(/resize3d\(trilinear\): input must have rank 3 or 5, got \[3, 4\]/);
    expect(() => resize3d(x, [2, 2, 2], "cubic" as ResizeMode)).toThrow(/resize3d: unknown mode "cubic"/);
    expect(() => resize3d(x, [2, 2, 2], "nearest", true)).toThrow(/align_corners only applies to trilinear/);
    expect(() => resize3d(Tensor.from(new Int32Array(24), [2, 3, 4], "i32"), [2, 2, 2], "nearest")).toThrow(/resize3d\(nearest\): expected dtype f32 or f16, got i32/);
  });

  it.skipIf(noF16)("the backward refuses f16, naming the op", () => {
    const dy = cast(Tensor.zeros([2, 3, 4]), "f16");
    expect(() => resize3dBackward(dy, [1, 2, 2], "trilinear")).toThrow(/resize3dBackward\(trilinear\): expected dtype f32, got f16 for tensor \[2, 3, 4\]/);
  });
});
