// Elementwise kernels against PyTorch goldens (tools/fixtures/gen_elementwise.py).
// Tolerance: max |err| ≤ 1e-4 · max |expected| (f32, erf approximated to 1.5e-7).
// f16 storage: every golden case again on inputs rounded to f16, each
// element within the bound derived at `f16Bound`. Both under every variant
// (scalar and vec4, one and several vectors an invocation).
import { describe, expect, it } from "vitest";
import {
  binary,
  chooseElementwise,
  collapseBroadcast,
  elementwiseVariants,
  unary,
  unaryBackward,
  type BinaryOp,
  type ElementwiseVariant,
  type UnaryOp,
} from "../../src/kernels/elementwise.js";
import { cast } from "../../src/kernels/layout.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { F16_SUBNORMAL_HALF_STEP, F16_UNIT, roundF16 } from "../helpers/f16.js";
import { loadFixture, relError, type FixtureCase } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/elementwise");
const noF16 = profile.f16 ? false : "the adapter lacks shader-f16";

/** A fixture array uploaded in `dtype` (f16: rounded to nearest). */
function upload(data: ArrayLike<number>, shape: number[], dtype: "f32" | "f16"): Tensor {
  const x = Tensor.from(Float32Array.from(data), shape);
  return dtype === "f32" ? x : cast(x, "f16");
}

/** A result's values as f32 (f16 exactly), after checking it kept the inputs' dtype. */
async function values(y: Tensor, dtype: "f32" | "f16"): Promise<Float32Array> {
  expect(y.dtype).toBe(dtype);
  return (dtype === "f32" ? y : cast(y, "f32")).readFloat32();
}

function run(c: FixtureCase, dtype: "f32" | "f16", v: ElementwiseVariant): Tensor {
  const op = c.params.op as string;
  const up = (k: string) => upload(c.inputs[k]!.data, c.inputs[k]!.shape, dtype);
  if (c.name.startsWith("unary")) return unary(op as UnaryOp, up("x"), c.params.a as number, c.params.b as number, v);
  return binary(op as BinaryOp, up("a"), up("b"), v);
}

/**
 * |f'| near x (within f16's rounding of x), per unary map: how much the
 * rounding of the input to f16 (|δx| ≤ u·|x|) moves the output.
 * exp: e^x, up to the rounded input (e^(x(1 ± u)) ≤ e^x · e^(u|x|)); log:
 * 1/x and sqrt: 1/(2√x) at the rounded input x(1 − u); square: 2|x|(1 + u);
 * the GELUs' slopes peak at 1.13 (x·Φ(x): Φ + xφ ≤ 1.129; tanh form alike;
 * x·σ(1.702x): ≤ 1.10); sigmoid: 1/4; affine: |a|; neg, abs, relu, clamp: 1.
 * threshold is a step: the rounded input may cross it only where
 * |x − a| ≤ u·|x|, and there the output may change by 1.
 */
const SLOPE: Record<UnaryOp, (x: number, a: number) => number> = {
  neg: () => 1,
  exp: (x) => Math.exp(x) * Math.exp(F16_UNIT * Math.abs(x)),
  log: (x) => 1 / (x * (1 - F16_UNIT)),
  sqrt: (x) => 0.5 / Math.sqrt(x * (1 - F16_UNIT)),
  abs: () => 1,
  square: (x) => 2 * Math.abs(x) * (1 + F16_UNIT),
  relu: () => 1,
  gelu: () => 1.13,
  quick_gelu: () => 1.1,
  gelu_tanh: () => 1.13,
  sigmoid: () => 0.25,
  threshold: (x, a) => (Math.abs(x - a) <= F16_UNIT * Math.abs(x) ? 1 / (F16_UNIT * Math.abs(x)) : 0),
  clamp: () => 1,
  affine: (_x, a) => Math.abs(a),
};

/**
 * How far rounding both inputs to f16 moves a binary op's output, in units
 * of u: add, sub: |a| + |b|; max, min: max(|a|, |b|) (1-Lipschitz in each
 * input); mul, div: 2|y| (the inputs' relative errors add).
 */
