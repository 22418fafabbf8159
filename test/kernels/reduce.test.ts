// Reductions against PyTorch goldens (float64 reference, tools/fixtures/gen_reduce.py).
// Tolerance: max |err| ≤ 1e-4 · max |expected| (sum/mean); min/max exact.
import { describe, expect, it } from "vitest";
import { reduce, type ReduceOp } from "../../src/kernels/reduce.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const cases = loadFixture("kernels/reduce");

describe("reduce vs PyTorch", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const x = Tensor.from(c.inputs.x!.data as Float32Array, c.inputs.x!.shape);
      const op = c.params.op as ReduceOp;
      const axis = c.params.axis === null ? undefined : (c.params.axis as number);
      const y = reduce(op, x, axis, c.params.keep as boolean);
      expect(y.shape).toEqual(c.outputs.y!.shape);
      const got = await y.readFloat32();
      if (op === "min" || op === "max") expect(Array.from(got)).toEqual(Array.from(c.outputs.y!.data));
      else expect(relError(got, c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
    });
  }

  it("keepDims without an axis gives all-ones shape; empty sum is 0", async () => {
    const x = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const y = reduce("max", x, undefined, true);
    expect(y.shape).toEqual([1, 1]);
    expect(Array.from(await y.readFloat32())).toEqual([6]);
    expect(Array.from(await reduce("sum", Tensor.zeros([0, 3])).readFloat32())).toEqual([0]);
  });

  it("rejects bad arguments naming the op and shapes", () => {
    const x = Tensor.zeros([3, 5]);
    expect(() => reduce("sum", x, 2)).toThrow(/reduce\(sum\): axis 2 is out of range for rank 2/);
    expect(() => reduce("prod" as ReduceOp, x)).toThrow(/reduce: unknown op "prod"/);
    expect(() => reduce("max", Tensor.zeros([0, 4]), 0)).toThrow(/reduce\(max\): axis 0 of \[0, 4\] is empty/);
    expect(() => reduce("min", Tensor.from(new Int32Array(2), [2], "i32"))).toThrow(/reduce\(min\): expected dtype f32, got i32/);
  });
});
