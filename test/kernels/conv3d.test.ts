// conv3d against PyTorch goldens (tools/fixtures/gen_conv.py).
// Tolerance: max |err| ≤ 1e-4 · max |expected| (K = Cin·kd·kh·kw < 768 in every case);
// in f16 (inputs cast to f16, output read back as f32) f16Tolerance(K) (test/helpers/f16.ts).
import { describe, expect, it } from "vitest";
import { conv3d } from "../../src/kernels/conv3d.js";
import { cast } from "../../src/kernels/layout.js";
import { Tensor, numel } from "../../src/tensor/tensor.js";
import { forEachConvGolden } from "../helpers/conv_goldens.js";
import { f16Tolerance, readAs } from "../helpers/f16.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/conv").filter((c) => c.name.startsWith("conv3d_"));
type T3 = [number, number, number];

describe("conv3d vs PyTorch", () => {
  it("has its golden cases", () => expect(cases.length).toBeGreaterThanOrEqual(4));
  // Every case over every GEMM variant this device runs, in f32 and f16.
  forEachConvGolden(profile, cases, async (c, dtype, { x, w, bias }) => {
    const y = conv3d(x, w, bias, { stride: c.params.stride as T3, padding: c.params.padding as T3 });
    expect(y.shape).toEqual(c.outputs.y!.shape);
    const tol = dtype === "f16" ? f16Tolerance(numel(w.shape.slice(1)), c.inputs.x!.data, c.inputs.w!.data, c.outputs.y!.data, c.inputs.bias?.data) : 1e-4;
    expect(relError(await readAs(y, dtype), c.outputs.y!.data)).toBeLessThanOrEqual(tol);
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

  it.skipIf(!profile.f16)("refuses inputs that mix f16 and f32", () => {
    const x = cast(Tensor.zeros([1, 3, 4, 5, 6]), "f16");
    const w = Tensor.zeros([5, 3, 3, 3, 3]);
    expect(() => conv3d(x, w)).toThrow(/conv3d: inputs mix f16 and f32: cast them to one precision first/);
    expect(() => conv3d(x, cast(w, "f16"), Tensor.zeros([5]))).toThrow(/conv3d: inputs mix f16 and f32/);
  });
});