const BINARY_INPUT_ERROR: Record<BinaryOp, (a: number, b: number, y: number) => number> = {
  add: (a, b) => Math.abs(a) + Math.abs(b),
  sub: (a, b) => Math.abs(a) + Math.abs(b),
  max: (a, b) => Math.max(Math.abs(a), Math.abs(b)),
  min: (a, b) => Math.max(Math.abs(a), Math.abs(b)),
  mul: (_a, _b, y) => 2 * Math.abs(y),
  div: (_a, _b, y) => 2 * Math.abs(y),
};

/**
 * The f16 bound per element of the output, against the f32 golden y:
 *   (u + ε) · (input term + |y|) + 2^-24,
 * u = 2^-11 for rounding the inputs to f16 (the input term: |x|·|f'| for a
 * unary map, BINARY_INPUT_ERROR for a binary op) and for the one rounding
 * on store (|y|); ε = 2^-20 for the f32 arithmetic (a few f32 ulps, the
 * erf approximation's 1.5e-7·|x| included) and for second-order terms;
 * 2^-24 for inputs and outputs among f16's subnormals (half a step each).
 */
function f16Bound(c: FixtureCase, y: Float32Array): Float64Array {
  const eps = 2 ** -20;
  const op = c.params.op as string;
  const bound = new Float64Array(y.length);
  if (c.name.startsWith("unary")) {
    const x = c.inputs.x!.data;
    const slope = SLOPE[op as UnaryOp];
    for (let i = 0; i < y.length; i++) bound[i] = (F16_UNIT + eps) * (Math.abs(x[i]!) * slope(x[i]!, c.params.a as number) + Math.abs(y[i]!)) + 4 * F16_SUBNORMAL_HALF_STEP;
    return bound;
  }
  // The inputs at each output element, broadcast as the op does.
  const a = broadcastTo(c.inputs.a!.data, c.inputs.a!.shape, c.outputs.y!.shape);
  const b = broadcastTo(c.inputs.b!.data, c.inputs.b!.shape, c.outputs.y!.shape);
  const term = BINARY_INPUT_ERROR[op as BinaryOp];
  for (let i = 0; i < y.length; i++) bound[i] = (F16_UNIT + eps) * (term(a[i]!, b[i]!, y[i]!) + Math.abs(y[i]!)) + 4 * F16_SUBNORMAL_HALF_STEP;
  return bound;
}

/** The largest |got − want| / bound over the elements (≤ 1: every element within its bound). */
function worstRatio(got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const r = Math.abs(got[i]! - want[i]!) / bound[i]!;
    worst = Number.isNaN(r) ? Infinity : Math.max(worst, r);
  }
  return worst;
}

const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

/** `data` of `shape` broadcast to `out` (NumPy rules), in float64. */
function broadcastTo(data: ArrayLike<number>, shape: readonly number[], out: readonly number[]): Float64Array {
  const y = new Float64Array(size(out));
  for (let i = 0; i < y.length; i++) {
    let rem = i;
    let o = 0;
    let stride = 1;
    for (let d = out.length - 1; d >= 0; d--) {
      const idx = rem % out[d]!;
      rem = Math.floor(rem / out[d]!);
      const k = d - (out.length - shape.length);
      if (k >= 0 && shape[k] !== 1) o += idx * stride;
      if (k >= 0) stride *= shape[k]!;
    }
    y[i] = data[o]!;
  }
  return y;
}

