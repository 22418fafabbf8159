// Differentiable ops on Vars: each runs the forward kernel of src/kernels
// (same argument conventions) and, while recording, registers its backward
// through `customOp`. Backward closures run inside a scope, so temporaries
// they make are freed; they save only what the gradients they must compute
// need (nothing at all for inputs that do not require grad).
import type { Activation } from "../kernels/activation.js";
import { unaryBackward, type DiffUnaryOp } from "../kernels/activation_backward.js";
import { binary, unary, type BinaryOp, type UnaryOp } from "../kernels/elementwise.js";
import { gatherBackward } from "../kernels/gather_backward.js";
import { concat as concatK, gather as gatherK, pad as padK, permute as permuteK, slice as sliceK } from "../kernels/layout.js";
import { matmul as matmulK } from "../kernels/matmul.js";
import { reduce } from "../kernels/reduce.js";
import { expandTo } from "../kernels/reduce_backward.js";
import { normAxis } from "../kernels/check.js";
import { Tensor, numel, shapeStr } from "../tensor/tensor.js";
import { Var, constant, customOp, isRecording, param } from "./autograd.js";
import { live, view, wants } from "./op_inputs.js";

// ---------------------------------------------------------------------------
// Helpers

/** Sums g (a broadcast result) down to `shape`, over the broadcast axes; may return g itself. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  const R = g.rank;
  if (shape.length > R) throw new Error(`sumTo: cannot reduce ${shapeStr(g.shape)} to the larger rank ${shapeStr(shape)}`);
  const target = [...new Array<number>(R - shape.length).fill(1), ...shape];
  if (target.every((d, a) => d === g.shape[a])) return g;
  // Merge neighbouring axes into alternating kept / reduced groups, then sum
  // each reduced group with one reduce pass (innermost first).
  const groups: { size: number; reduced: boolean }[] = [];
  for (let a = 0; a < R; a++) {
    const d = g.shape[a]!;
    if (target[a] !== d && target[a] !== 1) throw new Error(`sumTo: ${shapeStr(g.shape)} does not broadcast from ${shapeStr(shape)}`);
    if (d === 1) continue;
    const reduced = target[a] === 1;
    const last = groups[groups.length - 1];
    if (last && last.reduced === reduced) last.size *= d;
    else groups.push({ size: d, reduced });
  }
  let x = g.reshape(groups.map((q) => q.size));
  if (groups.every((q) => q.reduced)) {
    const s = reduce("sum", x);
    x.dispose();
    x = s;
  } else {
    for (let k = groups.length - 1; k >= 0; k--) {
      if (!groups[k]!.reduced) continue;
      const s = reduce("sum", x, k);
      x.dispose();
      x = s;
    }
  }
  const out = x.reshape(shape);
  x.dispose();
  return out;
}

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

function binaryOp(op: BinaryOp, a: Var, b: Var): Var {
  live(op, [a, b]);
  const out = binary(op, a.value, b.value);
  const ga = wants(a);
  const gb = wants(b);
  const saved: Tensor[] = [];
  // mul: da needs b, db needs a; div: da needs b, db needs a and b.
  const av = (op === "mul" && gb) || (op === "div" && gb) ? view(a.value) : null;
  const bv = (op === "mul" || op === "div") && (ga || gb) ? view(b.value) : null;
  if (av) saved.push(av);
  if (bv) saved.push(bv);
  return customOp(op, [a, b], out, (g) => {
    switch (op) {
      case "add":
        return [ga ? sumTo(g, a.shape) : null, gb ? sumTo(g, b.shape) : null];
      case "sub":
        return [ga ? sumTo(g, a.shape) : null, gb ? sumTo(unary("neg", g), b.shape) : null];
      case "mul":
        return [ga ? sumTo(binary("mul", g, bv!), a.shape) : null, gb ? sumTo(binary("mul", g, av!), b.shape) : null];
      case "div": {
        // d(a/b)/db = −a/b²
        const db = gb ? unary("neg", binary("div", binary("mul", g, av!), binary("mul", bv!, bv!))) : null;
        return [ga ? sumTo(binary("div", g, bv!), a.shape) : null, db ? sumTo(db, b.shape) : null];
      }
      default:
        throw new Error(`${op}: no gradient`);
    }
  }, saved);
}

export const add = (a: Var, b: Var): Var => binaryOp("add", a, b);
export const sub = (a: Var, b: Var): Var => binaryOp("sub", a, b);
export const mul = (a: Var, b: Var): Var => binaryOp("mul", a, b);
export const div = (a: Var, b: Var): Var => binaryOp("div", a, b);

/** A unary map (scalars a, b as in the `unary` kernel); threshold has no gradient. */
export function unaryOp(op: UnaryOp, x: Var, a = 0, b = 0): Var {
  live(op, [x]);
  const out = unary(op, x.value, a, b);
  if (op === "threshold") return customOp(op, [], out, () => []);
  // affine and neg have constant derivatives: nothing to save.
  const linear = op === "affine" || op === "neg";
  const saved = wants(x) && !linear ? [view(x.value)] : [];
  return customOp(op, [x], out, (g) => {
    if (op === "affine") return [unary("affine", g, a, 0)];
    if (op === "neg") return [unary("neg", g)];
    return [unaryBackward(op as DiffUnaryOp, saved[0]!, g, a, b)];
  }, saved);
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

function reduceOp(op: "sum" | "mean", x: Var, axis?: number, keepDims = false): Var {
  live(op, [x]);
  const out = reduce(op, x.value, axis, keepDims);
  const shape = [...x.shape];
  const ax = axis === undefined ? -1 : normAxis(op, axis, shape.length);
  const kept = ax < 0 ? shape.map(() => 1) : shape.map((d, a) => (a === ax ? 1 : d));
  const n = ax < 0 ? numel(shape) : shape[ax]!;
  return customOp(op, [x], out, (g) => {
    const gk = g.reshape(kept);
    return [expandTo(gk, shape, op === "mean" ? 1 / Math.max(1, n) : 1)];
  });
}

/** Sum over all elements (shape []) or over one axis. */
export const sum = (x: Var, axis?: number, keepDims = false) => reduceOp("sum", x, axis, keepDims);
export const mean = (x: Var, axis?: number, keepDims = false) => reduceOp("mean", x, axis, keepDims);

// ---------------------------------------------------------------------------
// Matrix products

export interface MatmulVarOptions {
  transA?: boolean;
  transB?: boolean;
}

/** Gradients of op(A)·op(B) w.r.t. the stored A and B (same batch as G). */
function matmulGrads(A: Tensor, B: Tensor, G: Tensor, tA: boolean, tB: boolean, wantA: boolean, wantB: boolean): [Tensor | null, Tensor | null] {
  // dop(A) = G·op(B)ᵀ, dop(B) = op(A)ᵀ·G; a transposed operand gets the transpose.
  let dA: Tensor | null = null;
  let dB: Tensor | null = null;
  if (wantA) {
    dA = !tA ? matmulK(G, B, { transB: !tB }) : matmulK(B, G, { transA: tB, transB: true });
  }
  if (wantB) {
    dB = !tB ? matmulK(A, G, { transA: !tA }) : matmulK(G, A, { transA: true, transB: tA });
  }
  return [dA, dB];
}

/** a [..., M, K] · b [..., K, N] (either stored transposed), batch axes broadcast. */
export function matmul(a: Var, b: Var, opts: MatmulVarOptions = {}): Var {
  live("matmul", [a, b]);
  const tA = opts.transA ?? false;
  const tB = opts.transB ?? false;
  const out = matmulK(a.value, b.value, { transA: tA, transB: tB });
  const ga = wants(a);
  const gb = wants(b);
  const saved: Tensor[] = [];
  const av = gb ? view(a.value) : null;
  const bv = ga ? view(b.value) : null;
  if (av) saved.push(av);
  if (bv) saved.push(bv);
  // Shapes are captured now: by backward time a tape-owned input's handle may be freed.
  const aShape = [...a.shape];
  const bShape = [...b.shape];
  return customOp("matmul", [a, b], out, (g) => {
    // A rank-2 b against a batched, untransposed a (a Linear layer): fold
    // the batch into M so dB is one product, not a batch summed afterwards.
    if (bShape.length === 2 && aShape.length > 2 && !tA) {
      const K = aShape[aShape.length - 1]!;
      const a2 = av?.reshape([-1, K]) ?? null;
      const g2 = g.reshape([-1, g.shape[g.rank - 1]!]);
      const [dA, dB] = matmulGrads(a2 ?? g2, bv ?? g2, g2, false, tB, ga, gb);
      return [dA ? dA.reshape(aShape) : null, dB];
    }
    const [dA, dB] = matmulGrads(av ?? g, bv ?? g, g, tA, tB, ga, gb);
    return [dA ? sumTo(dA, aShape) : null, dB ? sumTo(dB, bShape) : null];
  }, saved);
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
  live("linear", b ? [x, w, b] : [x, w]);
  const bias = b?.value;
  const recording = isRecording() && (x.requiresGrad || w.requiresGrad || (b?.requiresGrad ?? false));
  const recompute = act !== "none" && (opts.recompute ?? false);
  let out: Tensor;
  let z: Tensor | null = null;
  if (act === "none" || !recording || recompute) {
    out = matmulK(x.value, w.value, { transB: true, bias, act });
  } else {
    z = matmulK(x.value, w.value, { transB: true, bias });
    out = unary(act, z);
  }
  const gx = wants(x);
  const gw = wants(w);
  const gb = b !== null && wants(b);
  const saved: Tensor[] = [];
  const xv = gw || (recompute && recording) ? view(x.value) : null;
  const wv = gx || (recompute && recording) ? view(w.value) : null;
  const bv = recompute && recording && bias ? view(bias) : null;
  for (const t of [xv, wv, bv, z]) if (t) saved.push(t);
  const xShape = [...x.shape];
  const K = xShape[xShape.length - 1]!;
  const inputs = b ? [x, w, b] : [x, w];
  return customOp("linear", inputs, out, (g) => {
    let gz = g;
    if (act !== "none") {
      const pre = z ?? matmulK(xv!, wv!, { transB: true, bias: bv ?? undefined });
      gz = unaryBackward(act, pre, g);
    }
    const g2 = gz.reshape([-1, gz.shape[gz.rank - 1]!]);
    const dx = gx ? matmulK(g2, wv!).reshape(xShape) : null;
    const dw = gw ? matmulK(g2, xv!.reshape([-1, K]), { transA: true }) : null;
    const db = gb ? reduce("sum", g2, 0) : null;
    return b ? [dx, dw, db] : [dx, dw];
  }, saved);
}

// ---------------------------------------------------------------------------
// Layout

/** A zero-copy view with a new shape (-1 infers one axis). */
export function reshape(x: Var, shape: readonly number[]): Var {
  live("reshape", [x]);
  const out = x.value.reshape(shape);
  const inShape = [...x.shape];
  return customOp("reshape", [x], out, (g) => [g.reshape(inShape)]);
}

/** x[s0:e0, …] as the slice kernel (negative indices count from the end). */
export function slice(x: Var, starts: readonly number[], ends: readonly number[]): Var {
  live("slice", [x]);
  const out = sliceK(x.value, starts, ends);
  const lo = x.shape.map((dim, a) => {
    const s = a < starts.length ? starts[a]! : 0;
    return s < 0 ? s + dim : s;
  });
  const pads = x.shape.map((dim, a) => [lo[a]!, dim - lo[a]! - out.shape[a]!] as const);
  return customOp("slice", [x], out, (g) => [padK(g, pads, 0)]);
}

/** Constant padding, `pads[a] = [before, after]` for the leading axes. */
export function pad(x: Var, pads: readonly (readonly [number, number])[], value = 0): Var {
  live("pad", [x]);
  const out = padK(x.value, pads, value);
  const starts = x.shape.map((_, a) => pads[a]?.[0] ?? 0);
  const ends = x.shape.map((d, a) => starts[a]! + d);
  return customOp("pad", [x], out, (g) => [sliceK(g, starts, ends)]);
}

/** Output axis a is input axis perm[a]. */
export function permute(x: Var, perm: readonly number[]): Var {
  live("permute", [x]);
  const out = permuteK(x.value, perm);
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, a) => (inverse[p] = a));
  return customOp("permute", [x], out, (g) => [permuteK(g, inverse)]);
}

