// AdamW and SGD against torch.optim (tools/fixtures/gen_train_optim.py):
// three steps with changing learning rates and a parameter without a
// gradient on step 2; parameters must agree to 1e-6 absolute after every
// step. Resuming from state()/loadState() after step 2 must give the same
// step 3 as the uninterrupted run.
import { describe, expect, it } from "vitest";
import { AdamW, SGD, type Optimizer, type TrainParam } from "../../src/train/optim.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, type FixtureCase } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const cases = loadFixture("train/optim");
const NAMES = ["w", "b", "s"];

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function makeParams(c: FixtureCase): TrainParam[] {
  return NAMES.map((n) => {
    const init = c.inputs[`${n}.init`]!;
    return { name: n, value: Tensor.from(init.data as Float32Array, init.shape), grad: null };
  });
}

function makeOpt(c: FixtureCase, params: TrainParam[]): Optimizer {
  const p = c.params as Record<string, unknown>;
  if (p.kind === "adamw") {
    return new AdamW(params, { betas: p.betas as [number, number], eps: p.eps as number, weightDecay: p.weightDecay as number });
  }
  return new SGD(params, {
    momentum: p.momentum as number,
    nesterov: p.nesterov as boolean,
    dampening: p.dampening as number,
    weightDecay: p.weightDecay as number,
  });
}

function setGrads(c: FixtureCase, params: TrainParam[], step: number): void {
  for (const p of params) {
    p.grad?.dispose();
    const g = c.inputs[`${p.name}.grad${step}`];
    p.grad = g ? Tensor.from(g.data as Float32Array, g.shape) : null;
  }
}

async function expectStep(c: FixtureCase, params: TrainParam[], step: number): Promise<void> {
  for (const p of params) {
    const want = c.outputs[`${p.name}.step${step}`]!.data;
    expect(maxAbs(await p.value.readFloat32(), want), `${c.name} ${p.name} step ${step}`).toBeLessThanOrEqual(1e-6);
  }
}

describe("optimisers vs torch.optim", () => {
  for (const c of cases) {
    const lrs = c.params.lrs as number[];
    it(`${c.name}: three steps`, async () => {
      const params = makeParams(c);
      const opt = makeOpt(c, params);
      for (let s = 0; s < lrs.length; s++) {
        setGrads(c, params, s);
        opt.lr = lrs[s]!;
        opt.step();
        await expectStep(c, params, s);
      }
      opt.dispose();
    });

    it(`${c.name}: resume after two steps reproduces step 3`, async () => {
      const params = makeParams(c);
      const opt = makeOpt(c, params);
      for (let s = 0; s < 2; s++) {
        setGrads(c, params, s);
        opt.lr = lrs[s]!;
        opt.step();
      }
      const state = opt.state();
      if (c.params.kind === "adamw") {
        // "b" had no grad on step 2: its step count stays 1, as in torch.
        expect(state["w.step"]).toBe(2);
        expect(state["b.step"]).toBe(1);
      }
      const fresh = makeOpt(c, params);
      fresh.loadState(state);
      opt.dispose(); // the loaded state is a copy
      setGrads(c, params, 2);
      fresh.lr = lrs[2]!;
      fresh.step();
      await expectStep(c, params, 2);
      fresh.dispose();
    });
  }

  it("AdamW over many tensors (several multi-tensor batches, one parameter a step behind) matches a plain-TS AdamW", async () => {
    // Sizes cross the vec4 tail cases; 11 tensors make batches of 4, 4, 3 at 16 storage bindings.
    const sizes = [1, 3, 4, 5, 17, 64, 257, 1000, 2, 9, 4099];
    const lr = 0.02, wd = 0.1, eps = 1e-8;
    const x0 = sizes.map((n, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(i + k)));
    const grad = (k: number, t: number) => Float32Array.from({ length: sizes[k]! }, (_, i) => Math.cos(i * 0.3 + k + t));
    const params: TrainParam[] = sizes.map((n, k) => ({ name: `p${k}`, value: Tensor.from(x0[k]!, [n]), grad: null }));
    const opt = new AdamW(params, { lr, weightDecay: wd, eps });
    // Parameter 5 has no gradient on step 2, so on step 3 it takes its own step 2.
    const ref = x0.map((x) => ({ x: Float64Array.from(x), m: new Float64Array(x.length), v: new Float64Array(x.length), t: 0 }));
    for (let t = 1; t <= 3; t++) {
      params.forEach((p, k) => {
        p.grad?.dispose();
        p.grad = t === 2 && k === 5 ? null : Tensor.from(grad(k, t), [sizes[k]!]);
      });
      opt.step();
      ref.forEach((r, k) => {
        if (t === 2 && k === 5) return;
        const g = grad(k, t);
        r.t++;
        for (let i = 0; i < r.x.length; i++) {
          r.x[i] = r.x[i]! * (1 - lr * wd);
          r.m[i] = 0.9 * r.m[i]! + 0.1 * g[i]!;
          r.v[i] = 0.999 * r.v[i]! + 0.001 * g[i]! ** 2;
          r.x[i] = r.x[i]! - ((lr / (1 - 0.9 ** r.t)) * r.m[i]!) / (Math.sqrt(r.v[i]!) / Math.sqrt(1 - 0.999 ** r.t) + eps);
        }
      });
    }
    for (const [k, p] of params.entries()) expect(maxAbs(await p.value.readFloat32(), ref[k]!.x), p.name).toBeLessThanOrEqual(1e-6);
    for (const p of params) {
      p.grad?.dispose();
      p.value.dispose();
    }
    opt.dispose();
  });

  it("rejects bad input at the boundary", () => {
    const v = Tensor.zeros([4, 3]);
    expect(() => new AdamW([{ name: "a", value: v, grad: null }, { name: "a", value: v, grad: null }])).toThrow(/AdamW: parameter "a" is given twice/);
    expect(() => new AdamW([{ name: "a", value: v, grad: null }], { betas: [1, 0.9] })).toThrow(/AdamW: beta1 must be in \[0, 1\)/);
    expect(() => new SGD([{ name: "a", value: v, grad: null }], { nesterov: true })).toThrow(/SGD: Nesterov momentum needs momentum > 0/);
    const opt = new AdamW([{ name: "a", value: v, grad: Tensor.zeros([5]) }]);
    expect(() => opt.step()).toThrow(/AdamW.step: grad of "a" is \[5\] f32, the parameter is \[4, 3\] f32/);
    expect(() => opt.loadState({ "zz.step": 1 })).toThrow(/state key "zz.step" belongs to no parameter/);
    expect(() => opt.loadState({ "a.step": 1 })).toThrow(/state "a.exp_avg" is missing/);
  });
});
