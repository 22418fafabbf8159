// Fused attention against PyTorch goldens (tools/fixtures/gen_attention.py:
// explicit float64 softmax(q·kᵀ·scale)·v per head). Covers odd shapes, causal,
// Nq = 1, head dims 20/64/96/48/5 (vec4 and scalar paths), Nq ≫ Nk and
// Nq ≪ Nk, the 2-queries-per-lane launch (Nq > 64), dv ≠ dk and an explicit
// scale, and scores beyond f32 exp's range (> 89, all < -104) on the 8- and
// 32-lane launches, causal and with 2 queries per lane. Every case runs over
// every variant this device runs (attentionVariants: per-lane loads, and k/v
// rows shared across 4, 8, … lanes of a subgroup, up to its smallest size).
// Tolerance: max |err| ≤ 1e-3 · max |expected|. Every case runs in f16 too
// (q, k, v rounded to f16, output f16) against the same f32 golden, with a
// bound per element derived below (f16Bound); and f16 cases whose scores
// or running sums f16 itself could not hold show that those stay f32.
import { describe, expect, it } from "vitest";
import { attention, attentionBackward, attentionVariants } from "../../src/kernels/attention.js";
import type { AttentionVariant } from "../../src/kernels/profile.js";
import { ShapeError } from "../../src/kernels/check.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { F16_UNIT, boundRatio, f16From, fixtureTensor, maxAbs, readAs } from "../helpers/f16.js";
import { loadFixture, relError, type FixtureArray, type FixtureCase } from "../helpers/fixtures.js";
import { onDevice, useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
/** f16 cases need the adapter's shader-f16 (lavapipe has it). */
const noF16 = !profile.f16;
const cases = loadFixture("kernels/attention");
const t = (a: FixtureArray) => fixtureTensor(a, "f32");
const half = (a: FixtureArray) => fixtureTensor(a, "f16");
/** The f32 tolerance, relative to max |expected|. */
const TOL32 = 1e-3;

/** A case's sizes: q [B, Nq, H·dk], k [B, Nk, H·dk], v [B, Nk, H·dv], and its score scale. */
function dims(c: FixtureCase) {
  const [B, Nq, Fk] = c.inputs.q!.shape as [number, number, number];
  const [Nk, Fv] = c.inputs.v!.shape.slice(1) as [number, number];
  const H = c.params.numHeads as number;
  const dk = Fk / H;
  return { B, Nq, Nk, H, dk, dv: Fv / H, Fk, Fv, scale: (c.params.scale as number | undefined) ?? 1 / Math.sqrt(dk) };
}

/**
 * The f16 bound of each output element of a case, against its f32 golden y.
 * Rounding to f16 moves a value by at most u = 2^-11 of itself. A score
 * s_ij = scale·q_i·k_j then moves by at most δ_i = (2u + u²)·scale·max_j Σ|q_i∘k_j|
 * (grows with the head dim), which scales each softmax weight p_ij by a
 * factor within e^±2δ_i: Σ_j p_ij·v_j moves by at most (e^{2δ_i} − 1)·V,
 * V = max |v| over the head's keys; rounding v moves it by at most u·V;
 * the f32 arithmetic is within the f32 tolerance; rounding the output adds
 * u·|y| (and u times the error before it). So
 *   |y16 − y| ≤ u·|y| + (1 + u)·(u + e^{2δ_i} − 1)·V + tol32·max |y|.
 * The cases with scores near 100 get δ near 0.1: that much of an f16
 * input's rounding reaches their softmax.
 */
function f16Bound(c: FixtureCase): Float64Array {
  const { B, Nq, Nk, H, dk, dv, Fk, Fv, scale } = dims(c);
  const [q, k, v, y] = [c.inputs.q!.data, c.inputs.k!.data, c.inputs.v!.data, c.outputs.y!.data];
  const u = F16_UNIT;
  const floor = TOL32 * maxAbs(y);
  const bound = new Float64Array(y.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      let V = 0;
      for (let j = 0; j < Nk; j++) for (let f = 0; f < dv; f++) V = Math.max(V, Math.abs(v[(b * Nk + j) * Fv + h * dv + f]!));
      for (let i = 0; i < Nq; i++) {
        let qk = 0;
        for (let j = 0; j < Nk; j++) {
          let sum = 0;
          for (let f = 0; f < dk; f++) sum += Math.abs(q[(b * Nq + i) * Fk + h * dk + f]! * k[(b * Nk + j) * Fk + h * dk + f]!);
          qk = Math.max(qk, sum);
        }
        const delta = (2 * u + u * u) * scale * qk;
        for (let f = 0; f < dv; f++) {
          const o = (b * Nq + i) * Fv + h * dv + f;
          bound[o] = u * Math.abs(y[o]!) + (1 + u) * (u + Math.expm1(2 * delta)) * V + floor;
        }
      }
    }
  }
  return bound;
}

const caseOptions = (c: FixtureCase, variant: AttentionVariant) => ({
  numHeads: c.params.numHeads as number,
  causal: c.params.causal as boolean,
  scale: c.params.scale as number | undefined,
  variant,
});

