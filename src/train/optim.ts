// Optimisers as fused GPU kernels: one dispatch per parameter tensor per step
// updates the parameter and its state in place, reading each value once as
// part of a vec4. The arithmetic follows torch.optim (1.13, single-tensor
// path) operation by operation, so a step matches PyTorch to float32
// rounding:
//  AdamW  p ← p·(1 − lr·wd); m ← lerp(m, g, 1 − β1); v ← β2·v + (1 − β2)·g²;
//         p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
//  SGD    d ← g + wd·p; b ← d (first step) or μ·b + (1 − dampening)·d;
//         d ← d + μ·b (Nesterov) or b; p ← p − lr·d
// Bias corrections are computed on the host in double precision, as Python
// does, and passed as f32 uniforms. A parameter whose grad is null is skipped
// and its step count does not advance (as torch skips `p.grad is None`).
// The fused kernels are in src/kernels/optim.ts; this file holds the state.
import { fail } from "../kernels/check.js";
import { adamwUpdate, sgdUpdate } from "../kernels/optim.js";
import { vec4Chunks, type Vec4Chunk } from "../kernels/vec4.js";
import { gpu } from "../tensor/device.js";
import { keep } from "../tensor/scope.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";

/** A parameter as the optimisers see it (an autograd `Var` fits). */
export interface TrainParam {
  name: string;
  value: Tensor;
  grad: Tensor | null;
}

export type OptimState = Record<string, Tensor | number>;

export interface Optimizer {
  /** The learning rate of the next step (set it from the schedule). */
  lr: number;
  readonly params: readonly TrainParam[];
  /** One update of every parameter that has a gradient. */
  step(): void;
  /** The state tensors (live references, read them before the next step) and step counts. */
  state(): OptimState;
  /** Replaces the state with copies of `s` (as returned by `state()`, e.g. from a checkpoint). */
  loadState(s: OptimState): void;
  dispose(): void;
}

function checkParams(op: string, params: readonly TrainParam[]): void {
  const seen = new Set<string>();
  for (const p of params) {
    if (seen.has(p.name)) fail(op, `parameter "${p.name}" is given twice`);
    seen.add(p.name);
    p.value.assertAlive(`${op} (${p.name})`);
    if (p.value.dtype !== "f32") fail(op, `parameter "${p.name}" ${shapeStr(p.value.shape)} is ${p.value.dtype}; only f32 parameters can be trained`);
  }
}

function checkGrad(op: string, p: TrainParam, grad: Tensor): void {
  grad.assertAlive(`${op} (grad of ${p.name})`);
  if (grad.dtype !== "f32" || grad.size !== p.value.size) {
    fail(op, `grad of "${p.name}" is ${shapeStr(grad.shape)} ${grad.dtype}, the parameter is ${shapeStr(p.value.shape)} f32`);
  }
}

function checkHyper(op: string, name: string, v: number, lo: number, hi: number, hiOpen = false): void {
  if (!(Number.isFinite(v) && v >= lo && (hiOpen ? v < hi : v <= hi))) {
    fail(op, `${name} must be in [${lo}, ${hi}${hiOpen ? ")" : "]"}, got ${v}`);
  }
}

/** A zero-filled f32 state tensor shaped like the parameter, kept out of scopes. */
function zerosLike(t: Tensor): Tensor {
  return keep(Tensor.zeros(t.shape));
}

/** A kept copy of `src` (loadState must not alias the caller's tensors). */
function copyOf(op: string, key: string, src: unknown, like: Tensor): Tensor {
  if (!(src instanceof Tensor)) fail(op, `state "${key}" is missing or not a tensor`);
  src.assertAlive(`${op} (${key})`);
  if (src.dtype !== "f32" || src.size !== like.size) {
    fail(op, `state "${key}" is ${shapeStr(src.shape)} ${src.dtype}, the parameter is ${shapeStr(like.shape)} f32`);
  }
  const t = keep(Tensor.empty(like.shape));
  if (t.byteLength > 0) gpu().copy(src.buffer, 0, t.buffer, 0, Math.ceil(t.byteLength / 4) * 4);
  return t;
}

