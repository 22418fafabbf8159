// Differentiable ops on Vars: typed entry points over the ops declared beside
// their kernels in src/kernels (`defineOp`: forward, what to save, backward),
// run by `apply` (same argument conventions as the kernels). Backward runs
// inside a scope, so temporaries are freed; each op saves only what the
// gradients it must compute need (nothing for inputs that need no grad).
import type { Activation } from "../kernels/activation.js";
import { binaryOps, unaryOps, type UnaryOp } from "../kernels/elementwise.js";
import { castOp, concatOp, gatherOp, padOp, permuteOp, reshapeOp, sliceOp } from "../kernels/layout.js";
import { linearOp, matmulOp } from "../kernels/matmul.js";
import { reduceOp } from "../kernels/reduce.js";
import { Tensor } from "../tensor/tensor.js";
import { Var, constant, isRecording, param } from "./autograd.js";
import { apply } from "./op_inputs.js";

/** Sums g (a broadcast result) down to `shape`, over the broadcast axes; may return g itself. */
export { sumTo } from "../kernels/reduce.js";

// ---------------------------------------------------------------------------
// Leaves

/** Uploads host data as a Var: a param with `requiresGrad`, else a constant. */
export function fromHost(data: Float32Array | readonly number[], shape: readonly number[], opts: { requiresGrad?: boolean } = {}): Var {
  const host = data instanceof Float32Array ? data : Float32Array.from(data);
  const t = Tensor.from(host, shape);
  return opts.requiresGrad ? param(t) : constant(t);
}

/** A constant scalar (shape []), e.g. to scale or offset a loss with broadcasting ops. */
export function scalar(v: number): Var {
  return constant(Tensor.from(new Float32Array([v]), []));
}

// ---------------------------------------------------------------------------
// Elementwise with broadcasting

export const add = (a: Var, b: Var): Var => apply(binaryOps.add, [a, b], {});
export const sub = (a: Var, b: Var): Var => apply(binaryOps.sub, [a, b], {});
export const mul = (a: Var, b: Var): Var => apply(binaryOps.mul, [a, b], {});
export const div = (a: Var, b: Var): Var => apply(binaryOps.div, [a, b], {});

/** A unary map (scalars a, b as in the `unary` kernel); threshold has no gradient. */
export function unaryOp(op: UnaryOp, x: Var, a = 0, b = 0): Var {
  return apply(unaryOps[op], [x], { a, b });
}

export const neg = (x: Var) => unaryOp("neg", x);
export const exp = (x: Var) => unaryOp("exp", x);
export const log = (x: Var) => unaryOp("log", x);
export const sqrt = (x: Var) => unaryOp("sqrt", x);
export const abs = (x: Var) => unaryOp("abs", x);
export const square = (x: Var) => unaryOp("square", x);
export const relu = (x: Var) => unaryOp("relu", x);
export const gelu = (x: Var) => unaryOp("gelu", x);
export const quickGelu = (x: Var) => unaryOp("quick_gelu", x);
export const geluTanh = (x: Var) => unaryOp("gelu_tanh", x);
export const sigmoid = (x: Var) => unaryOp("sigmoid", x);
/** 1 where x > t, else 0 (a constant: no gradient flows through it). */
export const threshold = (x: Var, t: number) => unaryOp("threshold", x, t);
export const clamp = (x: Var, lo: number, hi: number) => unaryOp("clamp", x, lo, hi);
/** x * scale + shift. */
export const affine = (x: Var, scale: number, shift: number) => unaryOp("affine", x, scale, shift);

/** Applies an activation by name ("none" returns x itself). */
export function activation(x: Var, act: Activation): Var {
  return act === "none" ? x : unaryOp(act, x);
}

// ---------------------------------------------------------------------------
// Reductions

/** Sum over all elements (shape []) or over one axis. */
export const sum = (x: Var, axis?: number, keepDims = false) => apply(reduceOp, [x], { op: "sum", axis, keepDims });
export const mean = (x: Var, axis?: number, keepDims = false) => apply(reduceOp, [x], { op: "mean", axis, keepDims });

// ---------------------------------------------------------------------------
// Matrix products

export interface MatmulVarOptions {
  transA?: boolean;
  transB?: boolean;
}

/** a [..., M, K] · b [..., K, N] (either stored transposed), batch axes broadcast. */
export function matmul(a: Var, b: Var, opts: MatmulVarOptions = {}): Var {
  return apply(matmulOp, [a, b], { transA: opts.transA ?? false, transB: opts.transB ?? false });
}

export interface LinearOptions {
  /** Recompute the pre-activation in backward instead of saving it (less memory, one more matmul). */
  recompute?: boolean;
}

/**
 * act(x · wᵀ + b) with x [..., K], weight w [N, K] (PyTorch layout), bias [N].
 * With an activation the pre-activation is saved (or recomputed, see options).
 */
export function linear(x: Var, w: Var, b: Var | null = null, act: Activation = "none", opts: LinearOptions = {}): Var {
  const recompute = act !== "none" && (opts.recompute ?? false);
  const recording = isRecording() && (x.requiresGrad || w.requiresGrad || (b?.requiresGrad ?? false));
  // Saving the pre-activation: it is the output of a linear op without activation, saved by the activation's op.
  if (act !== "none" && recording && !recompute) return unaryOp(act, apply(linearOp, [x, w, b], { act: "none", recompute: false }));
  return apply(linearOp, [x, w, b], { act, recompute });
}

// ---------------------------------------------------------------------------
// Layout (attributes are copied: backward reads them later)

/** A zero-copy view with a new shape (-1 infers one axis). */
export const reshape = (x: Var, shape: readonly number[]): Var => apply(reshapeOp, [x], { shape: [...shape] });

/** x[s0:e0, …] as the slice kernel (negative indices count from the end). */
export const slice = (x: Var, starts: readonly number[], ends: readonly number[]): Var => apply(sliceOp, [x], { starts: [...starts], ends: [...ends] });

/** Constant padding, `pads[a] = [before, after]` for the leading axes. */
export const pad = (x: Var, pads: readonly (readonly [number, number])[], value = 0): Var => apply(padOp, [x], { pads: pads.map(([a, b]) => [a, b] as const), value });

/** Output axis a is input axis perm[a]. */
export const permute = (x: Var, perm: readonly number[]): Var => apply(permuteOp, [x], { perm: [...perm] });

/** Joins Vars along an existing axis. */
export const concat = (xs: readonly Var[], axis: number): Var => apply(concatOp, [...xs], { axis });

/** Embedding lookup table [V, D] by integer ids → [...ids.shape, D]; gradient only w.r.t. the table. */
export const gather = (table: Var, ids: Tensor | Int32Array | readonly number[]): Var => apply(gatherOp, [table], { ids });

/** x in another float precision (a constant: no gradient flows through it); x itself when it has that dtype. */
export const cast = (x: Var, dtype: "f32" | "f16"): Var => (x.value.dtype === dtype ? x : apply(castOp, [x], { dtype }));
