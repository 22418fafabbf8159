// The tape itself: a composite graph against PyTorch (accumulation over a
// shared parameter, a shared intermediate and broadcasting), a finite-
// difference check, memory (every buffer freed), noGrad, retain, custom
// nodes and the errors at the boundary.
import { describe, expect, it } from "vitest";
import { binary, unary } from "../../src/kernels/elementwise.js";
import { backward, constant, customOp, detach, isRecording, noGrad, param, zeroGrad, type Var } from "../../src/autograd/autograd.js";
import * as ag from "../../src/autograd/ops.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { rnd } from "../helpers/random.js";

useGpu();

const live = () => gpu().pool.stats().buffers;


describe("composite graph vs PyTorch (tools/fixtures/gen_grad_mlp.py)", () => {
  const [c] = loadFixture("grad/mlp");

  /** The graph of gen_grad_mlp.py. */
  function mlp(p: Record<string, Var>, ids: Tensor, ids2: Tensor): Var {
    const h = ag.add(ag.gather(p.emb!, ids), p.pos!);
    const u = ag.linear(h, p.W1!, p.b1!, "gelu");
    const v = ag.linear(u, p.W2!, p.b2!);
    const r = ag.add(ag.mul(ag.add(v, h), p.scale!), p.shift!);
    const q = ag.mul(ag.sigmoid(r), ag.gather(p.emb!, ids2));
    const s = ag.relu(ag.matmul(h, p.W1!, { transB: true }));
    return ag.add(ag.add(ag.mean(q), ag.affine(ag.sum(s), 0.01, 0)), ag.mean(ag.square(r)));
  }

  it("gradients of every parameter match (1e-4), intermediates freed by backward, nothing leaks", async () => {
    const start = live();
    const names = ["emb", "pos", "W1", "b1", "W2", "b2", "scale", "shift"];
    const p: Record<string, Var> = {};
    for (const k of names) p[k] = param(Tensor.from(c!.inputs[k]!.data as Float32Array, c!.inputs[k]!.shape));
    const ids = Tensor.from(c!.inputs.ids!.data as Int32Array, c!.inputs.ids!.shape, "i32");
    const ids2 = Tensor.from(c!.inputs.ids2!.data as Int32Array, c!.inputs.ids2!.shape, "i32");
    const loss = mlp(p, ids, ids2);
    expect(loss.shape).toEqual([]);
    backward(loss);
    // Left alive: the 8 params, their 8 grads, the loss and the two id tensors.
    expect(live() - start).toBe(8 + 8 + 1 + 2);
    expect(relError(await loss.value.readFloat32(), c!.outputs.loss!.data)).toBeLessThanOrEqual(1e-4);
    for (const k of names) {
      expect(relError(await p[k]!.grad!.readFloat32(), c!.outputs[`d_${k}`]!.data), `d_${k}`).toBeLessThanOrEqual(1e-4);
    }
    // A second backward over a fresh forward accumulates: grads double.
    const loss2 = mlp(p, ids, ids2);
    backward(loss2);
    expect(relError(await p.W1!.grad!.readFloat32(), c!.outputs.d_W1!.data.map((x) => 2 * x))).toBeLessThanOrEqual(1e-4);
    zeroGrad(Object.values(p));
    expect(p.W1!.grad).toBeNull();
    for (const v of [...Object.values(p), loss, loss2]) v.dispose();
    ids.dispose();
    ids2.dispose();
    expect(live()).toBe(start);
  });

  it("a parameter and an intermediate used many times sum their gradients (pending lists folded past 8), after an earlier .grad", async () => {
    // loss = Σ_k sum(w·c_k) + Σ_k sum(h·d_k), h = w·w: w gets 12 direct
    // contributions plus one through h, which itself gets 10.
    const n = 37;
    const w = param(Tensor.from(rnd(n, 3), [n]));
    const cs = Array.from({ length: 12 }, (_, k) => constant(Tensor.from(rnd(n, 10 + k), [n])));
    const ds = Array.from({ length: 10 }, (_, k) => constant(Tensor.from(rnd(n, 40 + k), [n])));
    const forward = () => {
      const h = ag.mul(w, w);
      const terms = [...cs.map((c) => ag.sum(ag.mul(w, c))), ...ds.map((d) => ag.sum(ag.mul(h, d)))];
      return terms.reduce((a, b) => ag.add(a, b));
    };
    const before = live();
    for (let pass = 0; pass < 2; pass++) {
      const loss = forward();
      backward(loss);
      loss.dispose();
    }
    // d/dw = Σ c_k + 2w·Σ d_k per pass, twice.
    const wv = rnd(n, 3);
    const want = wv.map((x, i) => 2 * (cs.reduce((a, _, k) => a + rnd(n, 10 + k)[i]!, 0) + 2 * x * ds.reduce((a, _, k) => a + rnd(n, 40 + k)[i]!, 0)));
    expect(relError(await w.grad!.readFloat32(), want)).toBeLessThanOrEqual(1e-5);
    zeroGrad([w]);
    expect(live()).toBe(before);
    for (const v of [w, ...cs, ...ds]) v.dispose();
  });

  it("disposing the root without backward frees the whole graph", () => {
    const start = live();
    const p: Record<string, Var> = {};
    for (const k of ["emb", "pos", "W1", "b1", "W2", "b2", "scale", "shift"]) {
      p[k] = param(Tensor.from(c!.inputs[k]!.data as Float32Array, c!.inputs[k]!.shape));
    }
    const ids = Tensor.from(c!.inputs.ids!.data as Int32Array, c!.inputs.ids!.shape, "i32");
    const loss = mlp(p, ids, ids);
    loss.dispose();
    expect(live() - start).toBe(8 + 1);
    for (const v of Object.values(p)) v.dispose();
    ids.dispose();
    expect(live()).toBe(start);
  });
});