describe("elementwise kernels vs PyTorch", () => {
  forEachVariant(elementwiseVariants(profile), (v) => {
    for (const c of cases) {
      it(c.name, async () => {
        const y = run(c, "f32", v);
        expect(y.shape).toEqual(c.outputs.y!.shape);
        expect(relError(await values(y, "f32"), c.outputs.y!.data)).toBeLessThanOrEqual(1e-4);
      });

      it.skipIf(noF16)(`f16: ${c.name}`, async () => {
        const y = run(c, "f16", v);
        expect(y.shape).toEqual(c.outputs.y!.shape);
        const want = c.outputs.y!.data as Float32Array;
        expect(worstRatio(await values(y, "f16"), want, f16Bound(c, want))).toBeLessThanOrEqual(1);
      });
    }

    it("the backward kernel: g · sigmoid'(x) against its closed form s(1 − s) in float64", async () => {
      // 1027 elements: a partial last vec4. Tolerance 1e-6 of the largest: f32 exp and a few roundings.
      const n = 1027;
      const x = Float32Array.from({ length: n }, (_, i) => (i - 513) / 97);
      const g = Float32Array.from({ length: n }, (_, i) => 1 + (i % 5) / 4);
      const got = await unaryBackward("sigmoid", Tensor.from(x, [n]), Tensor.from(g, [n]), 0, 0, v).readFloat32();
      const s = (t: number) => 1 / (1 + Math.exp(-t));
      expect(relError(got, Array.from(x, (t, i) => g[i]! * s(t) * (1 - s(t))))).toBeLessThanOrEqual(1e-6);
    });
  });

  it("refuses a variant that is not one, and forcing reaches the chooser", () => {
    expect(() => chooseElementwise(profile, { vec: 2 as 4 })).toThrow(/elementwise: variant per=4 vec=2 is not one/);
    expect(() => chooseElementwise(profile, { per: 0 })).toThrow(/elementwise: variant per=0 vec=4 is not one/);
    expect(chooseElementwise({ ...profile, force: { elementwise: { vec: 1 } } })).toEqual({ vec: 1, per: chooseElementwise(profile).per });
  });

  describe("f16 storage", () => {
    it.skipIf(noF16)("the host model of f16 rounding agrees with the device's cast", async () => {
      const x = Float32Array.from({ length: 4096 }, (_, i) => Math.sinh((i - 2048) / 180) * (1 + (i % 7) / 3));
      const got = await cast(cast(Tensor.from(x, [x.length]), "f16"), "f32").readFloat32();
      expect(Array.from(got)).toEqual(Array.from(x, roundF16));
    });

    it.skipIf(noF16)("unary maps compute in f32: affine's v·a overflows f16 where its result does not", async () => {
      // x·2 − 60000 for x = 40000, 32768, 30016: inputs and results (20000,
      // 5536, 32) are f16 values; the products 80000 and 65536 are past f16's
      // largest, 65504, and 60032 is not.
      const x = cast(Tensor.from([40000, 32768, 30016], [3]), "f16");
      expect(Array.from(await values(unary("affine", x, 2, -60000), "f16"))).toEqual([20000, 5536, 32]);
    });
  });

  it("rejects shapes that do not broadcast, naming op and shapes", () => {
    const a = Tensor.zeros([3, 4]);
    const b = Tensor.zeros([5]);
    expect(() => binary("add", a, b)).toThrow(/add: shapes \[3, 4\] and \[5\] do not broadcast/);
  });

  it("rejects a disposed input, a wrong dtype and mixed precisions", () => {
    const a = Tensor.zeros([4]);
    a.dispose();
    expect(() => unary("exp", a)).toThrow(/exp: input tensor \[4\] f32 was disposed/);
    const i = Tensor.from(new Int32Array(4), [4], "i32");
    expect(() => unary("relu", i)).toThrow(/relu: expected dtype f32 or f16, got i32/);
    expect(() => binary("mul", Tensor.zeros([4]), i)).toThrow(/mul: expected dtype f32 or f16, got i32/);
  });

  it.skipIf(noF16)("refuses mixed f32 and f16 inputs, and f16 in the backward kernel", () => {
    const h = cast(Tensor.zeros([2, 3]), "f16");
    expect(() => binary("add", Tensor.zeros([2, 3]), h)).toThrow(/add: inputs mix f32 and f16: cast them to one precision first/);
    expect(() => unaryBackward("gelu", h, h)).toThrow(/gelu_backward: expected dtype f32, got f16 for tensor \[2, 3\]/);
  });
});

