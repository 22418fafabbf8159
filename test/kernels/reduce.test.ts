// Reductions against PyTorch goldens (float64 reference, tools/fixtures/gen_reduce.py),
// each at f32 and f16. Tolerance: sum/mean max |err| ≤ 1e-4 · max |expected|
// at f32 (against y); at f16, F16_TOL (2^-11 + 1e-4, derived in
// test/helpers/f16.ts) against y_f16in, the float64 reduction of the
// f16-rounded input. min/max are exact at both. The offset and columns cases
// fail if sums are kept in f16 (gen_reduce.py says why). Every case runs
// over every variant (reduceVariants: the group kernel's barrier tree and
// one subgroup at each lane group, each with strided axes reduced by the
// columns kernel at 8 and 4 columns an invocation, and by the thread or
// group kernel); the thread kernel has one.
import { describe, expect, it } from "vitest";
import { ShapeError } from "../../src/kernels/check.js";
import { cast } from "../../src/kernels/layout.js";
import { expandTo, reduce, reduceVariants, type ReduceOp } from "../../src/kernels/reduce.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { F16_TOL, fixtureTensor, readAs, skipWithoutF16, forEachGolden } from "../helpers/f16.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";
import { refBroadcast } from "./reference.js";

useGpu();
const cases = loadFixture("kernels/reduce");
const profile = await testProfile();

describe("reduce vs PyTorch", () => {
  forEachGolden(reduceVariants(profile), cases, async (c, variant, p) => {
      const op = c.params.op as ReduceOp;
      const axis = c.params.axis === null ? undefined : (c.params.axis as number);
      const y = reduce(op, fixtureTensor(c.inputs.x!, p), axis, c.params.keep as boolean, variant);
      expect(y.shape).toEqual(c.outputs.y!.shape);
      const got = await readAs(y, p);
      const [want, tol] = p === "f32" ? [c.outputs.y!, 1e-4] : [c.outputs.y_f16in!, F16_TOL];
      if (op === "min" || op === "max") expect(Array.from(got)).toEqual(Array.from(want.data));
      else expect(relError(got, want.data)).toBeLessThanOrEqual(tol);
  });

  // expandTo writes 16 or 4 outputs an invocation where the innermost merged
  // axis allows (one g value splat where it is broadcast, else g's vectors),
  // else one; exact against the host broadcast (one f32 multiplication).
  it.each([
    { g: [1, 768], to: [5, 768], path: "16, g contiguous" },
    { g: [16], to: [3, 16], path: "16, g contiguous, missing axis" },
    { g: [3, 1], to: [3, 32], path: "16, splat" },
    { g: [], to: [4, 4], path: "16, splat of a scalar" },
    { g: [2, 1, 12], to: [2, 5, 12], path: "4, g contiguous" },
    { g: [4, 1], to: [4, 8], path: "4, splat" },
    { g: [1, 3, 1, 7], to: [2, 3, 5, 7], path: "1, g contiguous" },
    { g: [5, 1], to: [5, 3], path: "1, splat" },
  ])("expandTo $g -> $to (outputs an invocation: $path)", async ({ g, to }) => {
    const gh = Float32Array.from({ length: g.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + 1) * 3);
    const out = await expandTo(Tensor.from(gh, g), to, 1 / 3).readFloat32();
    expect(relError(out, refBroadcast(gh, g, to, 1 / 3))).toBe(0);
  });

  it("gives an empty f16 sum 0 and an empty f16 mean NaN", async (ctx) => {
    skipWithoutF16(ctx, "f16");
    const x = cast(Tensor.zeros([0, 3]), "f16");
    expect(Array.from(await readAs(reduce("sum", x), "f16"))).toEqual([0]);
    expect(Array.from(await readAs(reduce("mean", x), "f16"))).toEqual([NaN]);
  });

  it("refuses f16 in the backward (f32 only) with a ShapeError", (ctx) => {
    skipWithoutF16(ctx, "f16");
    const g = cast(Tensor.zeros([3]), "f16");
    expect(() => expandTo(g, [2, 3])).toThrow(ShapeError);
    expect(() => expandTo(g, [2, 3])).toThrow(/expand: expected dtype f32, got f16/);
  });

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
    expect(() => reduce("min", Tensor.from(new Int32Array(2), [2], "i32"))).toThrow(/reduce\(min\): expected dtype f32 or f16, got i32/);
    expect(() => reduce("sum", x, 1, false, { lanes: 8, rows: 8 })).toThrow(/reduce\(sum\): variant cols=8 lanes=8 rows=8: the group kernel runs one row a workgroup/);
    expect(() => reduce("sum", x, 1, false, { lanes: 256, rows: 1 })).toThrow(/reduce\(sum\): variant cols=8 lanes=256 rows=1 does not run on this device/);
    expect(() => reduce("sum", x, 1, false, { cols: 2 as 4 })).toThrow(/reduce\(sum\): variant cols=2 lanes=\d+ rows=1: cols must be 1, 4 or 8/);
  });
});
