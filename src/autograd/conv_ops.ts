// Differentiable ConvTranspose3d, patch embedding and 3-D resizing on Vars:
// typed entry points over the ops declared beside their kernels
// (convTranspose3dOp, patchEmbedOp, resize3dOp: what each saves and its
// backward are there).
import { convTranspose3dOp } from "../kernels/conv_transpose3d.js";
import { patchEmbedOp } from "../kernels/patch_embed.js";
import { resize3dOp, type ResizeMode } from "../kernels/resample.js";
import type { Var } from "./autograd.js";
import { apply } from "./op_inputs.js";

/** x [B, Cin, D, H, W], w [Cin, Cout, kd, kh, kw], bias [Cout] (or null); stride defaults to the kernel size. */
export function convTranspose3d(x: Var, w: Var, bias: Var | null, opts: { stride?: number | [number, number, number] } = {}): Var {
  return apply(convTranspose3dOp, [x, w, bias], { ...opts });
}

/** SegVol's patch embedding: x [B, C, D, H, W], w [hidden, p1·p2·p3·C], bias [hidden] → [B, tokens, hidden]. */
export function patchEmbed(x: Var, w: Var, bias: Var, patch: readonly [number, number, number]): Var {
  return apply(patchEmbedOp, [x, w, bias], { patch });
}

/** Resizes the three trailing axes of x ([D, H, W] or [B, C, D, H, W]) with F.interpolate semantics. */
export function resize3d(x: Var, size: readonly [number, number, number], mode: ResizeMode, alignCorners = false): Var {
  return apply(resize3dOp, [x], { size, mode, alignCorners });
}
