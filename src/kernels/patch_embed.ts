// SegVol's "perceptron" patch embedding (spec section 2 step 1): the
// rearrange `b c (d p1) (h p2) (w p3) -> b (d h w) (p1 p2 p3 c)` followed by
// nn.Linear, fused into one GEMM (conv_gemm.ts) whose loader gathers the
// patch vectors straight from the volume:
//   tokens[b, t, o] = bias[o] + Σ_k v_t[k] · w[o, k],  t = (i·h' + j)·w' + k',
//   v_t[((q1·p2 + q2)·p3 + q3)·C + c] = x[b, c, i·p1 + q1, j·p2 + q2, k'·p3 + q3].
// Rows m are tokens (over the batch), columns n are hidden features.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { dispatchGemm, source, type GemmKernel } from "./conv_gemm.js";
import { defineOp } from "./op.js";
import { reduce } from "./reduce.js";

const OP = "patchEmbed";

export function patchEmbed(x: Tensor, w: Tensor, bias: Tensor, patch: readonly [number, number, number]): Tensor {
  checkInputs(OP, [x, w, bias]);
  checkRank(OP, x, 5, "input x [B, C, D, H, W]");
  checkRank(OP, w, 2, "weight w [hidden, p1·p2·p3·C]");
  if (patch.length !== 3 || !patch.every((p) => Number.isInteger(p) && p >= 1)) {
    fail(OP, `patch must be three positive integers, got ${JSON.stringify(patch)}`);
  }
  const [B, C, D, H, W] = x.shape as [number, number, number, number, number];
  const [p1, p2, p3] = patch;
  if (D % p1 !== 0 || H % p2 !== 0 || W % p3 !== 0 || D === 0 || H === 0 || W === 0) {
    fail(OP, `volume ${shapeStr([D, H, W])} of x ${shapeStr(x.shape)} is not divisible into patches ${shapeStr(patch)}`);
  }
  const [hidden, Kp] = w.shape as [number, number];
  if (Kp !== p1 * p2 * p3 * C) {
    fail(OP, `weight ${shapeStr(w.shape)} needs ${p1}·${p2}·${p3}·${C} = ${p1 * p2 * p3 * C} inputs per patch of x ${shapeStr(x.shape)}, got ${Kp}`);
  }
  if (bias.rank !== 1 || bias.shape[0] !== hidden) {
    fail(OP, `bias must have shape [${hidden}] (one per hidden feature), got ${shapeStr(bias.shape)}`);
  }
  if (B === 0 || hidden === 0) fail(OP, `empty input x ${shapeStr(x.shape)} or weight ${shapeStr(w.shape)}`);
  gpu().checkAlive(OP);
  const gd = D / p1, gh = H / p2, gw = W / p3;
  const T = gd * gh * gw;
  const out = Tensor.empty([B, T, hidden]);
  const xs = source(OP, "x", x, 2, false);
  const ws = source(OP, "w", w, 2 + xs.bindings.length, false);
  const nb = 2 + xs.bindings.length + ws.bindings.length;
  const kernel: GemmKernel = {
    key: `${OP}:${shapeStr(x.shape)}:${shapeStr(w.shape)}:${patch.join(",")}:${xs.key}:${ws.key}`,
    decls: xs.decls + ws.decls + `@group(0) @binding(${nb}) var<storage, read> bias: array<f32>;\n`,
    // A(k, m) = v_m[k]: k = (q1, q2, q3, c) is shared by the 4 tokens.
    loadA: `let c = k % ${C}u; let q = k / ${C}u;
      let q3 = q % ${p3}u; let q2 = (q / ${p3}u) % ${p2}u; let q1 = q / ${p2 * p3}u;
      var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) {
        let t = min(m + i, GM - 1u);
        let b = t / ${T}u; let r = t % ${T}u;
        let gi = r / ${gh * gw}u; let gj = (r / ${gw}u) % ${gh}u; let gk = r % ${gw}u;
        v[i] = x_at((((b * ${C}u + c) * ${D}u + gi * ${p1}u + q1) * ${H}u + gj * ${p2}u + q2) * ${W}u + gk * ${p3}u + q3);
      }
      return v;`,
    // B(k, n) = w[n, k].
    loadB: `let e = GN - 1u;
      return vec4<f32>(w_at(min(n, e) * ${Kp}u + k), w_at(min(n + 1u, e) * ${Kp}u + k), w_at(min(n + 2u, e) * ${Kp}u + k), w_at(min(n + 3u, e) * ${Kp}u + k));`,
    rowOff: `return m * ${hidden}u;`,
    colOff: "return n;",
    biasCol: "return bias[n];",
  };
  const inputs = [...xs.bindings, ...ws.bindings, { buffer: bias.buffer, offset: 0, size: bias.byteLength }];
  dispatchGemm(kernel, out, { M: B * T, N: hidden, K: Kp }, inputs);
  return out;
}

