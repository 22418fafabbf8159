// LayerNorm against PyTorch goldens (tools/fixtures/gen_layernorm.py): the row
// kernels (subgroup and barrier, vec4 and scalar) and the two-stage whole-block path.
// Tolerance: max |err| ≤ 1e-4 · max |expected| (f32, float64 reference).
import { describe, expect, it } from "vitest";
import { layerNorm } from "../../src/kernels/layernorm.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const cases = loadFixture("kernels/layernorm");
const t = (a: { data: Float32Array | Int32Array; shape: number[] }) => Tensor.from(a.data as Float32Array, a.shape);

describe("layerNorm vs PyTorch", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const y = layerNorm(t(c.inputs.x!), t(c.inputs.weight!), t(c.inputs.bias!), c.params.eps as number);
      expect(y.shape).toEqual(c.outputs.y!.shape);
      expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
    });
  }

  it("matches without subgroups too (the 64-lane barrier row kernel)", async () => {
    const c = cases.find((x) => x.name === "rows_5x768")!;
    process.env.SEGVOL_NO_SUBGROUPS = "1";
    try {
      const y = layerNorm(t(c.inputs.x!), t(c.inputs.weight!), t(c.inputs.bias!), c.params.eps as number);
      expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
    } finally {
      delete process.env.SEGVOL_NO_SUBGROUPS;
    }
  });

  it("rejects a weight that is not a trailing shape of x, naming op and shapes", () => {
    const x = Tensor.zeros([2, 3, 4]);
    expect(() => layerNorm(x, Tensor.zeros([3]), Tensor.zeros([3]))).toThrow(
      /layerNorm: weight shape must equal the trailing dims of x: x \[2, 3, 4\], weight \[3\], bias \[3\]/,
    );
    expect(() => layerNorm(x, Tensor.zeros([4]), Tensor.zeros([3, 4]))).toThrow(/layerNorm: weight and bias shapes differ/);
  });
});