// The broadcast path merges axes (collapseBroadcast) before indexing; these
// shapes merge to 1-4 axes in different ways. Reference: plain float64
// NumPy-style broadcasting in TS. Tolerance: exact up to f32 rounding of
// x - y. In f16, exact: the ramp's values (k/7 − 1.5, |·| ≥ 1/14) rounded
// to f16 have bits from 2^0 to 2^-14 only, so their difference is exact in
// f32, and the kernel's one rounding on store is roundF16 of it.
describe("binary broadcasting vs a plain reference", () => {
  const ramp = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => (((i + 1) * (seed * 7 + 13)) % 23) / 7 - 1.5);
  function reference(a: ArrayLike<number>, as: number[], b: ArrayLike<number>, bs: number[], out: number[]): Float64Array {
    const A = broadcastTo(a, as, out);
    const B = broadcastTo(b, bs, out);
    return A.map((x, i) => x - B[i]!);
  }
  const cases: [number[], number[], number[]][] = [
    [[2, 3, 4, 5, 6], [1, 3, 1, 1, 1], [2, 3, 4, 5, 6]], // [2, 3, 120] after merging
    [[4, 3, 2, 5], [2, 5], [4, 3, 2, 5]], // the trailing block repeats: [12, 10]
    [[4, 1, 5], [4, 5], [4, 4, 5]], // a middle broadcast axis on both sides
    [[4, 1, 5], [1, 4, 5], [4, 4, 5]],
    [[2, 1, 3], [1, 4, 1], [2, 4, 3]],
    [[1, 1, 7], [7], [1, 1, 7]], // equal up to extent-1 axes: the direct path
    [[3, 1, 1, 2, 1, 4], [1, 5, 6, 1, 1, 4], [3, 5, 6, 2, 1, 4]],
    // Inner extents of a multiple of 4 (vec4 loads): b splat along it, then both spanning it.
    [[2, 3, 8], [3, 1], [2, 3, 8]],
    [[4, 1, 8], [1, 3, 8], [4, 3, 8]],
    [[5], [3, 1, 5], [3, 1, 5]], // direct up to extent-1 axes, a partial last vec4
  ];
  forEachVariant(elementwiseVariants(profile), (v) => {
    for (const [as, bs, out] of cases) {
      it(`[${as}] - [${bs}] → [${out}]`, async () => {
        const a = ramp(size(as), 1);
        const b = ramp(size(bs), 2);
        const y = binary("sub", Tensor.from(a, as), Tensor.from(b, bs), v);
        expect(y.shape).toEqual(out);
        expect(relError(await y.readFloat32(), reference(a, as, b, bs, out))).toBeLessThanOrEqual(1e-6);
      });

      it.skipIf(noF16)(`f16: [${as}] - [${bs}] → [${out}]`, async () => {
        const a = ramp(size(as), 1);
        const b = ramp(size(bs), 2);
        const y = binary("sub", upload(a, as, "f16"), upload(b, bs, "f16"), v);
        expect(y.shape).toEqual(out);
        const want = reference(Array.from(a, roundF16), as, Array.from(b, roundF16), bs, out).map(roundF16);
        expect(Array.from(await values(y, "f16"))).toEqual(Array.from(want));
      });
    }
  });

  it("merges axes only where both inputs allow it", () => {
    // [2, 3, 4, 5] + [1, 3, 1, 1]: strides a (60, 20, 5, 1), b (0, 1, 0, 0).
    expect(collapseBroadcast([2, 3, 4, 5], [60, 20, 5, 1], [0, 1, 0, 0])).toEqual({ shape: [2, 3, 20], sa: [60, 20, 1], sb: [0, 1, 0] });
    // Extent-1 axes go; a full match is one axis.
    expect(collapseBroadcast([1, 6, 1, 7], [0, 7, 7, 1], [0, 7, 0, 1])).toEqual({ shape: [42], sa: [1], sb: [1] });
    // Two broadcast axes in a row merge too.
    expect(collapseBroadcast([5, 2, 3], [6, 3, 1], [0, 0, 1])).toEqual({ shape: [10, 3], sa: [3, 1], sb: [0, 1] });
  });
});
