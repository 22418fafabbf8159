// Differentiable attention, LayerNorm and softmax on Vars: typed entry points
// over the ops declared beside their kernels (attentionOp, layerNormOp,
// softmaxOp: what each saves and its backward are there).
import { attentionOp, type AttentionOptions } from "../kernels/attention.js";
import { layerNormOp } from "../kernels/layernorm.js";
import { softmaxOp } from "../kernels/softmax.js";
import type { Var } from "./autograd.js";
import { apply } from "./op_inputs.js";

/** Multi-head attention softmax(q·kᵀ·scale)·v (see kernels/attention.ts for layouts). */
export function attention(q: Var, k: Var, v: Var, opts: AttentionOptions): Var {
  return apply(attentionOp, [q, k, v], { ...opts });
}

/** LayerNorm over the trailing dims of x equal to weight.shape (weight and bias share it). */
export function layerNorm(x: Var, weight: Var, bias: Var, eps = 1e-5): Var {
  return apply(layerNormOp, [x, weight, bias], { eps });
}

/** Softmax along `axis` (default the last). */
export function softmax(x: Var, axis = -1): Var {
  return apply(softmaxOp, [x], { axis });
}