describe("attention vs PyTorch", () => {
  forEachVariant(attentionVariants(profile), (variant) => {
    for (const c of cases) {
      // Each head dim compiles its own pipeline: seconds of LLVM time on lavapipe.
      it(c.name, { timeout: 300_000 }, async () => {
        const y = attention(t(c.inputs.q!), t(c.inputs.k!), t(c.inputs.v!), caseOptions(c, variant));
        expect(y.shape).toEqual(c.outputs.y!.shape);
        expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(TOL32);
      });
    }
  });

  it("has scores beyond f32 exp's range: a score > 89, and a query whose scores are all < -104", () => {
    let large = false;
    let allNegative = false;
    for (const c of cases) {
      const [B, Nq, F] = c.inputs.q!.shape as [number, number, number];
      const Nk = c.inputs.k!.shape[1]!;
      const H = c.params.numHeads as number;
      const d = F / H;
      const scale = (c.params.scale as number | undefined) ?? 1 / Math.sqrt(d);
      const q = c.inputs.q!.data;
      const k = c.inputs.k!.data;
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Nq; i++) {
        let max = -Infinity;
        for (let j = 0; j < (c.params.causal ? i + 1 : Nk); j++) {
          let s = 0;
          for (let f = 0; f < d; f++) s += q[(b * Nq + i) * F + h * d + f]! * k[(b * Nk + j) * F + h * d + f]!;
          max = Math.max(max, s * scale);
        }
        large ||= max > 89;
        allNegative ||= max < -104;
      }
    }
    expect(large).toBe(true);
    expect(allNegative).toBe(true);
  });

  it("rejects bad shapes and options, naming op and shapes", () => {
    const q = Tensor.zeros([2, 5, 12]);
    const k = Tensor.zeros([2, 7, 12]);
    const v = Tensor.zeros([2, 7, 12]);
    expect(() => attention(q, k, v, { numHeads: 5 })).toThrow(/attention: 5 heads do not divide the feature sizes: q \[2, 5, 12\]/);
    expect(() => attention(q, Tensor.zeros([1, 7, 12]), v, { numHeads: 3 })).toThrow(/attention: batch sizes differ: q \[2, 5, 12\], k \[1, 7, 12\]/);
    expect(() => attention(q, k, Tensor.zeros([2, 6, 12]), { numHeads: 3 })).toThrow(
      /attention: k and v have different lengths \(Nk 7 vs 6\): q \[2, 5, 12\], k \[2, 7, 12\], v \[2, 6, 12\]/,
    );
    expect(() => attention(q, k, v, { numHeads: 3, causal: true })).toThrow(/attention: causal attention needs Nq = Nk, got Nq 5, Nk 7/);
    expect(() => attention(q, Tensor.zeros([2, 7, 8]), v, { numHeads: 2 })).toThrow(/attention: q and k feature sizes differ \(12 vs 8\)/);
    expect(() => attention(q.reshape([10, 12]), k, v, { numHeads: 3 })).toThrow(/attention: q must have rank 3, got \[10, 12\]/);
  });
});

describe("f16 attention vs the f32 PyTorch goldens", () => {
  forEachVariant(attentionVariants(profile), (variant) => {
    for (const c of cases) {
      it.skipIf(noF16)(c.name, { timeout: 300_000 }, async () => {
        const [q, k, v] = [half(c.inputs.q!), half(c.inputs.k!), half(c.inputs.v!)];
        const y = attention(q, k, v, caseOptions(c, variant));
        expect(y.dtype).toBe("f16");
        expect(y.shape).toEqual(c.outputs.y!.shape);
        expect(boundRatio(await readAs(y, "f16"), c.outputs.y!.data, f16Bound(c))).toBeLessThanOrEqual(1);
        for (const x of [q, k, v, y]) x.dispose();
      });
    }
  });
});

/** Float64 softmax(scale·q·kᵀ)·v of one head (H = 1): q [Nq, d], k [Nk, d], v [Nk, dv], row-major. */
function referenceAttention(q: Float32Array, k: Float32Array, v: Float32Array, Nq: number, Nk: number, d: number, dv: number, scale: number): Float64Array {
  const out = new Float64Array(Nq * dv);
  for (let i = 0; i < Nq; i++) {
    const s = Array.from({ length: Nk }, (_, j) => {
      let dot = 0;
      for (let f = 0; f < d; f++) dot += q[i * d + f]! * k[j * d + f]!;
      return scale * dot;
    });
    const max = Math.max(...s);
    const e = s.map((x) => Math.exp(x - max));
    const sum = e.reduce((x, y) => x + y, 0);
    for (let j = 0; j < Nk; j++) for (let f = 0; f < dv; f++) out[i * dv + f] += (e[j]! / sum) * v[j * dv + f]!;
  }
  return out;
}

/**
 * f16 q, k, v (values f16 holds exactly, so only the output's rounding, u
 * relative, and f32 arithmetic separate the kernel from a float64
 * reference): tolerance TOL32 + u relative to max |expected|.
 */
