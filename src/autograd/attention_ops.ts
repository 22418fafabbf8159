// Differentiable attention, LayerNorm and softmax on Vars: each runs the
// forward kernel (same argument conventions as src/kernels) and, while
// recording, registers its backward kernel through `customOp`. Saved
// tensors are views (own handles) of what the backward reads:
//  - attention: q, k, v and the output (the backward recomputes scores and
//    the logsumexp from them; nothing of size Nq×Nk is kept);
//  - layerNorm: x and weight (mean and rstd are recomputed);
//  - softmax: its output y.
import { attention as attentionK, type AttentionOptions } from "../kernels/attention.js";
import { attentionBackward } from "../kernels/attention_backward.js";
import { layerNorm as layerNormK } from "../kernels/layernorm.js";
import { layerNormBackward } from "../kernels/layernorm_backward.js";
import { softmax as softmaxK } from "../kernels/softmax.js";
import { softmaxBackward } from "../kernels/softmax_backward.js";
import type { Tensor } from "../tensor/tensor.js";
import { Var, customOp } from "./autograd.js";
import { live, view, wants } from "./op_inputs.js";

/** Multi-head attention softmax(q·kᵀ·scale)·v (see kernels/attention.ts for layouts). */
export function attention(q: Var, k: Var, v: Var, opts: AttentionOptions): Var {
  live("attention", [q, k, v]);
  const out = attentionK(q.value, k.value, v.value, opts);
  const want = [wants(q), wants(k), wants(v)];
  const saved = want.some(Boolean) ? [view(q.value), view(k.value), view(v.value), view(out)] : [];
  const o = { ...opts };
  return customOp("attention", [q, k, v], out, (g) => {
    const [qs, ks, vs, os] = saved as [Tensor, Tensor, Tensor, Tensor];
    const { dq, dk, dv } = attentionBackward(qs, ks, vs, os, g, o);
    // All three come from the same two passes; drop the unwanted ones.
    return [dq, dk, dv].map((t, i) => {
      if (want[i]) return t;
      t.dispose();
      return null;
    });
  }, saved);
}

/** LayerNorm over the trailing dims of x equal to weight.shape (weight and bias share it). */
export function layerNorm(x: Var, weight: Var, bias: Var, eps = 1e-5): Var {
  live("layerNorm", [x, weight, bias]);
  const out = layerNormK(x.value, weight.value, bias.value, eps);
  const want = [wants(x), wants(weight), wants(bias)];
  const saved = want.some(Boolean) ? [view(x.value), view(weight.value)] : [];
  return customOp("layerNorm", [x, weight, bias], out, (g) => {
    const [xs, ws] = saved as [Tensor, Tensor];
    const { dx, dweight, dbias } = layerNormBackward(xs, ws, g, eps);
    return [dx, dweight, dbias].map((t, i) => {
      if (want[i]) return t;
      t.dispose();
      return null;
    });
  }, saved);
}

/** Softmax along `axis` (default the last). */
export function softmax(x: Var, axis = -1): Var {
  live("softmax", [x]);
  const out = softmaxK(x.value, axis);
  const saved = wants(x) ? [view(out)] : [];
  return customOp("softmax", [x], out, (g) => [softmaxBackward(saved[0]!, g, axis)], saved);
}
