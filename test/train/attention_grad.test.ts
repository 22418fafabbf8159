// Gradients of attention, LayerNorm (row and whole-block forms, both kernel
// paths) and softmax against PyTorch float64 goldens
// (tools/fixtures/gen_grad_attention.py): each case runs the differentiable
// op on params, backward(y, gy), and compares y and every input gradient.
// Tolerance: max |err| ≤ 1e-4 · max |expected|, 1e-3 where a gradient sums
// ≥ 768 terms (LayerNorm rows of ≥ 768). Plus a central-difference check of
// the attention backward on the GPU forward itself, and boundary errors.
import { describe, expect, it } from "vitest";
import type { AttentionOptions } from "../../src/kernels/attention.js";
import { attention as attentionK, attentionBackward, attentionVariants } from "../../src/kernels/attention.js";
import { rowVariants, variantName, type VariantOverrides } from "../../src/kernels/profile.js";
import { layerNormBackward } from "../../src/kernels/layernorm.js";
import { softmaxBackward } from "../../src/kernels/softmax.js";
import { param, type Var } from "../../src/autograd/autograd.js";
import { attention, layerNorm, softmax } from "../../src/autograd/attention_ops.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError, type FixtureCase } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { expectGradients } from "../helpers/grads.js";
import { tested, testProfile, underForce } from "../helpers/variants.js";

useGpu();
const cases = loadFixture("grad/attention");
const profile = await testProfile();

/** The variants a case's op runs over, forced through the profile (the tape calls the kernels). */
function forcings(op: unknown): VariantOverrides[] {
  if (op === "attention") return tested(attentionVariants(profile)).map((attention) => ({ attention }));
  if (op === "layernorm") return tested(rowVariants(profile)).map((layerNorm) => ({ layerNorm }));
  return tested(rowVariants(profile)).map((softmax) => ({ softmax }));
}

function run(c: FixtureCase, v: Record<string, Var>): Var {
  const p = c.params;
  switch (p.op) {
    case "attention": {
      const opts: AttentionOptions = { numHeads: p.numHeads as number, causal: p.causal as boolean };
      if (p.scale !== undefined) opts.scale = p.scale as number;
      return attention(v.q!, v.k!, v.v!, opts);
    }
    case "layernorm":
      return layerNorm(v.x!, v.w!, v.b!, p.eps as number);
    case "softmax":
      return softmax(v.x!, p.axis as number);
    default:
      throw new Error(`unknown op ${String(p.op)}`);
  }
}

async function check(c: FixtureCase): Promise<void> {
  const vars: Record<string, Var> = {};
  for (const [k, a] of Object.entries(c.inputs)) {
    if (k !== "gy") vars[k] = param(Tensor.from(a.data as Float32Array, a.shape));
  }
  const y = run(c, vars);
  const tol = c.params.op === "layernorm" && (c.params.n as number) >= 768 ? 1e-3 : 1e-4;
  await expectGradients(c, y, Tensor.from(c.inputs.gy!.data as Float32Array, c.inputs.gy!.shape), vars, () => tol);
}

describe("attention / layerNorm / softmax gradients vs PyTorch", () => {
  for (const c of cases) {
    for (const force of forcings(c.params.op)) {
      const [[op, v]] = Object.entries(force) as [[string, object]];
      // Each variant compiles its own forward and backward pipelines per head dim: minutes of LLVM time on a loaded lavapipe.
      it(`${c.name} (${op} variant ${variantName(v)})`, { timeout: 600_000 }, () => underForce(force, async () => {
        const before = gpu().pool.stats().buffers;
        await check(c);
        await gpu().sync();
        // Everything the tape saved or made has gone back to the pool.
        expect(gpu().pool.stats().buffers).toBe(before);
      }));
    }
  }
});