function stepCount(op: string, key: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) fail(op, `state "${key}" must be a step count (integer ≥ 0), got ${String(v)}`);
  return v;
}

// ---------------------------------------------------------------- AdamW

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Decoupled weight decay (torch default 0.01). */
  weightDecay?: number;
}

export class AdamW implements Optimizer {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly params: readonly TrainParam[];
  private readonly slots = new Map<string, { m: Tensor; v: Tensor; step: number }>();

  constructor(params: readonly TrainParam[], opts: AdamWOptions = {}) {
    const op = "AdamW";
    checkParams(op, params);
    this.params = [...params];
    this.lr = opts.lr ?? 1e-3;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 1e-2;
    checkHyper(op, "lr", this.lr, 0, Infinity);
    checkHyper(op, "beta1", this.beta1, 0, 1, true);
    checkHyper(op, "beta2", this.beta2, 0, 1, true);
    checkHyper(op, "eps", this.eps, 0, Infinity);
    checkHyper(op, "weightDecay", this.weightDecay, 0, Infinity);
  }

  private slot(p: TrainParam) {
    let s = this.slots.get(p.name);
    if (!s) {
      s = { m: zerosLike(p.value), v: zerosLike(p.value), step: 0 };
      this.slots.set(p.name, s);
    }
    return s;
  }

  step(): void {
    const op = "AdamW.step";
    checkHyper(op, "lr", this.lr, 0, Infinity);
    const g = gpu();
    g.checkAlive(op);
    // Chunks of the parameters to update, by step count (normally one).
    const byStep = new Map<number, Vec4Chunk[]>();
    for (const p of this.params) {
      if (!p.grad) continue;
      p.value.assertAlive(`${op} (${p.name})`);
      checkGrad(op, p, p.grad);
      const s = this.slot(p);
      s.step += 1;
      if (p.value.size === 0) continue;
      let list = byStep.get(s.step);
      if (!list) byStep.set(s.step, (list = []));
      list.push(...vec4Chunks([p.value, s.m, s.v, p.grad]));
    }
    for (const [step, chunks] of byStep) {
      adamwUpdate(chunks, {
        lr: this.lr,
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        weightDecay: this.weightDecay,
        bc1: 1 - this.beta1 ** step,
        bc2: 1 - this.beta2 ** step,
      });
    }
  }

  /** Keys `NAME.exp_avg`, `NAME.exp_avg_sq` (tensors) and `NAME.step` (number), as torch names them. */
  state(): OptimState {
    const out: OptimState = {};
    for (const [name, s] of this.slots) {
      out[`${name}.exp_avg`] = s.m;
      out[`${name}.exp_avg_sq`] = s.v;
      out[`${name}.step`] = s.step;
    }
    return out;
  }

  loadState(state: OptimState): void {
    const op = "AdamW.loadState";
    const next = new Map<string, { m: Tensor; v: Tensor; step: number }>();
    try {
      for (const p of this.params) {
        const key = `${p.name}.step`;
        if (!(key in state)) continue; // never stepped: starts fresh, as in torch
        next.set(p.name, {
          m: copyOf(op, `${p.name}.exp_avg`, state[`${p.name}.exp_avg`], p.value),
          v: copyOf(op, `${p.name}.exp_avg_sq`, state[`${p.name}.exp_avg_sq`], p.value),
          step: stepCount(op, key, state[key]),
        });
      }
      const known = new Set(this.params.map((p) => p.name));
      for (const k of Object.keys(state)) {
        const name = k.replace(/\.(exp_avg|exp_avg_sq|step)$/, "");
        if (name === k || !known.has(name)) fail(op, `state key "${k}" belongs to no parameter of this optimiser`);
      }
    } catch (e) {
      for (const s of next.values()) [s.m, s.v].forEach((t) => t.dispose());
      throw e;
    }
    this.disposeState();
    for (const [k, v] of next) this.slots.set(k, v);
  }