async function checkF16Attention(q: Float32Array, k: Float32Array, v: Float32Array, Nq: number, Nk: number, d: number, scale: number, variant: AttentionVariant): Promise<void> {
  const [q16, k16, v16] = [f16From(q, [1, Nq, d]), f16From(k, [1, Nk, d]), f16From(v, [1, Nk, d])];
  for (const [x, x16] of [[q, q16], [k, k16], [v, v16]] as const) expect(Array.from(await readAs(x16, "f16"))).toEqual(Array.from(x));
  const y = attention(q16, k16, v16, { numHeads: 1, scale, variant });
  expect(relError(await readAs(y, "f16"), referenceAttention(q, k, v, Nq, Nk, d, d, scale))).toBeLessThanOrEqual(TOL32 + F16_UNIT);
  for (const x of [q16, k16, v16, y]) x.dispose();
}

// f16 is storage only: scores, the running max and sum, exp2 and the
// output sums are f32. These inputs are f16 but their scores and sums are
// not: each case fails if that part of the kernel were kept in f16.
describe("f16 attention computes in f32", () => forEachVariant(attentionVariants(profile), (variant) => {
  it.skipIf(noF16)("scores f16 cannot hold: q·k ≈ 2.6e5 (past f16's 65504), scale·q·k ≈ 4100 (f16 steps by 4 there; exp overflows past 89)", async () => {
    // q_i = 256 + i/4, k_jf = 256 + m_jf/4 with m_jf in 0..3 (f16 steps by
    // 1/4 between 256 and 512): scale 1/64 spreads the scores 4096 + 4i + Σ_f m_jf
    // over about 12 units, a softmax that is neither flat nor one-hot. An
    // f16 q·k overflows; an f16 scaled score (the kernel folds scale·log2 e
    // into q) loses the unit steps between keys.
    const [Nq, Nk, d] = [3, 9, 4];
    const q = Float32Array.from({ length: Nq * d }, (_, x) => 256 + Math.floor(x / d) / 4);
    const k = Float32Array.from({ length: Nk * d }, (_, x) => 256 + ((Math.floor(x / d) * ((x % d) + 1)) % 4) / 4);
    const v = Float32Array.from({ length: Nk * d }, (_, x) => ((x * 5) % 16) / 8 - 1);
    await checkF16Attention(q, k, v, Nq, Nk, d, 1 / 64, variant);
  });

  it.skipIf(noF16)("a running sum past f16's exact integers: 3000 equal scores (an f16 sum of ones stops at 2048)", async () => {
    // q = 0: every score is 0, every weight exp(0) = 1, the output the mean of v.
    const [Nq, Nk, d] = [2, 3000, 4];
    const q = new Float32Array(Nq * d);
    const k = Float32Array.from({ length: Nk * d }, (_, x) => (x % 7) - 3);
    const v = Float32Array.from({ length: Nk * d }, (_, x) => ((Math.floor(x / d) + (x % d)) % 8) / 8);
    await checkF16Attention(q, k, v, Nq, Nk, d, 0.5, variant);
  });
}));

describe("attention precision errors", () => {
  it.skipIf(noF16)("refuses inputs that mix f32 and f16", () => {
    const q16 = f16From(new Float32Array(2 * 5 * 12), [2, 5, 12]);
    const k = Tensor.zeros([2, 7, 12]);
    const v = Tensor.zeros([2, 7, 12]);
    expect(() => attention(q16, k, v, { numHeads: 3 })).toThrow(ShapeError);
    expect(() => attention(q16, k, v, { numHeads: 3 })).toThrow(/attention: inputs mix f16 and f32: cast them to one precision first/);
    expect(() => attention(k, k, f16From(new Float32Array(2 * 7 * 12), [2, 7, 12]), { numHeads: 3 })).toThrow(/attention: inputs mix f32 and f16/);
  });

  it.skipIf(noF16)("refuses f16 in the backward, which runs in f32 only", () => {
    const x = f16From(new Float32Array(2 * 5 * 12), [2, 5, 12]);
    expect(() => attentionBackward(x, x, x, x, x, { numHeads: 3 })).toThrow(ShapeError);
    expect(() => attentionBackward(x, x, x, x, x, { numHeads: 3 })).toThrow(
      /attentionBackward: f16 tensors have no backward \(training runs in f32\): cast q, k, v, out and dOut to f32 \(q \[2, 5, 12\]/,
    );
  });

  it("refuses f16 on a device without shader-f16", async () => {
    await onDevice({ f16: false }, () => {
      expect(gpu().hasF16).toBe(false);
      // f16 bits uploaded as they are: no kernel needs to run to make them.
      const x = Tensor.from(new Uint16Array(2 * 5 * 12), [2, 5, 12], "f16");
      expect(() => attention(x, x, x, { numHeads: 3 })).toThrow(ShapeError);
      expect(() => attention(x, x, x, { numHeads: 3 })).toThrow(/attention: f16 tensors need the shader-f16 feature, which this device does not have/);
    });
  });
});
