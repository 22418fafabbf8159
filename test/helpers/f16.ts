// Host model of f16 storage (IEEE binary16, round to nearest even) for the
// f16 kernel tests: what an f32 value becomes when a kernel stores it as f16.
// Node 20 has neither Math.f16round nor Float16Array.
//
// Running a kernel golden at f16 (src/kernels/precision.ts): the fixture's
// f32 input is uploaded and rounded to f16 on the device (cast rounds to
// nearest even, as PyTorch's .half() does for the `*_f16in` references),
// and an f16 result is read back through a cast to f32, which is exact.
import { describe, it, type TestContext } from "vitest";
import { cast } from "../../src/kernels/layout.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import type { FixtureArray, FixtureCase } from "./fixtures.js";
import { forEachVariant } from "./variants.js";

/** f16's unit roundoff: rounding to nearest changes a normal value by at most 2^-11 of itself. */
export const F16_UNIT = 2 ** -11;

/** Half the spacing of f16's subnormals: rounding's absolute error below 2^-14. */
export const F16_SUBNORMAL_HALF_STEP = 2 ** -25;

/** The f16 value nearest x (ties to even), as a number; ±Infinity past the largest finite f16 (65504). */
export function roundF16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  // Spacing of f16 values around a: 2^(e − 10) for normals, 2^-24 for subnormals.
  let e = Math.max(Math.floor(Math.log2(a)), -14);
  if (e > -14 && 2 ** e > a) e--;
  const q = 2 ** (e - 10);
  const m = a / q;
  let r = Math.floor(m);
  const frac = m - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  const y = r * q;
  return Math.sign(x) * (y > 65504 ? Infinity : y);
}

/** Every element rounded to f16, as f32 values (an f16 tensor's contents, read back through cast). */
export function roundF16All(x: ArrayLike<number>): Float32Array {
  return Float32Array.from(x, roundF16);
}

/** The precisions each golden runs at. */
export const PRECISIONS = ["f32", "f16"] as const;
export type TestPrecision = (typeof PRECISIONS)[number];

/**
 * Tolerance of an f16 kernel against a float64 reference computed on the
 * f16-rounded inputs, as max |err| / max |expected|: the kernel computes in
 * f32 (within the f32 goldens' 1e-4) and rounds each result once to f16,
 * an error of at most half a unit in the last place, 2^-11 · |y| (unit
 * roundoff; subnormals only round results below 2^-14, far below the
 * outputs' scale here).
 */
export const F16_TOL = F16_UNIT + 1e-4;

/** A fixture array as a tensor of dtype `p` (rounded on the device for f16). */
export function fixtureTensor(a: FixtureArray, p: TestPrecision): Tensor {
  const x = Tensor.from(a.data as Float32Array, a.shape);
  if (p === "f32") return x;
  const h = cast(x, "f16");
  x.dispose();
  return h;
}

/** Reads a tensor of dtype `p` back as f32, checking its dtype. */
export async function readAs(t: Tensor, p: TestPrecision): Promise<Float32Array> {
  if (t.dtype !== p) throw new Error(`expected a ${p} result, got ${t.dtype}`);
  if (p === "f32") return t.readFloat32();
  const f = cast(t, "f32");
  try {
    return await f.readFloat32();
  } finally {
    f.dispose();
  }
}

/** Skips an f16 case visibly where the adapter lacks shader-f16. */
export function skipWithoutF16(ctx: TestContext, p: TestPrecision): void {
  ctx.skip(p === "f16" && !gpu().hasF16, "the adapter lacks shader-f16");
}

/** An f16 tensor of `data` rounded to nearest: fixtureTensor for arrays a test makes. */
export function f16From(data: Float32Array, shape: readonly number[]): Tensor {
  return fixtureTensor({ data, shape: [...shape] }, "f16");
}

/** max over i of |actual_i − expected_i| / bound_i: at most 1 when every element lies within its own bound (NaN counts as Infinity). */
export function boundRatio(actual: ArrayLike<number>, expected: ArrayLike<number>, bound: ArrayLike<number>): number {
  if (actual.length !== expected.length || bound.length !== expected.length) {
    throw new Error(`length mismatch: ${actual.length} actual, ${expected.length} expected, ${bound.length} bounds`);
  }
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const r = Math.abs(actual[i]! - expected[i]!) / bound[i]!;
    if (!(r <= worst)) worst = Number.isNaN(r) ? Infinity : r;
  }
  return worst;
}

/** max |x_i| (0 for no values): the scale a relative tolerance multiplies. */
export function maxAbs(xs: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]!));
  return m;
}

/**
 * Tolerance of an f16 kernel against the f32 golden y (max |err| / max |y|)
 * where no reference on the rounded inputs exists: a sum of K products x·w
 * of f16 inputs (plus an f16 bias), accumulated in f32 and rounded once,
 * u = 2^-11:
 * - the output's rounding: at most u·max |y|;
 * - the bias's rounding: at most u·max |b|;
 * - the inputs' rounding: a product x̃·w̃ = x·w·(1 + δx + δw), |δ| ≤ u. The
 *   δ are independent, mean zero, variance u²/3, so an output's error has
 *   standard deviation σ = u·√(2/3 · Σ (x·w)²) ≤ u·√(2K/3)·max |x|·max |w|:
 *   it grows like √K with the reduction length (the worst case, 2u·K·max
 *   |x·w|, is linear, but random roundings do not line up). We allow 4σ
 *   (the largest of up to ~10^5 outputs stays below ~4.5σ; these goldens
 *   have far fewer);
 * - f32 accumulation: about K·2^-24 relative, negligible.
 */
export function f16Tolerance(K: number, x: ArrayLike<number>, w: ArrayLike<number>, y: ArrayLike<number>, bias?: ArrayLike<number>): number {
  const my = maxAbs(y);
  const inputs = 4 * Math.sqrt((2 / 3) * K) * maxAbs(x) * maxAbs(w);
  return (F16_UNIT * (my + (bias ? maxAbs(bias) : 0) + inputs)) / my;
}

/**
 * The kernel goldens' grid: one test per variant (forEachVariant), per
 * precision and per case, titled `variant … > f32|f16 > case`; the f16 ones
 * skip, visibly, where the adapter lacks shader-f16.
 */
export function forEachGolden<V extends object>(variants: readonly V[], cases: readonly FixtureCase[], body: (c: FixtureCase, variant: V, p: TestPrecision) => Promise<void>): void {
  forEachVariant(variants, (variant) => {
    for (const p of PRECISIONS) {
      describe(p, () => {
        for (const c of cases) {
          it(c.name, async (ctx) => {
            skipWithoutF16(ctx, p);
            await body(c, variant, p);
          });
        }
      });
    }
  });
}