describe("attention backward vs central differences", () => {
  it("matches (L(θ+h) − L(θ−h)) / 2h of the GPU forward on a tiny causal and a cross case", async () => {
    // L = Σ out·gy. float32 forward, h = 1e-2: truncation error O(h²) and
    // rounding error ~1e-7·|L|/h stay below 1e-3 of the largest gradient;
    // a wrong gradient term is O(1) of it.
    const rng = mulberry(7);
    for (const shape of [{ nq: 3, nk: 4, causal: false }, { nq: 4, nk: 4, causal: true }]) {
      const H = 2;
      const d = 4;
      const opts: AttentionOptions = { numHeads: H, causal: shape.causal };
      const host = {
        q: randArr(rng, shape.nq * H * d),
        k: randArr(rng, shape.nk * H * d),
        v: randArr(rng, shape.nk * H * d),
      };
      const gyH = randArr(rng, shape.nq * H * d);
      const shapes = { q: [1, shape.nq, H * d], k: [1, shape.nk, H * d], v: [1, shape.nk, H * d] };
      const loss = async (h: typeof host): Promise<number> => {
        const q = Tensor.from(h.q, shapes.q);
        const k = Tensor.from(h.k, shapes.k);
        const v = Tensor.from(h.v, shapes.v);
        const o = attentionK(q, k, v, opts);
        const out = await o.readFloat32();
        for (const t of [q, k, v, o]) t.dispose();
        let s = 0;
        for (let i = 0; i < out.length; i++) s += out[i]! * gyH[i]!;
        return s;
      };
      const q = Tensor.from(host.q, shapes.q);
      const k = Tensor.from(host.k, shapes.k);
      const v = Tensor.from(host.v, shapes.v);
      const out = attentionK(q, k, v, opts);
      const gy = Tensor.from(gyH, out.shape);
      const grads = attentionBackward(q, k, v, out, gy, opts);
      const analytic = { q: await grads.dq.readFloat32(), k: await grads.dk.readFloat32(), v: await grads.dv.readFloat32() };
      for (const t of [q, k, v, out, gy, grads.dq, grads.dk, grads.dv]) t.dispose();
      const h = 1e-2;
      for (const name of ["q", "k", "v"] as const) {
        const fd = new Float32Array(host[name].length);
        for (let i = 0; i < fd.length; i++) {
          const plus = { ...host, [name]: host[name].slice() };
          const minus = { ...host, [name]: host[name].slice() };
          plus[name][i]! += h;
          minus[name][i]! -= h;
          fd[i] = ((await loss(plus)) - (await loss(minus))) / (2 * h);
        }
        expect(relError(analytic[name], fd), `d${name} (${shape.causal ? "causal" : "cross"})`).toBeLessThanOrEqual(1e-3);
      }
    }
  });
});

describe("backward kernels: boundary errors", () => {
  it("names the op and the shapes", () => {
    const q = Tensor.zeros([1, 3, 8]);
    const k = Tensor.zeros([1, 4, 8]);
    const o = Tensor.zeros([1, 3, 8]);
    const bad = Tensor.zeros([1, 2, 8]);
    expect(() => attentionBackward(q, k, k, o, bad, { numHeads: 2 })).toThrow(/attentionBackward: out and dOut must be \[1, 3, 8\].*dOut \[1, 2, 8\]/);
    expect(() => attentionBackward(q, k, k, o, o, { numHeads: 3 })).toThrow(/attentionBackward: 3 heads do not divide/);
    expect(() => attentionBackward(q, k, k, o, o, { numHeads: 2, causal: true })).toThrow(/attentionBackward: causal attention needs Nq = Nk/);
    const x = Tensor.zeros([2, 5, 6]);
    const w = Tensor.zeros([5, 7]);
    expect(() => layerNormBackward(x, w, x)).toThrow(/layerNormBackward: weight shape must equal the trailing dims of x: x \[2, 5, 6\], weight \[5, 7\]/);
    const w6 = Tensor.zeros([6]);
    const dy = Tensor.zeros([2, 5]);
    expect(() => layerNormBackward(x, w6, dy)).toThrow(/layerNormBackward: dy must have the shape of x/);
    expect(() => softmaxBackward(x, o)).toThrow(/softmaxBackward: y \[2, 5, 6\] and dy \[1, 3, 8\] differ in shape/);
    expect(() => softmaxBackward(x, x, 3)).toThrow(/softmaxBackward: axis 3 is out of range for rank 3/);
    for (const t of [q, k, o, bad, x, w, w6, dy]) t.dispose();
  });
});

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randArr(rng: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * rng() - 1);
}