/** Joins Vars along an existing axis. */
export function concat(xs: readonly Var[], axis: number): Var {
  live("concat", xs);
  const out = concatK(xs.map((x) => x.value), axis);
  const ax = normAxis("concat", axis, out.rank);
  const wantsAny = xs.map(wants);
  const shape = [...out.shape];
  return customOp("concat", [...xs], out, (g) => {
    let offset = 0;
    return xs.map((x, k) => {
      const lo = offset;
      offset += x.shape[ax]!;
      if (!wantsAny[k]) return null;
      const starts = shape.map((_, a) => (a === ax ? lo : 0));
      const ends = shape.map((d, a) => (a === ax ? lo + x.shape[ax]! : d));
      return sliceK(g, starts, ends);
    });
  });
}

/** Embedding lookup table [V, D] by integer ids → [...ids.shape, D]; gradient only w.r.t. the table. */
export function gather(table: Var, ids: Tensor | Int32Array | readonly number[]): Var {
  live("gather", [table]);
  const out = gatherK(table.value, ids);
  let saved: Tensor[] = [];
  if (wants(table)) {
    saved = [ids instanceof Tensor ? view(ids) : Tensor.from(ids instanceof Int32Array ? ids : Int32Array.from(ids), [ids.length], "i32")];
  }
  const vocab = table.shape[0]!;
  return customOp("gather", [table], out, (g) => [gatherBackward(g, saved[0]!, vocab)], saved);
}