describe("finite differences", () => {
  it("a tiny composite's analytic gradient matches central differences", async () => {
    const x = param(Tensor.from(rnd(12, 1), [3, 4]));
    const w = param(Tensor.from(rnd(20, 2, 0.8), [5, 4]));
    const b = param(Tensor.from(rnd(5, 3, 0.3), [5]));
    const t = constant(Tensor.from(rnd(15, 4, 0.5).map(Math.abs), [3, 5]));
    // x is used twice, b broadcasts in linear and again in a plain add.
    const f = () =>
      ag.add(
        ag.mean(ag.square(ag.sub(ag.sigmoid(ag.linear(x, w, b, "gelu")), t))),
        ag.add(ag.mean(ag.mul(ag.exp(ag.affine(x, 0.5, 0)), x)), ag.sum(ag.mul(b, b))),
      );
    const loss = f();
    backward(loss);
    loss.dispose();
    const eps = 1e-2;
    for (const v of [x, w, b]) {
      const base = await v.value.readFloat32();
      const fd = new Float32Array(base.length);
      for (let i = 0; i < base.length; i++) {
        const at = async (d: number) => {
          const p = base.slice();
          p[i]! += d;
          v.value.write(p);
          const y = noGrad(f);
          const val = (await y.value.readFloat32())[0]!;
          y.dispose();
          return val;
        };
        fd[i] = ((await at(eps)) - (await at(-eps))) / (2 * eps);
      }
      v.value.write(base);
      // f32 central differences: O(eps²) truncation plus ~1e-6/eps rounding
      // (measured 2e-6 to 5e-5 relative to max |grad|).
      expect(relError(await v.grad!.readFloat32(), fd)).toBeLessThanOrEqual(5e-4);
    }
    for (const v of [x, w, b, t]) v.dispose();
  });
});

