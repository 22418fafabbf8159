// convTranspose3d against PyTorch goldens (tools/fixtures/gen_conv.py).
// Tolerance: max |err| ≤ 1e-4 · max |expected| at small K, 1e-3 at K ≥ 768; in
// f16 (inputs cast to f16, output read back as f32) f16Tolerance(K)
// (test/helpers/f16.ts). K, the products summed per output, is Cin on the
// GEMM path (kernel = stride) and at most Cin·⌈kd/sd⌉·⌈kh/sh⌉·⌈kw/sw⌉ on the direct one.
import { describe, expect, it } from "vitest";
import { convTranspose3d, convTranspose3dBackward, convTranspose3dBiasGrad } from "../../src/kernels/conv_transpose3d.js";
import { cast } from "../../src/kernels/layout.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { forEachConvGolden } from "../helpers/conv_goldens.js";
import { f16Tolerance, readAs } from "../helpers/f16.js";
import { loadFixture, relError, type FixtureArray } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/conv").filter((c) => c.name.startsWith("convT_"));
const up = (a: FixtureArray) => Tensor.from(a.data as Float32Array, a.shape);

describe("convTranspose3d vs PyTorch", () => {
  it("has at least two golden cases on each path (kernel = stride: GEMM; otherwise direct)", () => {
    const direct = cases.filter((c) => c.inputs.w!.shape.slice(2).some((k, i) => k !== (c.params.stride as number[])[i]));
    expect(direct.length).toBeGreaterThanOrEqual(2);
    expect(cases.length - direct.length).toBeGreaterThanOrEqual(2);
  });
  // Every case over every GEMM variant this device runs, in f32 and f16.
  forEachConvGolden(profile, cases, async (c, dtype, { x, w, bias }) => {
    const stride = c.params.stride as [number, number, number];
    const y = convTranspose3d(x, w, bias, { stride });
    expect(y.shape).toEqual(c.outputs.y!.shape);
    const K = x.shape[1]! * stride.reduce((n, s, i) => n * Math.ceil(w.shape[2 + i]! / s), 1);
    const tol = dtype === "f16" ? f16Tolerance(K, c.inputs.x!.data, c.inputs.w!.data, c.outputs.y!.data, c.inputs.bias?.data) : x.shape[1]! >= 768 ? 1e-3 : 1e-4;
    expect(relError(await readAs(y, dtype), c.outputs.y!.data)).toBeLessThanOrEqual(tol);
  });

  it("defaults the stride to the kernel size", async () => {
    const c = cases.find((k) => k.name === "convT_k132")!;
    const y = convTranspose3d(up(c.inputs.x!), up(c.inputs.w!), up(c.inputs.bias!));
    expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
  });

  it("rejects a channel mismatch, a bad bias, a wrong rank and a bad stride", () => {
    const x = Tensor.zeros([1, 4, 2, 3, 5]);
    const w = Tensor.zeros([3, 6, 2, 2, 2]);
    expect(() => convTranspose3d(x, w)).toThrow(/convTranspose3d: weight \[3, 6, 2, 2, 2\] expects 3 input channels but x \[1, 4, 2, 3, 5\] has 4/);
    const w4 = Tensor.zeros([4, 6, 2, 2, 2]);
    expect(() => convTranspose3d(x, w4, Tensor.zeros([4]))).toThrow(/convTranspose3d: bias must have shape \[6\].*got \[4\]/);
    expect(() => convTranspose3d(Tensor.zeros([4, 2, 3, 5]), w4)).toThrow(/convTranspose3d: input x .* must have rank 5, got \[4, 2, 3, 5\]/);
    expect(() => convTranspose3d(x, Tensor.zeros([4, 6, 2, 2]))).toThrow(/convTranspose3d: weight .* must have rank 5, got \[4, 6, 2, 2\]/);
    expect(() => convTranspose3d(x, w4, undefined, { stride: 0 })).toThrow(/convTranspose3d: stride must be an integer ≥ 1/);
  });

  it.skipIf(!profile.f16)("computes gradients in f32 only: the backward refuses f16 tensors", () => {
    const x = cast(Tensor.zeros([1, 4, 2, 3, 5]), "f16");
    const w = Tensor.zeros([4, 6, 2, 2, 2]);
    const dy = Tensor.zeros([1, 6, 4, 6, 10]);
    expect(() => convTranspose3dBackward(x, w, dy)).toThrow(/convTranspose3dBackward: gradients are computed in f32 only, got an f16 tensor \[1, 4, 2, 3, 5\]: cast to f32 first/);
    expect(() => convTranspose3dBiasGrad(cast(dy, "f16"))).toThrow(/convTranspose3dBackward\(dbias\): gradients are computed in f32 only/);
  });
});
