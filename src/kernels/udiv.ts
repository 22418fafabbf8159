// Division of u32 indices by a divisor known only when the kernel runs (a
// uniform), without WGSL's integer `/` and `%`: lavapipe has no vector
// integer divide and runs one scalar division per lane, which made the
// index math of a broadcast add cost more than its memory traffic.
// Granlund & Montgomery (1994), "Division by invariant integers using
// multiplication", Figure 4.1: with l = ⌈log2 d⌉ and
// m = ⌊2^32·(2^l − d)/d⌋ + 1 (which fits in 32 bits), every 32-bit n has
//   t = mulhi(m, n),  n / d = (t + ((n − t) >> 1)) >> (l − 1),
// where for d = 1 (l = 0) both shifts are 0 (then m = 1 and t = 0).

/** The multiplier and shift with which `udiv` divides by d (a whole number in [1, 2^32)). */
export interface Divisor {
  magic: number;
  shift: number;
}

export function divisor(d: number): Divisor {
  if (!Number.isInteger(d) || d < 1 || d >= 2 ** 32) throw new RangeError(`divisor: expected a whole number in [1, 2^32), got ${d}`);
  let shift = 0;
  while (2 ** shift < d) shift++;
  const magic = (2n ** 32n * (2n ** BigInt(shift) - BigInt(d))) / BigInt(d) + 1n;
  return { magic: Number(magic), shift };
}

/** WGSL: `udiv(n, magic, shift)` = n / d for divisor(d), and the 32×32 → high 32 bits product it needs. */
export const UDIV_WGSL = /* wgsl */ `
fn mulhi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  // Bits 16-47 of the product: the carries out of the low half.
  let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}
fn udiv(n: u32, magic: u32, shift: u32) -> u32 {
  let t = mulhi(n, magic);
  return (t + ((n - t) >> min(shift, 1u))) >> (max(shift, 1u) - 1u);
}
`;

/**
 * WGSL: one step of splitting a flat index `rem` into coordinates over
 * merged axes held in the uniform block as vec4-packed arrays `p.shape`,
 * `p.magic` and `p.shift` (divisorWords): axis d's coordinate `c{d}`, and
 * `rem` becomes the index over the axes outside it.
 */
export function axisStepWgsl(d: number): string {
  const at = `[${d >> 2}][${d & 3}]`;
  return `let q${d} = udiv(rem, p.magic${at}, p.shift${at}); let c${d} = rem - q${d} * p.shape${at}; rem = q${d};`;
}

/** The uniform words `p.magic` then `p.shift` for extents `shape`, each padded to `rank` entries (unused axes divide by 1). */
export function divisorWords(shape: readonly number[], rank: number): number[] {
  const ds = [...shape, ...new Array<number>(Math.max(0, rank - shape.length)).fill(1)].map(divisor);
  return [...ds.map((d) => d.magic), ...ds.map((d) => d.shift)];
}
