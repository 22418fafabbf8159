// Fused attention against PyTorch goldens (tools/fixtures/gen_attention.py:
// explicit float64 softmax(q·kᵀ·scale)·v per head). Covers odd shapes, causal,
// Nq = 1, head dims 20/64/96/48/5 (vec4 and scalar paths), Nq ≫ Nk and
// Nq ≪ Nk, the 2-queries-per-lane launch (Nq > 64), dv ≠ dk and an explicit
// scale, and scores beyond f32 exp's range (> 89, all < -104) on the 8- and
// 32-lane launches, causal and with 2 queries per lane. Every case runs over
// every variant this device runs (attentionVariants: per-lane loads, and k/v
// rows shared across 4, 8, … lanes of a subgroup, up to its smallest size).
// Tolerance: max |err| ≤ 1e-3 · max |expected|.
import { describe, expect, it } from "vitest";
import { attention, attentionVariants } from "../../src/kernels/attention.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/attention");
const t = (a: { data: Float32Array | Int32Array; shape: number[] }) => Tensor.from(a.data as Float32Array, a.shape);

describe("attention vs PyTorch", () => {
  forEachVariant(attentionVariants(profile), (variant) => {
    for (const c of cases) {
      // Each head dim compiles its own pipeline: seconds of LLVM time on lavapipe.
      it(c.name, { timeout: 300_000 }, async () => {
        const opts = { numHeads: c.params.numHeads as number, causal: c.params.causal as boolean, scale: c.params.scale as number | undefined, variant };
        const y = attention(t(c.inputs.q!), t(c.inputs.k!), t(c.inputs.v!), opts);
        expect(y.shape).toEqual(c.outputs.y!.shape);
        expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-3);
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