// ---------------------------------------------------------------------------
// Backward of the patch embedding: the rearrange
// `b c (d p1) (h p2) (w p3) -> b (d h w) (p1 p2 p3 c)` followed by a Linear,
//   y[b, t, o] = bias[o] + Σ_k v_t[k] · w[o, k].
// With V the [B·T, Kp] matrix of patch vectors and G = dy as [B·T, hidden]:
//   dW = Gᵀ · V        (GEMM over the tokens; V gathered from x by the loader)
//   dbias = Σ_tokens G (one axis reduction)
//   dx = G · W scattered back through the rearrange (the store's separable
//        offset writes each patch element to its voxel: patches do not overlap)
// All three run on the GEMM core of conv_gemm.ts, so V is never materialised.

const BACKWARD_OP = "patchEmbedBackward";

interface Geometry {
  B: number;
  C: number;
  D: number;
  H: number;
  W: number;
  p: [number, number, number];
  /** Patch grid. */
  gd: number;
  gh: number;
  gw: number;
  /** Tokens per batch element, features per patch. */
  T: number;
  Kp: number;
  hidden: number;
}

function geometry(op: string, xShape: readonly number[], wShape: readonly number[], dyShape: readonly number[], patch: readonly number[]): Geometry {
  const desc = `x ${shapeStr(xShape)}, w ${shapeStr(wShape)}, dy ${shapeStr(dyShape)}, patch ${JSON.stringify(patch)}`;
  if (xShape.length !== 5 || wShape.length !== 2 || dyShape.length !== 3) {
    fail(op, `expected x [B, C, D, H, W], w [hidden, p1·p2·p3·C] and dy [B, tokens, hidden], got ${desc}`);
  }
  if (!Array.isArray(patch) || patch.length !== 3 || !patch.every((q) => Number.isInteger(q) && q >= 1)) {
    fail(op, `patch must be three positive integers (${desc})`);
  }
  const [B, C, D, H, W] = xShape as [number, number, number, number, number];
  const [p1, p2, p3] = patch as [number, number, number];
  if (B < 1 || C < 1 || D < 1 || H < 1 || W < 1 || D % p1 !== 0 || H % p2 !== 0 || W % p3 !== 0) {
    fail(op, `volume of x is empty or not divisible into patches (${desc})`);
  }
  const [hidden, Kp] = wShape as [number, number];
  if (Kp !== p1 * p2 * p3 * C || hidden < 1) fail(op, `weight needs ${hidden} × ${p1 * p2 * p3 * C} (p1·p2·p3·C) (${desc})`);
  const gd = D / p1, gh = H / p2, gw = W / p3;
  const T = gd * gh * gw;
  if (dyShape[0] !== B || dyShape[1] !== T || dyShape[2] !== hidden) {
    fail(op, `dy must have the forward output shape ${shapeStr([B, T, hidden])} (${desc})`);
  }
  return { B, C, D, H, W, p: [p1, p2, p3], gd, gh, gw, T, Kp, hidden };
}

/**
 * Offsets into x of token t (over the batch: its patch's corner) and of
 * patch feature k = ((q1·p2 + q2)·p3 + q3)·C + c (within the patch); the
 * element is at tok(t) + feat(k).
 */
