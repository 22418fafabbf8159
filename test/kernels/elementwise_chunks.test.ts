// Elementwise, resize and addN over several storage bindings, in f32 and f16:
// with bindings capped at 64 KiB (16384 f32, 32768 f16), these tensors take
// the chunked-output and segmented-input paths that large volumes take at
// 128 MiB. A 2-byte element halves a segment's byte size for the same
// element count, so f16 checks the element offsets of both paths.
// References in plain TS on values that make the results exact (multiples of
// 1/16 in [-4, 4): their sums of up to ten stay below 64 in magnitude, where
// f16's spacing is at most 1/32), except trilinear: max|err| ≤
// 1e-4·max|ref| in f32, and the f16 bound of resample.test.ts,
// u·(max|x| + |y|) + 1e-4·max|y| (max|x|, max|y| ≤ 4).
import { describe, expect, it } from "vitest";
import { addN } from "../../src/kernels/add_n.js";
import { binary, elementwiseVariants, unary } from "../../src/kernels/elementwise.js";
import { cast } from "../../src/kernels/layout.js";
import { resize3d } from "../../src/kernels/resample.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { F16_UNIT } from "../helpers/f16.js";
import { relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";
import { refResize } from "./reference.js";

const BINDING = 1 << 16;
useGpu({ maxBindingBytes: BINDING });
const profile = await testProfile({ maxBindingBytes: BINDING });

/** Deterministic multiples of 1/16 in [-4, 4). */
function pattern(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = Math.floor(s / 2 ** 26) / 16 - 4;
  }
  return a;
}

const DTYPES = profile.f16 ? (["f32", "f16"] as const) : (["f32"] as const);
const up = (data: Float32Array, shape: number[], dtype: "f32" | "f16") => (dtype === "f32" ? Tensor.from(data, shape) : cast(Tensor.from(data, shape), "f16"));
const read = async (y: Tensor, dtype: "f32" | "f16") => {
  expect(y.dtype).toBe(dtype);
  expect(y.byteLength).toBeGreaterThan(BINDING);
  return Array.from(await (dtype === "f32" ? y : cast(y, "f32")).readFloat32());
};

describe("elementwise ops over several storage bindings (64 KiB bindings)", () => {
  it("the device really has small bindings", () => {
    expect(gpu().maxBindingBytes).toBe(BINDING);
  });

  for (const dtype of DTYPES) {
    describe(dtype, () => {
      const n = 100000; // f16: 4 bindings, f32: 7
      const x = pattern(n, 1);

      forEachVariant(elementwiseVariants(profile), (v) => {
        it("unary", async () => {
          expect(await read(unary("affine", up(x, [n], dtype), 2, -1, v), dtype)).toEqual(Array.from(x, (e) => 2 * e - 1));
        });

        it("binary: same shape, and broadcasts [25, 40, 100] + [40, 1] and [25, 40, 100] · [40, 100]", async () => {
          const y = pattern(n, 2);
          expect(await read(binary("sub", up(x, [n], dtype), up(y, [n], dtype), v), dtype)).toEqual(Array.from(x, (e, i) => e - y[i]!));
          const b = pattern(40, 3);
          const got = await read(binary("add", up(x, [25, 40, 100], dtype), up(b, [40, 1], dtype), v), dtype);
          expect(got).toEqual(Array.from(x, (e, i) => e + b[Math.floor(i / 100) % 40]!));
          const got2 = await read(binary("max", up(x, [25, 40, 100], dtype), up(y.subarray(0, 4000), [40, 100], dtype), v), dtype);
          expect(got2).toEqual(Array.from(x, (e, i) => Math.max(e, y[i % 4000]!)));
        });

        it("addN: ten tensors over several windows", async () => {
          const data = Array.from({ length: 10 }, (_, s) => pattern(n, s + 5));
          const want = data.reduce((acc, d) => acc.map((e, i) => e + d[i]!));
          expect(await read(addN(data.map((d) => up(d, [n], dtype)), v), dtype)).toEqual(Array.from(want));
        });
      });

      // [2, 3, 9, 40, 50]: 108000 elements, 7 f32 segments or 4 f16 ones.
      const x5 = pattern(2 * 3 * 9 * 40 * 50, 4);
      it("resize3d nearest-exact and trilinear", async () => {
        const t = up(x5, [2, 3, 9, 40, 50], dtype);
        const near = await read(resize3d(t, [7, 61, 29], "nearest-exact"), dtype);
        expect(near).toEqual(Array.from(refResize(x5, 6, [9, 40, 50], [7, 61, 29], "nearest-exact", false)));
        const got = await read(resize3d(t, [13, 31, 64], "trilinear"), dtype);
        const want = refResize(x5, 6, [9, 40, 50], [13, 31, 64], "trilinear", false);
        if (dtype === "f32") expect(relError(got, want)).toBeLessThanOrEqual(1e-4);
        else expect(got.filter((v, i) => !(Math.abs(v - want[i]!) <= F16_UNIT * (4 + Math.abs(want[i]!)) + 1e-4 * 4)).length).toBe(0);
      });
    });
  }
});
