// addN (src/kernels/add_n.ts) against a plain-TS left-to-right float32 sum:
// the result must be bitwise that of the pairwise chain ((a + b) + c …),
// for one tensor (a copy), within one dispatch (up to 8) and across several
// (the partial sum carried into the next). Chunked windows are covered in
// large-chunks.test.ts.
import { describe, expect, it } from "vitest";
import { addN } from "../../src/kernels/add_n.js";
import { add } from "../../src/kernels/elementwise.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();

function pattern(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.731 + seed * 1.37) * (1 + seed) * 0.1);
}

/** ((x0 + x1) + x2) … in float32. */
function chainSum(xs: Float32Array[]): Float32Array {
  const out = Float32Array.from(xs[0]!);
  for (const x of xs.slice(1)) for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i]! + x[i]!);
  return out;
}

describe("addN", () => {
  for (const k of [1, 2, 3, 8, 9, 12, 17]) {
    for (const n of [1, 7, 4099]) {
      it(`${k} tensors of ${n} elements equal the float32 chain`, async () => {
        const data = Array.from({ length: k }, (_, s) => pattern(n, s));
        const xs = data.map((d) => Tensor.from(d, [n]));
        const y = addN(xs);
        expect(y.shape).toEqual([n]);
        expect(Array.from(await y.readFloat32())).toEqual(Array.from(chainSum(data)));
        // The inputs are left as they were.
        expect(Array.from(await xs[0]!.readFloat32())).toEqual(Array.from(data[0]!));
        y.dispose();
        for (const x of xs) x.dispose();
      });
    }
  }

  it("matches the pairwise chain of binary adds bit for bit on a 3-D shape", async () => {
    const xs = [0, 1, 2, 3].map((s) => Tensor.from(pattern(2 * 3 * 5, s), [2, 3, 5]));
    const chain = add(add(add(xs[0]!, xs[1]!), xs[2]!), xs[3]!);
    const y = addN(xs);
    expect(y.shape).toEqual([2, 3, 5]);
    expect(Array.from(await y.readFloat32())).toEqual(Array.from(await chain.readFloat32()));
  });

  it("refuses an empty list, mismatched shapes and a wrong dtype, naming them", () => {
    expect(() => addN([])).toThrow("addN: no tensors to add");
    expect(() => addN([Tensor.zeros([2, 3]), Tensor.zeros([3, 2])])).toThrow("addN: tensors must share one shape: [2, 3] and [3, 2]");
    expect(() => addN([Tensor.zeros([4]), Tensor.from(new Int32Array(4), [4], "i32")])).toThrow(/addN: .*i32/);
  });
});
