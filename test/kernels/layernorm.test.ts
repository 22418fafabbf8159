// LayerNorm against PyTorch goldens (tools/fixtures/gen_layernorm.py): the row
// kernels (vec4 and scalar) and the two-stage whole-block path, on ordinary
// and near-constant data (variance about eps, where eps must sit inside the
// sqrt). Every case runs over every row variant this device runs
// (rowVariants: the 64-lane barrier kernel, one row per workgroup at each
// subgroup width, the fixed-size kernel of several rows a workgroup, each
// subgroup kernel streaming its rows and holding them in registers; rows
// longer than 32 vectors a lane take the barrier or block path), at f32 and
// f16. Tolerance: max |err| ≤ 1e-4 · max |expected| at f32 (float64
// reference y); at f16, F16_TOL (2^-11 + 1e-4, derived in test/helpers/f16.ts)
// against y_f16in, the float64 reference on the f16-rounded inputs. Cases
// that f16 statistics would fail: mean 100 over spread 2 (rows and two-stage;
// the sums pass f16's 65504 or its spacing of 32 there), near-constant rows
// and blocks (squared deviations of 1e-5, below f16's normal range).
import { describe, expect, it } from "vitest";
import { ShapeError } from "../../src/kernels/check.js";
import { cast } from "../../src/kernels/layout.js";
import { layerNorm, layerNormBackward, type LayerNormVariant } from "../../src/kernels/layernorm.js";
import { rowVariants } from "../../src/kernels/profile.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { F16_TOL, fixtureTensor, readAs, skipWithoutF16, forEachGolden, type TestPrecision } from "../helpers/f16.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/layernorm");

/** Every row variant, the subgroup ones in both forms: streamed (the default) and held in registers. */
const variants: LayerNormVariant[] = rowVariants(profile).flatMap((v) => (v.lanes > 0 ? [{ ...v, stream: true }, { ...v, stream: false }] : [v]));

/** Runs one golden case under `variant` at precision p against its float64 reference. */
async function checkGolden(c: (typeof cases)[number], variant: LayerNormVariant, p: TestPrecision): Promise<void> {
  const [x, w, b] = [c.inputs.x!, c.inputs.weight!, c.inputs.bias!].map((a) => fixtureTensor(a, p));
  const y = layerNorm(x!, w!, b!, c.params.eps as number, variant);
  expect(y.shape).toEqual(c.outputs.y!.shape);
  const [want, tol] = p === "f32" ? [c.outputs.y!, 1e-4] : [c.outputs.y_f16in!, F16_TOL];
  expect(relError(await readAs(y, p), want.data)).toBeLessThanOrEqual(tol);
}

describe("layerNorm vs PyTorch", () => {
  forEachGolden(variants, cases, checkGolden);

  // The subgroup kernel's span (rows a subgroup walks with each weight and
  // bias load shared by all of them) is chosen above 64·rows-a-workgroup rows, more than
  // the goldens have: force span 2 on cases with an odd row count (a last
  // subgroup with one row) and with a register overhanging the row.
  forEachGolden(
    variants.filter((v) => v.lanes > 0).map((v) => ({ ...v, span: 2 })),
    cases.filter((c) => ["rows_5x768", "rows_odd_2x3x37", "rows_near_constant_odd_3x37"].includes(c.name)),
    checkGolden,
  );

  // The whole-block path's stage 1 splits a block into chunks of 64·chunk
  // vectors (64 by default, so the fixtures' blocks fit in one): force
  // small chunks so that stage 2 merges many partials (chunk 1: 9-33 of them).
  forEachGolden([{ ...variants[0]!, chunk: 1 }, { ...variants[0]!, chunk: 16 }], cases.filter((c) => c.name.startsWith("block")), checkGolden);

  it("has a case whose mean is large against its spread on the row path and on the two-stage path", () => {
    const offset = (c: (typeof cases)[number]) => {
      const x = Array.from(c.inputs.x!.data);
      const mean = x.reduce((s, v) => s + v, 0) / x.length;
      return mean > 20 * Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
    };
    expect(cases.some((c) => c.inputs.weight!.data.length <= 1024 && offset(c))).toBe(true);
    expect(cases.some((c) => c.inputs.weight!.data.length > 2048 && offset(c))).toBe(true);
  });

  it("refuses mixed precisions, and f16 in the backward (f32 only), with a ShapeError", (ctx) => {
    skipWithoutF16(ctx, "f16");
    const x = cast(Tensor.zeros([2, 8]), "f16");
    expect(() => layerNorm(x, Tensor.zeros([8]), Tensor.zeros([8]))).toThrow(/layerNorm: inputs mix f16 and f32: cast them to one precision first/);
    const w = cast(Tensor.zeros([8]), "f16");
    expect(() => layerNormBackward(x, w, x)).toThrow(ShapeError);
    expect(() => layerNormBackward(x, w, x)).toThrow(/layerNormBackward: expected dtype f32, got f16/);
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
    expect(() => layerNorm(x, Tensor.zeros([4]), Tensor.zeros([4]), 1e-5, { lanes: 4, rows: 1, span: 0 })).toThrow(/layerNorm: span must be a positive integer, got 0/);
    expect(() => layerNorm(Tensor.zeros([1, 3000]), Tensor.zeros([3000]), Tensor.zeros([3000]), 1e-5, { lanes: 0, rows: 1, chunk: 0.5 })).toThrow(/layerNorm: chunk must be a positive integer, got 0.5/);
    expect(() => layerNorm(x, Tensor.zeros([3]), Tensor.zeros([3]))).toThrow(
      /layerNorm: weight shape must equal the trailing dims of x: x \[2, 3, 4\], weight \[3\], bias \[3\]/,
    );
    expect(() => layerNorm(x, Tensor.zeros([4]), Tensor.zeros([3, 4]))).toThrow(/layerNorm: weight and bias shapes differ/);
  });
});