function xOffsets(g: Geometry): { tok: (t: string) => string; feat: (k: string) => string } {
  const { C, D, H, W, p, gh, gw, T } = g;
  return {
    tok: (t) =>
      `((${t}) / ${T}u) * ${C * D * H * W}u + (((${t}) % ${T}u) / ${gh * gw}u) * ${p[0] * H * W}u + (((${t}) / ${gw}u) % ${gh}u) * ${p[1] * W}u + ((${t}) % ${gw}u) * ${p[2]}u`,
    feat: (k) =>
      `((${k}) % ${C}u) * ${D * H * W}u + ((${k}) / ${C * p[1] * p[2]}u) * ${H * W}u + (((${k}) / ${C * p[2]}u) % ${p[1]}u) * ${W}u + ((${k}) / ${C}u) % ${p[2]}u`,
  };
}

/** dW [hidden, Kp]: M = hidden, N = Kp, K = B·T (tokens). */
function weightGrad(g: Geometry, x: Tensor, dy: Tensor): Tensor {
  const { hidden, Kp, B, T, C, p } = g;
  const off = xOffsets(g);
  // One channel with rows of whole vec4s in the patch: the 4 features n..n+3
  // are 4 neighbouring voxels, 16-byte aligned (n, p3 and W are multiples of 4).
  const xVec = C === 1 && p[2] % 4 === 0;
  const ds = source(BACKWARD_OP, "dy", dy, 2, hidden % 4 === 0);
  const xs = source(BACKWARD_OP, "x", x, 2 + ds.bindings.length, xVec);
  const dw = Tensor.empty([hidden, Kp]);
  const kernel: GemmKernel = {
    key: `${BACKWARD_OP}:dw:${shapeStr([g.B, C, g.D, g.H, g.W])}:${hidden}:${p.join(",")}:${ds.key}:${xs.key}`,
    decls: ds.decls + xs.decls + `fn feat_off(k: u32) -> u32 { return ${off.feat("k")}; }\n`,
    // A(k, m) = dy[token k, feature m]: contiguous along m.
    loadA: ds.vec4
      ? "return dy4(k * GM + m);"
      : `var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) { v[i] = dy_at(k * GM + min(m + i, GM - 1u)); }
      return v;`,
    // B(k, n) = v_k[n], gathered from x.
    loadB: xs.vec4
      ? `return x4(${off.tok("k")} + feat_off(n));`
      : `let t = ${off.tok("k")};
      var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) { v[i] = x_at(t + feat_off(min(n + i, GN - 1u))); }
      return v;`,
    rowOff: `return m * ${Kp}u;`,
    colOff: "return n;",
  };
  dispatchGemm(kernel, dw, { M: hidden, N: Kp, K: B * T }, [...ds.bindings, ...xs.bindings]);
  return dw;
}

/** dx [B, C, D, H, W]: M = B·T (tokens), N = Kp (patch features), K = hidden. */
function inputGrad(g: Geometry, w: Tensor, dy: Tensor): Tensor {
  const { hidden, Kp, B, T, C, D, H, W, p } = g;
  const off = xOffsets(g);
  const ds = source(BACKWARD_OP, "dy", dy, 2, false);
  const ws = source(BACKWARD_OP, "w", w, 2 + ds.bindings.length, Kp % 4 === 0);
  const dx = Tensor.empty([B, C, D, H, W]);
  const kernel: GemmKernel = {
    key: `${BACKWARD_OP}:dx:${shapeStr([B, C, D, H, W])}:${hidden}:${p.join(",")}:${ds.key}:${ws.key}`,
    decls: ds.decls + ws.decls,
    // A(k, m) = dy[token m, feature k]: 4 tokens, strided by hidden.
    loadA: `var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) { v[i] = dy_at(min(m + i, GM - 1u) * GK + k); }
      return v;`,
    // B(k, n) = w[k, n]: contiguous along n.
    loadB: ws.vec4
      ? "return w4(k * GN + n);"
      : `var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) { v[i] = w_at(k * GN + min(n + i, GN - 1u)); }
      return v;`,
    rowOff: `return ${off.tok("m")};`,
    colOff: `return ${off.feat("n")};`,
  };
  dispatchGemm(kernel, dx, { M: B * T, N: Kp, K: hidden }, [...ds.bindings, ...ws.bindings]);
  return dx;
}

