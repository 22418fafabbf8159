// LayerNorm against PyTorch goldens (tools/fixtures/gen_layernorm.py): the row
// kernels (vec4 and scalar) and the two-stage whole-block path, on ordinary
// and near-constant data (variance about eps, where eps must sit inside the
// sqrt). Every case runs over every row variant this device runs
// (rowVariants: the 64-lane barrier kernel, one row per workgroup at each
// subgroup width, the fixed-size kernel of several rows a workgroup; rows
// longer than 32 vectors a lane take the barrier or block path). Tolerance: max |err| ≤ 1e-4 · max |expected| (f32,
// float64 reference).
import { describe, expect, it } from "vitest";
import { layerNorm } from "../../src/kernels/layernorm.js";
import { rowVariants } from "../../src/kernels/profile.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/layernorm");
const t = (a: { data: Float32Array | Int32Array; shape: number[] }) => Tensor.from(a.data as Float32Array, a.shape);

describe("layerNorm vs PyTorch", () => {
  forEachVariant(rowVariants(profile), (variant) => {
    for (const c of cases) {
      it(c.name, async () => {
        const y = layerNorm(t(c.inputs.x!), t(c.inputs.weight!), t(c.inputs.bias!), c.params.eps as number, variant);
        expect(y.shape).toEqual(c.outputs.y!.shape);
        expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
      });
    }
  });

  it("has near-constant rows (variance < 2·eps) on the row path (N ≤ 1024) and the two-stage path (N > 2048)", () => {
    const nearConstant = (c: (typeof cases)[number]) => {
      const n = c.inputs.weight!.data.length;
      const x = c.inputs.x!.data as Float32Array;
      let found = false;
      for (let r = 0; r < x.length / n; r++) {
        const row = Array.from(x.subarray(r * n, (r + 1) * n));
        const mean = row.reduce((s, v) => s + v, 0) / n;
        const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
        if (variance > 0 && variance < 2 * (c.params.eps as number)) found = true;
      }
      return found;
    };
    expect(cases.some((c) => c.inputs.weight!.data.length <= 1024 && nearConstant(c))).toBe(true);
    expect(cases.some((c) => c.inputs.weight!.data.length > 2048 && nearConstant(c))).toBe(true);
  });

  it("rejects a weight that is not a trailing shape of x, naming op and shapes", () => {
    const x = Tensor.zeros([2, 3, 4]);
    expect(() => layerNorm(x, Tensor.zeros([3]), Tensor.zeros([3]))).toThrow(
      /layerNorm: weight shape must equal the trailing dims of x: x \[2, 3, 4\], weight \[3\], bias \[3\]/,
    );
    expect(() => layerNorm(x, Tensor.zeros([4]), Tensor.zeros([3, 4]))).toThrow(/layerNorm: weight and bias shapes differ/);
  });
});
