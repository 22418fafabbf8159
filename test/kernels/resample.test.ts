// resize3d against PyTorch F.interpolate goldens (tools/fixtures/gen_resample.py).
// Tolerance: trilinear max |err| ≤ 1e-4 · max |expected|; nearest modes exact.
// f16 storage: every case again on inputs rounded to f16. Nearest modes copy
// values, so the result is exactly the golden rounded to f16. Trilinear
// blends up to 8 inputs with weights ≥ 0 summing to 1, so rounding the
// inputs moves an output by at most u·max|x| and the store rounds it by
// u·|y| (u = 2^-11), on top of the f32 tolerance 1e-4·max|y|; 2^-24 covers
// f16 subnormals.
import { describe, expect, it } from "vitest";
import { cast } from "../../src/kernels/layout.js";
import { nearestSource, resize3d, resize3dBackward, type ResizeMode } from "../../src/kernels/resample.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { F16_SUBNORMAL_HALF_STEP, F16_UNIT, roundF16 } from "../helpers/f16.js";
import { loadFixture, relError, type FixtureCase } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/resample");
const noF16 = profile.f16 ? false : "the adapter lacks shader-f16";

function run(c: FixtureCase, dtype: "f32" | "f16"): Tensor {
  const x32 = Tensor.from(c.inputs.x!.data as Float32Array, c.inputs.x!.shape);
  const x = dtype === "f32" ? x32 : cast(x32, "f16");
  return resize3d(x, c.params.size as [number, number, number], c.params.mode as ResizeMode, c.params.align_corners as boolean);
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe("resize3d vs PyTorch", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const y = run(c, "f32");
      expect(y.shape).toEqual(c.outputs.y!.shape);
      const got = await y.readFloat32();
      if (c.params.mode === "trilinear") expect(relError(got, c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
      else expect(Array.from(got)).toEqual(Array.from(c.outputs.y!.data));
    });
  }

  describe("f16 storage", () => {
    for (const c of cases) {
      it.skipIf(noF16)(c.name, async () => {
        const y = run(c, "f16");
        expect(y.dtype).toBe("f16");
        expect(y.shape).toEqual(c.outputs.y!.shape);
        const got = await cast(y, "f32").readFloat32();
        const want = c.outputs.y!.data;
        if (c.params.mode !== "trilinear") {
          expect(Array.from(got)).toEqual(Array.from(want, roundF16));
          return;
        }
        const mx = maxAbs(c.inputs.x!.data);
        const my = maxAbs(want);
        let worst = 0;
        for (let i = 0; i < want.length; i++) {
          const bound = F16_UNIT * (mx + Math.abs(want[i]!)) + 1e-4 * my + 4 * F16_SUBNORMAL_HALF_STEP;
          worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / bound);
        }
        expect(worst).toBeLessThanOrEqual(1);
      });
    }

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
