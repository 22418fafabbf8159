// Fused attention against PyTorch goldens (tools/fixtures/gen_attention.py:
// explicit float64 softmax(q·kᵀ·scale)·v per head). Covers odd shapes, causal,
// Nq = 1, head dims 20/64/96/48/5 (vec4 and scalar paths), Nq ≫ Nk and
// Nq ≪ Nk, the 2-queries-per-lane launch (Nq > 64), dv ≠ dk and an explicit
// scale. Tolerance: max |err| ≤ 1e-3 · max |expected|.
import { describe, expect, it } from "vitest";
import { attention } from "../../src/kernels/attention.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const cases = loadFixture("kernels/attention");
const t = (a: { data: Float32Array | Int32Array; shape: number[] }) => Tensor.from(a.data as Float32Array, a.shape);

describe("attention vs PyTorch", () => {
  for (const c of cases) {
    // Each head dim compiles its own pipeline: seconds of LLVM time on lavapipe.
    it(c.name, { timeout: 300_000 }, async () => {
      const opts = { numHeads: c.params.numHeads as number, causal: c.params.causal as boolean, scale: c.params.scale as number | undefined };
      const y = attention(t(c.inputs.q!), t(c.inputs.k!), t(c.inputs.v!), opts);
      expect(y.shape).toEqual(c.outputs.y!.shape);
      expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-3);
    });
  }

  it("matches without subgroups too (the per-lane-load variant)", { timeout: 300_000 }, async () => {
    const c = cases.find((x) => x.name.startsWith("causal_q37"))!;
    process.env.SEGVOL_NO_SUBGROUPS = "1";
    try {
      const y = attention(t(c.inputs.q!), t(c.inputs.k!), t(c.inputs.v!), { numHeads: 2, causal: true });
      expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(1e-3);
    } finally {
      delete process.env.SEGVOL_NO_SUBGROUPS;
    }
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
