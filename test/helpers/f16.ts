// Host model of f16 storage (IEEE binary16, round to nearest even) for the
// f16 kernel tests: what an f32 value becomes when a kernel stores it as f16.
// Node 20 has neither Math.f16round nor Float16Array.

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
