// conv3d against PyTorch goldens (tools/fixtures/gen_conv.py).
// Tolerance: max |err| ≤ 1e-4 · max |expected| (K = Cin·kd·kh·kw < 768 in every case).
import { describe, expect, it } from "vitest";
import { conv3d } from "../../src/kernels/conv3d.js";
import { gemmVariants } from "../../src/kernels/conv_gemm.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError, type FixtureArray } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile, underForce } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/conv").filter((c) => c.name.startsWith("conv3d_"));
const up = (a: FixtureArray) => Tensor.from(a.data as Float32Array, a.shape);
type T3 = [number, number, number];

describe("conv3d vs PyTorch", () => {
  it("has its golden cases", () => expect(cases.length).toBeGreaterThanOrEqual(4));
  // Every case over every GEMM variant this device runs (forced through the profile).
  forEachVariant(gemmVariants(profile), (gemm) => {
    for (const c of cases) {
      it(c.name, () => underForce({ gemm }, async () => {
        const x = up(c.inputs.x!);
        const w = up(c.inputs.w!);
        const bias = c.inputs.bias ? up(c.inputs.bias) : undefined;
        const y = conv3d(x, w, bias, { stride: c.params.stride as T3, padding: c.params.padding as T3 });
        expect(y.shape).toEqual(c.outputs.y!.shape);
        expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
      }));
    }
  });

  it("rejects a channel mismatch, a bad bias, a wrong rank and a kernel larger than the input", () => {
    const x = Tensor.zeros([1, 3, 4, 5, 6]);
    expect(() => conv3d(x, Tensor.zeros([5, 2, 3, 3, 3]))).toThrow(/conv3d: weight \[5, 2, 3, 3, 3\] expects 2 input channels but x \[1, 3, 4, 5, 6\] has 3/);
    const w = Tensor.zeros([5, 3, 3, 3, 3]);
    expect(() => conv3d(x, w, Tensor.zeros([3]))).toThrow(/conv3d: bias must have shape \[5\].*got \[3\]/);
    expect(() => conv3d(x, w, Tensor.zeros([5, 1]))).toThrow(/conv3d: bias must have shape \[5\].*got \[5, 1\]/);
    expect(() => conv3d(Tensor.zeros([3, 4, 5, 6]), w)).toThrow(/conv3d: input x .* must have rank 5, got \[3, 4, 5, 6\]/);
    expect(() => conv3d(x, Tensor.zeros([5, 3, 9, 1, 1]))).toThrow(/conv3d: kernel \[9, 1, 1\] with padding \[0, 0, 0\] does not fit input \[1, 3, 4, 5, 6\]/);
    expect(() => conv3d(x, w, undefined, { padding: -1 })).toThrow(/conv3d: padding must be an integer ≥ 0/);
  });
});