/** Σ over tokens of dy [B, T, hidden] → [hidden]. */
function biasGrad(dy: Tensor, hidden: number): Tensor {
  const v = dy.reshape([-1, hidden]);
  const out = reduce("sum", v, 0);
  v.dispose();
  return out;
}

function begin(op: string, tensors: Tensor[]): void {
  checkInputs(op, tensors);
  gpu().checkAlive(op);
}

/** dL/dW of patchEmbed, from the volume and dy [B, tokens, hidden]. */
export function patchEmbedWeightGrad(x: Tensor, dy: Tensor, patch: readonly [number, number, number], hidden = dy.shape[2] ?? 0): Tensor {
  const op = `${BACKWARD_OP}(dw)`;
  begin(op, [x, dy]);
  const C = x.shape[1] ?? 0;
  return weightGrad(geometry(op, x.shape, [hidden, patch[0] * patch[1] * patch[2] * C], dy.shape, patch), x, dy);
}

/** dL/dx of patchEmbed, from the weight and dy. */
export function patchEmbedInputGrad(w: Tensor, dy: Tensor, xShape: readonly number[], patch: readonly [number, number, number]): Tensor {
  const op = `${BACKWARD_OP}(dx)`;
  begin(op, [w, dy]);
  return inputGrad(geometry(op, xShape, w.shape, dy.shape, patch), w, dy);
}

/** dL/dbias of patchEmbed (of any Linear): Σ of dy [..., hidden] over all but the last axis. */
export function patchEmbedBiasGrad(dy: Tensor): Tensor {
  const op = `${BACKWARD_OP}(dbias)`;
  begin(op, [dy]);
  checkRank(op, dy, 3, "dy [B, tokens, hidden]");
  if (dy.size === 0) fail(op, `empty dy ${shapeStr(dy.shape)}`);
  return biasGrad(dy, dy.shape[2]!);
}

/**
 * Gradients of y = patchEmbed(x, w, bias, patch) given dy = dL/dy: dW
 * [hidden, p1·p2·p3·C], dbias [hidden], and dx when `needInput` (the image
 * usually needs none).
 */
export function patchEmbedBackward(
  x: Tensor,
  w: Tensor,
  dy: Tensor,
  patch: readonly [number, number, number],
  needInput = false,
): { dw: Tensor; dbias: Tensor; dx: Tensor | null } {
  begin(BACKWARD_OP, [x, w, dy]);
  checkRank(BACKWARD_OP, x, 5, "input x [B, C, D, H, W]");
  checkRank(BACKWARD_OP, w, 2, "weight w [hidden, p1·p2·p3·C]");
  const g = geometry(BACKWARD_OP, x.shape, w.shape, dy.shape, patch);
  return { dw: weightGrad(g, x, dy), dbias: biasGrad(dy, g.hidden), dx: needInput ? inputGrad(g, w, dy) : null };
}

/** patchEmbed as a differentiable op (attrs: the patch size). Saves x for dW and W for dx. */
export const patchEmbedOp = defineOp<[Tensor, Tensor, Tensor], { patch: readonly [number, number, number] }>({
  name: "patchEmbed",
  forward: ([x, w, bias], { patch }) => patchEmbed(x, w, bias, patch),
  save: ([x, w], _out, { wants: [gx, gw] }) => [gw ? x : null, gx ? w : null],
  backward: ([x, w], g, { attrs: { patch }, wants: [gx, gw, gb], shapes: [xShape, wShape] }) => {
    const p: [number, number, number] = [patch[0], patch[1], patch[2]];
    return [
      gx ? patchEmbedInputGrad(w!, g, xShape!, p) : null,
      gw ? patchEmbedWeightGrad(x!, g, p, wShape![0]!) : null,
      gb ? patchEmbedBiasGrad(g) : null,
    ];
  },
});
