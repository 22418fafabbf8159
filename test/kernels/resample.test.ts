// resize3d against PyTorch F.interpolate goldens (tools/fixtures/gen_resample.py).
// Tolerance: trilinear max |err| ≤ 1e-4 · max |expected|; nearest modes exact.
import { describe, expect, it } from "vitest";
import { nearestSource, resize3d, type ResizeMode } from "../../src/kernels/resample.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const cases = loadFixture("kernels/resample");

describe("resize3d vs PyTorch", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const x = Tensor.from(c.inputs.x!.data as Float32Array, c.inputs.x!.shape);
      const size = c.params.size as [number, number, number];
      const mode = c.params.mode as ResizeMode;
      const y = resize3d(x, size, mode, c.params.align_corners as boolean);
      expect(y.shape).toEqual(c.outputs.y!.shape);
      const got = await y.readFloat32();
      if (mode === "trilinear") expect(relError(got, c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
      else expect(Array.from(got)).toEqual(Array.from(c.outputs.y!.data));
    });
  }

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
  });
});