  private disposeState(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }

  dispose(): void {
    this.disposeState();
  }
}

// ---------------------------------------------------------------- SGD

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  /** Default 0; must be 0 with Nesterov (as torch requires). */
  dampening?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient (coupled, as torch.optim.SGD). */
  weightDecay?: number;
}

export class SGD implements Optimizer {
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  readonly params: readonly TrainParam[];
  private readonly buffers = new Map<string, { buf: Tensor; step: number }>();

  constructor(params: readonly TrainParam[], opts: SGDOptions = {}) {
    const op = "SGD";
    checkParams(op, params);
    this.params = [...params];
    this.lr = opts.lr ?? 1e-3;
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    checkHyper(op, "lr", this.lr, 0, Infinity);
    checkHyper(op, "momentum", this.momentum, 0, Infinity);
    checkHyper(op, "dampening", this.dampening, 0, 1);
    checkHyper(op, "weightDecay", this.weightDecay, 0, Infinity);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      fail(op, `Nesterov momentum needs momentum > 0 and dampening 0 (got momentum ${this.momentum}, dampening ${this.dampening})`);
    }
  }

  step(): void {
    const op = "SGD.step";
    checkHyper(op, "lr", this.lr, 0, Infinity);
    const g = gpu();
    g.checkAlive(op);
    const withMomentum = this.momentum !== 0;
    for (const p of this.params) {
      if (!p.grad) continue;
      p.value.assertAlive(`${op} (${p.name})`);
      checkGrad(op, p, p.grad);
      let first = 0;
      let slot = this.buffers.get(p.name);
      if (withMomentum && !slot) {
        // torch starts the buffer as a copy of the first d; the kernel writes it.
        slot = { buf: keep(Tensor.empty(p.value.shape)), step: 0 };
        this.buffers.set(p.name, slot);
        first = 1;
      }
      if (slot) slot.step += 1;
      if (p.value.size === 0) continue;
      const tensors = slot ? [p.value, slot.buf, p.grad] : [p.value, p.grad];
      sgdUpdate(tensors, {
        lr: this.lr,
        weightDecay: this.weightDecay,
        momentum: this.momentum,
        dampening: this.dampening,
        nesterov: this.nesterov,
        first: first === 1,
      });
    }
  }

  /** Keys `NAME.momentum_buffer` (tensor) and `NAME.step` (number); empty without momentum. */
  state(): OptimState {
    const out: OptimState = {};
    for (const [name, s] of this.buffers) {
      out[`${name}.momentum_buffer`] = s.buf;
      out[`${name}.step`] = s.step;
    }
    return out;
  }

  loadState(state: OptimState): void {
    const op = "SGD.loadState";
    const next = new Map<string, { buf: Tensor; step: number }>();
    try {
      for (const p of this.params) {
        const key = `${p.name}.step`;
        if (!(key in state)) continue;
        const step = stepCount(op, key, state[key]);
        if (step === 0) continue;
        next.set(p.name, { buf: copyOf(op, `${p.name}.momentum_buffer`, state[`${p.name}.momentum_buffer`], p.value), step });
      }
      const known = new Set(this.params.map((p) => p.name));
      for (const k of Object.keys(state)) {
        const name = k.replace(/\.(momentum_buffer|step)$/, "");
        if (name === k || !known.has(name)) fail(op, `state key "${k}" belongs to no parameter of this optimiser`);
      }
      if (next.size > 0 && this.momentum === 0) fail(op, "the state has momentum buffers but this optimiser has momentum 0");
    } catch (e) {
      for (const s of next.values()) s.buf.dispose();
      throw e;
    }
    this.dispose();
    for (const [k, v] of next) this.buffers.set(k, v);
  }

  dispose(): void {
    for (const s of this.buffers.values()) s.buf.dispose();
    this.buffers.clear();
  }
}
