// Elementwise kernels against PyTorch goldens (tools/fixtures/gen_elementwise.py).
// Tolerance: max |err| ≤ 1e-4 · max |expected| (f32, erf approximated to 1.5e-7).
import { describe, expect, it } from "vitest";
import { binary, collapseBroadcast, unary, type BinaryOp, type UnaryOp } from "../../src/kernels/elementwise.js";
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

// The broadcast path merges axes (collapseBroadcast) before indexing; these
// shapes merge to 1-4 axes in different ways. Reference: plain float64
// NumPy-style broadcasting in TS. Tolerance: exact up to f32 rounding of x - y.
describe("binary broadcasting vs a plain reference", () => {
  const ramp = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => (((i + 1) * (seed * 7 + 13)) % 23) / 7 - 1.5);
  const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
  function reference(a: Float32Array, as: number[], b: Float32Array, bs: number[], out: number[]): Float64Array {
    const y = new Float64Array(size(out));
    const at = (data: Float32Array, shape: number[], idx: number[]) => {
      let o = 0;
      shape.forEach((d, i) => (o = o * d + (d === 1 ? 0 : idx[idx.length - shape.length + i]!)));
      return data[o]!;
    };
    for (let i = 0; i < y.length; i++) {
      const idx: number[] = [];
      let rem = i;
      for (let d = out.length - 1; d >= 0; d--) {
        idx[d] = rem % out[d]!;
        rem = Math.floor(rem / out[d]!);
      }
      y[i] = at(a, as, idx) - at(b, bs, idx);
    }
    return y;
  }
  const cases: [number[], number[], number[]][] = [
    [[2, 3, 4, 5, 6], [1, 3, 1, 1, 1], [2, 3, 4, 5, 6]], // [2, 3, 120] after merging
    [[4, 3, 2, 5], [2, 5], [4, 3, 2, 5]], // the trailing block repeats: [12, 10]
    [[4, 1, 5], [4, 5], [4, 4, 5]], // a middle broadcast axis on both sides
    [[4, 1, 5], [1, 4, 5], [4, 4, 5]],
    [[2, 1, 3], [1, 4, 1], [2, 4, 3]],
    [[1, 1, 7], [7], [1, 1, 7]], // equal up to extent-1 axes: the direct path
    [[3, 1, 1, 2, 1, 4], [1, 5, 6, 1, 1, 4], [3, 5, 6, 2, 1, 4]],
  ];
  for (const [as, bs, out] of cases) {
    it(`[${as}] - [${bs}] → [${out}]`, async () => {
      const a = ramp(size(as), 1);
      const b = ramp(size(bs), 2);
      const y = binary("sub", Tensor.from(a, as), Tensor.from(b, bs));
      expect(y.shape).toEqual(out);
      expect(relError(await y.readFloat32(), reference(a, as, b, bs, out))).toBeLessThanOrEqual(1e-6);
    });
  }

  it("merges axes only where both inputs allow it", () => {
    // [2, 3, 4, 5] + [1, 3, 1, 1]: strides a (60, 20, 5, 1), b (0, 1, 0, 0).
    expect(collapseBroadcast([2, 3, 4, 5], [60, 20, 5, 1], [0, 1, 0, 0])).toEqual({ shape: [2, 3, 20], sa: [60, 20, 1], sb: [0, 1, 0] });
    // Extent-1 axes go; a full match is one axis.
    expect(collapseBroadcast([1, 6, 1, 7], [0, 7, 7, 1], [0, 7, 0, 1])).toEqual({ shape: [42], sa: [1], sb: [1] });
    // Two broadcast axes in a row merge too.
    expect(collapseBroadcast([5, 2, 3], [6, 3, 1], [0, 0, 1])).toEqual({ shape: [10, 3], sa: [3, 1], sb: [0, 1] });
  });
});
