// Elementwise kernels against PyTorch goldens (tools/fixtures/gen_elementwise.py).
// Tolerance: max |err| ≤ 1e-4 · max |expected| (f32, erf approximated to 1.5e-7).
import { describe, expect, it } from "vitest";
import { binary, unary, type BinaryOp, type UnaryOp } from "../../src/kernels/elementwise.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const cases = loadFixture("kernels/elementwise");

describe("elementwise kernels vs PyTorch", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const op = c.params.op as string;
      let y: Tensor;
      if (c.name.startsWith("unary")) {
        const x = Tensor.from(c.inputs.x!.data as Float32Array, c.inputs.x!.shape);
        y = unary(op as UnaryOp, x, c.params.a as number, c.params.b as number);
      } else {
        const a = Tensor.from(c.inputs.a!.data as Float32Array, c.inputs.a!.shape);
        const b = Tensor.from(c.inputs.b!.data as Float32Array, c.inputs.b!.shape);
        y = binary(op as BinaryOp, a, b);
      }
      expect(y.shape).toEqual(c.outputs.y!.shape);
      expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
    });
  }

  it("rejects shapes that do not broadcast, naming op and shapes", () => {
    const a = Tensor.zeros([3, 4]);
    const b = Tensor.zeros([5]);
    expect(() => binary("add", a, b)).toThrow(/add: shapes \[3, 4\] and \[5\] do not broadcast/);
  });

  it("rejects a disposed input and a wrong dtype", () => {
    const a = Tensor.zeros([4]);
    a.dispose();
    expect(() => unary("exp", a)).toThrow(/exp: input tensor \[4\] f32 was disposed/);
    const i = Tensor.from(new Int32Array(4), [4], "i32");
    expect(() => unary("relu", i)).toThrow(/relu: expected dtype f32, got i32/);
  });
});
