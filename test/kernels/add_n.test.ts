// addN (src/kernels/add_n.ts) against a plain-TS left-to-right float32 sum:
// the result must be bitwise that of the pairwise chain ((a + b) + c …),
// for one tensor (a copy), within one dispatch (up to 8) and across several
// (the partial sum carried into the next). In f16 the same f32 chain is
// rounded once, at the end: bitwise roundF16 of the chain over the f16
// inputs, the partial sums between dispatches included. Chunked windows are
// covered in large-chunks.test.ts and elementwise_chunks.test.ts.
import { describe, expect, it } from "vitest";
import { addN } from "../../src/kernels/add_n.js";
import { add, elementwiseVariants } from "../../src/kernels/elementwise.js";
import { cast } from "../../src/kernels/layout.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { roundF16 } from "../helpers/f16.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const noF16 = profile.f16 ? false : "the adapter lacks shader-f16";

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
  forEachVariant(elementwiseVariants(profile), (v) => {
    for (const k of [1, 2, 3, 8, 9, 12, 17]) {
      for (const n of [1, 7, 4099]) {
        it(`${k} tensors of ${n} elements equal the float32 chain`, async () => {
          const data = Array.from({ length: k }, (_, s) => pattern(n, s));
          const xs = data.map((d) => Tensor.from(d, [n]));
          const y = addN(xs, v);
          expect(y.shape).toEqual([n]);
          expect(Array.from(await y.readFloat32())).toEqual(Array.from(chainSum(data)));
          // The inputs are left as they were.
          expect(Array.from(await xs[0]!.readFloat32())).toEqual(Array.from(data[0]!));
          y.dispose();
          for (const x of xs) x.dispose();
        });
      }
    }

    for (const k of [1, 2, 8, 9, 17]) {
      it.skipIf(noF16)(`f16: ${k} tensors of 4099 elements are the float32 chain rounded once`, async () => {
        const data = Array.from({ length: k }, (_, s) => Float32Array.from(pattern(4099, s), roundF16));
        const y = addN(data.map((d) => cast(Tensor.from(d, [4099]), "f16")), v);
        expect(y.dtype).toBe("f16");
        expect(Array.from(await cast(y, "f32").readFloat32())).toEqual(Array.from(chainSum(data), roundF16));
      });
    }
  });

  it.skipIf(noF16)("f16: partial sums stay f32, within a dispatch and between dispatches", async () => {
    // 60000 is an f16 value; 2·60000 and 8·60000 are past f16's 65504.
    const h = (v: number) => cast(Tensor.from([v, v / 2], [2]), "f16");
    const sum = async (vs: number[]) => Array.from(await cast(addN(vs.map(h)), "f32").readFloat32());
    expect(await sum([60000, 60000, -60000])).toEqual([60000, 30000]);
    // 17 tensors: dispatches of 8, 7 + the carry, 2 + the carry.
    expect(await sum([...Array(8).fill(60000), ...Array(8).fill(-60000), 60000])).toEqual([60000, 30000]);
  });

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

  it.skipIf(noF16)("refuses mixed f32 and f16 tensors", () => {
    expect(() => addN([Tensor.zeros([4]), cast(Tensor.zeros([4]), "f16")])).toThrow("addN: inputs mix f32 and f16: cast them to one precision first");
  });
});