describe("tape mechanics", () => {
  it("noGrad records nothing, frees its intermediates and returns constants", async () => {
    const start = live();
    const w = param(Tensor.from(rnd(6, 5), [2, 3]));
    const y = noGrad(() => {
      expect(isRecording()).toBe(false);
      return ag.sum(ag.relu(ag.mul(w, w)));
    });
    expect(isRecording()).toBe(true);
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    // Only w and the result survive.
    expect(live() - start).toBe(2);
    expect(() => backward(y)).toThrow(/backward: loss \[\] does not require grad/);
    y.dispose();
    w.dispose();
    expect(live()).toBe(start);
  });

  it("retain() keeps an intermediate's value and gradient; others are freed", async () => {
    const a = param(Tensor.from([1, 2, 3], [3]));
    const h = ag.square(a).retain();
    const k = ag.affine(h, 3, 0);
    const loss = ag.sum(k);
    backward(loss);
    expect(Array.from(await h.value.readFloat32())).toEqual([1, 4, 9]);
    expect(Array.from(await h.grad!.readFloat32())).toEqual([3, 3, 3]);
    expect(Array.from(await a.grad!.readFloat32())).toEqual([6, 12, 18]);
    expect(k.value.disposed).toBe(true);
    expect(() => ag.relu(k)).toThrow(/relu: input Var \[3\] was freed/);
    for (const v of [a, h, loss]) v.dispose();
  });

  it("backward twice, a bad gradOut and a non-scalar loss fail clearly", () => {
    const a = param(Tensor.from([1, 2, 3], [3]));
    const y = ag.square(a);
    expect(() => backward(y)).toThrow(/backward: loss \[3\] has 3 elements; pass gradOut/);
    const g2 = Tensor.from([1, 1], [2]);
    expect(() => backward(y, g2)).toThrow(/backward: gradOut \[2\] f32 must be f32 of the loss's shape \[3\]/);
    const g3 = Tensor.from([1, 1, 1], [3]);
    backward(y, g3);
    expect(() => backward(y, g3)).toThrow(/backward: the graph through 'square' was already freed/);
    for (const t of [g2, g3]) t.dispose();
    for (const v of [a, y]) v.dispose();
  });

  it("custom nodes plug in: gradient, ownership checks, saved tensors freed", async () => {
    const start = live();
    const x = param(Tensor.from([1, -2, 3, -4], [4]));
    // y = x³ with a saved square, as a later backward kernel would register it.
    const sq = unary("square", x.value);
    const cube = customOp("cube", [x], binary("mul", sq, x.value), (g) => [binary("mul", g, unary("affine", sq, 3, 0))], [sq]);
    // An identity node returning gradOut itself: the driver takes a view of it.
    const same = customOp("identity", [x], x.value.reshape([4]), (g) => [g]);
    const loss = ag.add(ag.sum(cube), ag.sum(same));
    backward(loss);
    expect(Array.from(await x.grad!.readFloat32())).toEqual([4, 13, 28, 49]);
    expect(sq.disposed).toBe(true);
    for (const v of [x, loss, cube, same]) v.dispose();
    expect(live()).toBe(start);

    // A node returning a wrong-shaped gradient: named in the error, nothing leaks.
    const z = param(Tensor.from([1, 2], [2]));
    const bad = customOp("bad", [z], Tensor.from([0], [1]), () => [Tensor.zeros([3])]);
    const gs = Tensor.from([1], [1]);
    expect(() => backward(bad, gs)).toThrow(/backward: node 'bad' returned gradient \[3\] f32 for input 0 of shape \[2\]/);
    gs.dispose();
    bad.dispose();
    z.dispose();
    expect(live()).toBe(start);
  });

  it("detach stops gradients; constants get none", async () => {
    const a = param(Tensor.from([2, 3], [2]));
    const c = constant(Tensor.from([5, 7], [2]));
    const loss = ag.sum(ag.mul(ag.mul(a, detach(a)), c));
    backward(loss);
    expect(Array.from(await a.grad!.readFloat32())).toEqual([10, 21]);
    expect(c.grad).toBeNull();
    for (const v of [a, c, loss]) v.dispose();
  });

  it("ops reject non-Var inputs and report kernel shape errors", () => {
    const a = param(Tensor.zeros([3, 4]));
    const b = param(Tensor.zeros([5]));
    expect(() => ag.add(a, a.value as unknown as Var)).toThrow(/add: inputs must be Vars/);
    expect(() => ag.add(a, b)).toThrow(/add: shapes \[3, 4\] and \[5\] do not broadcast/);
    expect(() => ag.matmul(a, b)).toThrow(/matmul/);
    a.dispose();
    b.dispose();
  });
});
