// udiv (src/kernels/udiv.ts): u32 division by a run-time divisor through a
// multiplier and shifts, which the broadcast index math relies on. Checked
// on the device, exactly, against BigInt division, over divisors at and
// around powers of two, the model's extents, and the extremes of u32, each
// with numerators at and around its multiples and at both ends of u32.
import { describe, expect, it } from "vitest";
import { divisor, UDIV_WGSL } from "../../src/kernels/udiv.js";
import { useGpu } from "../helpers/gpu.js";
import { runWordKernel, type WordKernel } from "../helpers/word_kernel.js";

useGpu();

/** out[i] = udiv(n[i], magic[i], shift[i]): one (n, magic, shift) triple an invocation. */
const UDIV_KERNEL: WordKernel = { key: "test:udiv", wgsl: UDIV_WGSL, out: "u32", expr: "udiv(x.x, x.y, x.z)" };

const U32_MAX = 2 ** 32 - 1;

/** Divisors: small, powers of two and their neighbours, the model's extents, large and the largest. */
function divisors(): number[] {
  const ds = new Set<number>([1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 96, 192, 384, 641, 768, 3072, 6700417, 2 ** 31 + 1, U32_MAX]);
  for (let k = 1; k < 32; k++) for (const d of [2 ** k - 1, 2 ** k, 2 ** k + 1]) ds.add(d);
  return [...ds].filter((d) => d >= 1 && d <= U32_MAX);
}

/** Numerators for d: 0, 1, around its first multiples and around the largest multiples in u32, and u32's top. */
function numerators(d: number, rand: () => number): number[] {
  const ns = [0, 1, 2, U32_MAX, U32_MAX - 1, 2 ** 31, 2 ** 31 - 1];
  for (const q of [1, 2, 3, 1000, Math.floor(U32_MAX / d)]) for (const off of [-1, 0, 1]) ns.push(q * d + off);
  for (let i = 0; i < 8; i++) ns.push(Math.floor(rand() * 2 ** 32));
  return ns.filter((n) => n >= 0 && n <= U32_MAX);
}

/** A seeded generator (mulberry32): the same numerators on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe("udiv", () => {
  it("divides exactly, on the device, for every u32 numerator class and divisor tried", async () => {
    const rand = seeded(1);
    const pairs = divisors().flatMap((d) => numerators(d, rand).map((n) => [n, d] as const));
    const args = new Uint32Array(pairs.length * 4);
    pairs.forEach(([n, d], i) => {
      const { magic, shift } = divisor(d);
      args.set([n, magic, shift, 0], 4 * i);
    });
    const got = await runWordKernel(UDIV_KERNEL, args);
    const wrong = pairs.map(([n, d], i) => ({ n, d, want: Math.floor(n / d), got: got[i]! })).filter((r) => r.got !== r.want);
    expect(pairs.length).toBeGreaterThan(2000);
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it("computes the multiplier of Granlund and Montgomery, and refuses divisors outside [1, 2^32)", () => {
    expect(divisor(1)).toEqual({ magic: 1, shift: 0 });
    expect(divisor(2)).toEqual({ magic: 1, shift: 1 });
    // l = 2, m = ⌊2^32·(4 − 3)/3⌋ + 1.
    expect(divisor(3)).toEqual({ magic: Math.floor(2 ** 32 / 3) + 1, shift: 2 });
    // l = 10, m = ⌊2^32·(1024 − 768)/768⌋ + 1.
    expect(divisor(768)).toEqual({ magic: Math.floor(2 ** 32 / 3) + 1, shift: 10 });
    for (const bad of [0, -1, 1.5, 2 ** 32, Number.NaN]) expect(() => divisor(bad)).toThrow(/divisor: expected a whole number in \[1, 2\^32\)/);
  });
});
