// Differentiable ConvTranspose3d, patch embedding and 3-D resizing on Vars
// (same argument conventions as the forward kernels). Each saves only what
// the gradients it will be asked for need: x for dW, W for dx, nothing for
// the resize (its backward needs only shapes).
import { convTranspose3d as convTransposeK, triple, type Triple } from "../kernels/conv_transpose3d.js";
import {
  convTranspose3dBiasGrad,
  convTranspose3dInputGrad,
  convTranspose3dInputWeightGrads,
  convTranspose3dWeightGrad,
} from "../kernels/conv_transpose3d_backward.js";
import { patchEmbed as patchEmbedK } from "../kernels/patch_embed.js";
import { patchEmbedBiasGrad, patchEmbedInputGrad, patchEmbedWeightGrad } from "../kernels/patch_embed_backward.js";
import { resize3d as resizeK, type ResizeMode } from "../kernels/resample.js";
import { resize3dBackward } from "../kernels/resample_backward.js";
import { Tensor } from "../tensor/tensor.js";
import { Var, customOp } from "./autograd.js";
import { live, view, wants } from "./op_inputs.js";

/** x [B, Cin, D, H, W], w [Cin, Cout, kd, kh, kw], bias [Cout] (or null); stride defaults to the kernel size. */
export function convTranspose3d(x: Var, w: Var, bias: Var | null, opts: { stride?: number | [number, number, number] } = {}): Var {
  const op = "convTranspose3d";
  live(op, [x, w, bias]);
  const out = convTransposeK(x.value, w.value, bias?.value, opts);
  // The forward validated shapes; resolve the stride now (shapes are captured: handles may be freed before backward).
  const wShape = [...w.shape];
  const xShape = [...x.shape];
  const stride: Triple = triple(op, "stride", opts.stride ?? wShape.slice(2), 1);
  const gx = wants(x);
  const gw = wants(w);
  const gb = wants(bias);
  const xv = gw ? view(x.value) : null;
  const wv = gx ? view(w.value) : null;
  const saved = [xv, wv].filter((t): t is Tensor => t !== null);
  const inputs = bias ? [x, w, bias] : [x, w];
  return customOp(op, inputs, out, (g) => {
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (gx && gw) ({ dx, dw } = convTranspose3dInputWeightGrads(xv!, wv!, g, { stride }));
    else if (gx) dx = convTranspose3dInputGrad(wv!, g, xShape, { stride });
    else if (gw) dw = convTranspose3dWeightGrad(xv!, g, wShape, { stride });
    return bias ? [dx, dw, gb ? convTranspose3dBiasGrad(g) : null] : [dx, dw];
  }, saved);
}

/** SegVol's patch embedding: x [B, C, D, H, W], w [hidden, p1·p2·p3·C], bias [hidden] → [B, tokens, hidden]. */
export function patchEmbed(x: Var, w: Var, bias: Var, patch: readonly [number, number, number]): Var {
  const op = "patchEmbed";
  live(op, [x, w, bias]);
  const out = patchEmbedK(x.value, w.value, bias.value, patch);
  const p: [number, number, number] = [patch[0], patch[1], patch[2]];
  const xShape = [...x.shape];
  const hidden = w.shape[0]!;
  const gx = wants(x);
  const gw = wants(w);
  const gb = wants(bias);
  const xv = gw ? view(x.value) : null;
  const wv = gx ? view(w.value) : null;
  const saved = [xv, wv].filter((t): t is Tensor => t !== null);
  return customOp(op, [x, w, bias], out, (g) => [
    gx ? patchEmbedInputGrad(wv!, g, xShape, p) : null,
    gw ? patchEmbedWeightGrad(xv!, g, p, hidden) : null,
    gb ? patchEmbedBiasGrad(g) : null,
  ], saved);
}

/** Resizes the three trailing axes of x ([D, H, W] or [B, C, D, H, W]) with F.interpolate semantics. */
export function resize3d(x: Var, size: readonly [number, number, number], mode: ResizeMode, alignCorners = false): Var {
  const op = `resize3d(${mode})`;
  live(op, [x]);
  const out = resizeK(x.value, size, mode, alignCorners);
  const xShape = [...x.shape];
  return customOp(op, [x], out, (g) => [resize3dBackward(g, xShape, mode, alignCorners)]);
}
