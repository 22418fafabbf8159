// f16x4_load / f16x4_store (src/kernels/f16bits.ts), the integer f16 ↔ f32
// conversions of the columns kernels, checked exactly on the device: the
// widening of every one of the 65536 f16 bit patterns against a host
// decoder, and the narrowing of f32 values (random over f16's whole range,
// every tie between neighbouring f16 at each exponent, the subnormal and
// overflow boundaries, ±0, ±Inf, NaN) against roundF16, the host's
// round-to-nearest-even model (test/helpers/f16.ts).
import { describe, expect, it } from "vitest";
import { F16_BITS_WGSL } from "../../src/kernels/f16bits.js";
import { roundF16 } from "../helpers/f16.js";
import { useGpu } from "../helpers/gpu.js";
import { runWordKernel, type WordKernel } from "../helpers/word_kernel.js";

useGpu();

/** Mode 0: out[i] = f16x4_load(words[i]); mode 1: out[i] = f16x4_load(f16x4_store(xs[i])), the narrowing read back through the widening checked first. */
const F16_KERNEL: WordKernel = {
  key: "test:f16bits",
  wgsl: F16_BITS_WGSL,
  out: "vec4<f32>",
  expr: "f16x4_load(select(x.xy, f16x4_store(bitcast<vec4<f32>>(x)), p.mode == 1u))",
  mode: true,
};

/** Runs the test kernel over `words` (4 u32 an invocation) and returns its f32 outputs. */
async function run(mode: number, words: Uint32Array): Promise<Float32Array> {
  return new Float32Array((await runWordKernel(F16_KERNEL, words, mode)).buffer);
}

/** The f16 of bit pattern h, decoded on the host. */
function decodeF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 0x3ff;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
}

/** Indices where got and want differ (NaN matches NaN; -0 only -0). */
function mismatches(got: ArrayLike<number>, want: ArrayLike<number>): number[] {
  const bad: number[] = [];
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) bad.push(i);
  return bad;
}

describe("f16 bits", () => {
  it("widens every f16 bit pattern exactly", async () => {
    // Invocation i reads words 4i, 4i+1: f16 patterns 4i..4i+3 (the lower one in the low half).
    const words = new Uint32Array(65536);
    for (let h = 0; h < 65536; h += 2) words[(h >> 2) * 4 + ((h >> 1) & 1)] = h | ((h + 1) << 16);
    const got = await run(0, words);
    const want = Array.from({ length: 65536 }, (_, h) => decodeF16(h));
    expect(mismatches(got, want).slice(0, 5)).toEqual([]);
  });

  it("narrows f32 to the nearest f16, ties to even, with overflow to Inf and subnormals", async () => {
    const xs: number[] = [0, -0, Infinity, -Infinity, NaN, 65504, 65519.99, 65520, 65536, 1e30, 2 ** -14, 2 ** -14 * (1 - 2 ** -12), 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -26, 2 ** -26, 1e-30];
    // Every tie (an odd and an even lower neighbour) and its two neighbours, at each f16 exponent.
    for (let e = -24; e <= 15; e++) {
      const step = 2 ** Math.max(e - 10, -24);
      for (const m of [1024, 1025, 1500, 2046]) {
        const lo = (e >= -14 ? m : m - 1024) * step;
        for (const x of [lo + step / 2, lo + step / 2 + step / 8, lo + step / 2 - step / 8]) xs.push(x, -x);
      }
    }
    let s = 7;
    for (let i = 0; i < 4000; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      xs.push((s & 1 ? -1 : 1) * 2 ** ((s >>> 8) / 2 ** 24 * 46 - 28));
    }
    while (xs.length % 4) xs.push(1);
    const f = Float32Array.from(xs);
    const got = await run(1, new Uint32Array(f.buffer));
    const want = Array.from(f, (x) => roundF16(x));
    expect(mismatches(got, want).map((i) => [f[i], got[i], want[i]]).slice(0, 5)).toEqual([]);
  });
});
