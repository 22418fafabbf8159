// Softmax against PyTorch goldens (tools/fixtures/gen_softmax.py), including
// logits beyond f32 exp's range (> 89, all < -104) that need the row max
// subtracted. Every case runs over every variant this device runs
// (softmaxVariants: each row variant, that is the 64-lane barrier kernel,
// one row per workgroup at each subgroup width and the fixed-size kernel of
// several rows a workgroup, with strided axes whose inner size is a multiple
// of 4 in the columns kernel at 8 and 4 rows an invocation, and without).
// Each runs at f32 and f16. Tolerance: max |err| ≤ 1e-4 · max |expected| at
// f32 (f32 exp, float64 reference y); at f16, F16_TOL (2^-11 + 1e-4, derived
// in test/helpers/f16.ts) against y_f16in, the float64 reference on the
// f16-rounded input. flat_long_2x4096 and flat_long_strided_4096x8 fail if
// the sum of exp is kept in f16.
import { describe, expect, it } from "vitest";
import { ShapeError } from "../../src/kernels/check.js";
import { cast } from "../../src/kernels/layout.js";
import { softmax, softmaxBackward, softmaxVariants } from "../../src/kernels/softmax.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { F16_TOL, fixtureTensor, readAs, skipWithoutF16, forEachGolden } from "../helpers/f16.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";

useGpu();
const cases = loadFixture("kernels/softmax");
const profile = await testProfile();

describe("softmax vs PyTorch", () => {
  forEachGolden(softmaxVariants(profile), cases, async (c, variant, p) => {
      const y = softmax(fixtureTensor(c.inputs.x!, p), c.params.axis as number, variant);
      expect(y.shape).toEqual(c.outputs.y!.shape);
      const [want, tol] = p === "f32" ? [c.outputs.y!, 1e-4] : [c.outputs.y_f16in!, F16_TOL];
      expect(relError(await readAs(y, p), want.data)).toBeLessThanOrEqual(tol);
  });

  it("refuses f16 in the backward (f32 only) with a ShapeError", (ctx) => {
    skipWithoutF16(ctx, "f16");
    const y = cast(Tensor.zeros([2, 8]), "f16");
    expect(() => softmaxBackward(y, y)).toThrow(ShapeError);
    expect(() => softmaxBackward(y, y)).toThrow(/softmaxBackward: expected dtype f32, got f16/);
  });

  it("has cases beyond f32 exp's range: logits > 89, and a case whose logits are all < -104", () => {
    const ranges = cases.map((c) => [Math.min(...c.inputs.x!.data), Math.max(...c.inputs.x!.data)] as const);
    expect(ranges.some(([, hi]) => hi > 89)).toBe(true);
    expect(ranges.some(([, hi]) => hi < -104)).toBe(true);
  });

  it("defaults to the last axis and rejects a bad axis, naming op and shape", async () => {
    const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    const y = await softmax(x).readFloat32();
    const e = [1, Math.E, Math.E ** 2];
    const s = e[0]! + e[1]! + e[2]!;
    for (let i = 0; i < 6; i++) expect(y[i]).toBeCloseTo(e[i % 3]! / s, 6);
    expect(() => softmax(x, 2)).toThrow(/softmax: axis 2 is out of range for rank 2/);
    expect(() => softmax(x, 0, { cols: 2 as 4 })).toThrow(/softmax: variant cols=2 lanes=\d+ rows=\d+: cols must be 1, 4 or 8/);
  });
});
