// Softmax against PyTorch goldens (tools/fixtures/gen_softmax.py), including
// logits beyond f32 exp's range (> 89, all < -104) that need the row max
// subtracted. Every case runs over every variant this device runs
// (rowVariants: the 64-lane barrier kernel, one row per workgroup at each
// subgroup width, and the fixed-size kernel of several rows a workgroup).
// Tolerance: max |err| ≤ 1e-4 · max |expected| (f32 exp, float64 reference).
import { describe, expect, it } from "vitest";
import { rowVariants } from "../../src/kernels/profile.js";
import { softmax } from "../../src/kernels/softmax.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";

useGpu();
const cases = loadFixture("kernels/softmax");
const profile = await testProfile();

describe("softmax vs PyTorch", () => {
  forEachVariant(rowVariants(profile), (variant) => {
    for (const c of cases) {
      it(c.name, async () => {
        const x = Tensor.from(c.inputs.x!.data as Float32Array, c.inputs.x!.shape);
        const y = softmax(x, c.params.axis as number, variant);
        expect(y.shape).toEqual(c.outputs.y!.shape);
        expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
      });
    }
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
  });
});
