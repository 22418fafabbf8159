// SegVol's "perceptron" patch embedding (spec section 2 step 1): the
// rearrange `b c (d p1) (h p2) (w p3) -> b (d h w) (p1 p2 p3 c)` followed by
// nn.Linear, fused into one GEMM (conv_gemm.ts) whose loader gathers the
// patch vectors straight from the volume:
//   tokens[b, t, o] = bias[o] + Σ_k v_t[k] · w[o, k],  t = (i·h' + j)·w' + k',
//   v_t[((q1·p2 + q2)·p3 + q3)·C + c] = x[b, c, i·p1 + q1, j·p2 + q2, k'·p3 + q3].
// Rows m are tokens (over the batch), columns n are hidden features.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { checkRank, fail } from "./check.js";
import { beginBackward, dispatchGemm, source, sourcesWgsl, wholeBinding, type GemmLoaders, type GemmSpec, type SourceLayout } from "./conv_gemm.js";
import { defineOp } from "./op.js";
import { precisionOf } from "./precision.js";
import { reduce } from "./reduce.js";

const OP = "patchEmbed";

/** One sample's volume [C, D, H, W] and the patch: what the loaders' index math needs (the batch is a uniform). */
interface PatchGeometry {
  volume: [number, number, number, number];
  patch: [number, number, number];
}

/** What patchEmbed's loaders depend on. */
interface PatchEmbedSpec extends GemmSpec, PatchGeometry {
  x: SourceLayout;
  w: SourceLayout;
}

/** Tokens per sample and features per patch (Kp = p1·p2·p3·C). */
function patchSizes({ volume: [C, D, H, W], patch: [p1, p2, p3] }: PatchGeometry): { gh: number; gw: number; T: number; Kp: number } {
  const gh = H / p2, gw = W / p3;
  return { gh, gw, T: (D / p1) * gh * gw, Kp: p1 * p2 * p3 * C };
}

function patchEmbedLoaders(s: PatchEmbedSpec): GemmLoaders {
  const [C, D, H, W] = s.volume;
  const [p1, p2, p3] = s.patch;
  const { gh, gw, T, Kp } = patchSizes(s);
  return {
    decls: sourcesWgsl(s.dtype, [["x", s.x], ["w", s.w]], true),
    // A(k, m) = v_m[k]: k = (q1, q2, q3, c) is shared by the 4 tokens.
    loadA: `let c = k % ${C}u; let q = k / ${C}u;
      let q3 = q % ${p3}u; let q2 = (q / ${p3}u) % ${p2}u; let q1 = q / ${p2 * p3}u;
      var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) {
        let t = min(m + i, p.GM - 1u);
        let b = t / ${T}u; let r = t % ${T}u;
        let gi = r / ${gh * gw}u; let gj = (r / ${gw}u) % ${gh}u; let gk = r % ${gw}u;
        v[i] = x_at((((b * ${C}u + c) * ${D}u + gi * ${p1}u + q1) * ${H}u + gj * ${p2}u + q2) * ${W}u + gk * ${p3}u + q3);
      }
      return v;`,
    // B(k, n) = w[n, k].
    loadB: `let e = p.GN - 1u;
      return vec4<f32>(w_at(min(n, e) * ${Kp}u + k), w_at(min(n + 1u, e) * ${Kp}u + k), w_at(min(n + 2u, e) * ${Kp}u + k), w_at(min(n + 3u, e) * ${Kp}u + k));`,
    rowOff: "return m * p.GN;",
    colOff: "return n;",
    biasCol: "return f32(bias[n]);",
  };
}

/** The patch embedding in the precision of its inputs (f32 or f16, all alike; the sums in f32). */
export function patchEmbed(x: Tensor, w: Tensor, bias: Tensor, patch: readonly [number, number, number]): Tensor {
  const dtype = precisionOf(OP, [x, w, bias]);
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
  const geometry: PatchGeometry = { volume: [C, D, H, W], patch: [p1, p2, p3] };
  const { T } = patchSizes(geometry);
  const out = Tensor.empty([B, T, hidden], dtype);
  const xs = source(OP, x, false);
  const ws = source(OP, w, false);
  const spec: PatchEmbedSpec = { dtype, bias: true, ...geometry, x: xs.layout, w: ws.layout };
  const inputs = [...xs.bindings, ...ws.bindings, wholeBinding(bias)];
  dispatchGemm({ kernel: OP, spec, loaders: patchEmbedLoaders }, out, { M: B * T, N: hidden, K: Kp }, inputs);
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

/** The backward's shapes: one sample's geometry, the batch and the hidden size. */
interface Geometry extends PatchGeometry {
  B: number;
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
  const g: Geometry = { B, hidden, volume: [C, D, H, W], patch: [p1, p2, p3] };
  const { T } = patchSizes(g);
  if (dyShape[0] !== B || dyShape[1] !== T || dyShape[2] !== hidden) {
    fail(op, `dy must have the forward output shape ${shapeStr([B, T, hidden])} (${desc})`);
  }
  return g;
}

/**
 * Offsets into x of token t (over the batch: its patch's corner) and of
 * patch feature k = ((q1·p2 + q2)·p3 + q3)·C + c (within the patch); the
 * element is at tok(t) + feat(k).
 */
function xOffsets(g: PatchGeometry): { tok: (t: string) => string; feat: (k: string) => string } {
  const [C, D, H, W] = g.volume;
  const p = g.patch;
  const { gh, gw, T } = patchSizes(g);
  return {
    tok: (t) =>
      `((${t}) / ${T}u) * ${C * D * H * W}u + (((${t}) % ${T}u) / ${gh * gw}u) * ${p[0] * H * W}u + (((${t}) / ${gw}u) % ${gh}u) * ${p[1] * W}u + ((${t}) % ${gw}u) * ${p[2]}u`,
    feat: (k) =>
      `((${k}) % ${C}u) * ${D * H * W}u + ((${k}) / ${C * p[1] * p[2]}u) * ${H * W}u + (((${k}) / ${C * p[2]}u) % ${p[1]}u) * ${W}u + ((${k}) / ${C}u) % ${p[2]}u`,
  };
}

/** What a backward GEMM's loaders depend on (f32 only): one sample's geometry, dy's layout and the other source's (x for dW, w for dx). */
interface PatchGradSpec extends GemmSpec, PatchGeometry {
  dy: SourceLayout;
  other: SourceLayout;
}

/** dW [hidden, Kp]: M = hidden, N = Kp, K = B·T (tokens); A(k, m) = dy[token k, feature m], B(k, n) = v_k[n] gathered from x. */
function weightGradLoaders(s: PatchGradSpec): GemmLoaders {
  const off = xOffsets(s);
  return {
    decls: sourcesWgsl(s.dtype, [["dy", s.dy], ["x", s.other]]) + `fn feat_off(k: u32) -> u32 { return ${off.feat("k")}; }\n`,
    loadA: s.dy.vec4
      ? "return dy4(k * p.GM + m);"
      : `var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) { v[i] = dy_at(k * p.GM + min(m + i, p.GM - 1u)); }
      return v;`,
    loadB: s.other.vec4
      ? `return x4(${off.tok("k")} + feat_off(n));`
      : `let t = ${off.tok("k")};
      var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) { v[i] = x_at(t + feat_off(min(n + i, p.GN - 1u))); }
      return v;`,
    rowOff: `return m * ${patchSizes(s).Kp}u;`,
    colOff: "return n;",
  };
}

function weightGrad(g: Geometry, x: Tensor, dy: Tensor): Tensor {
  const { hidden, B, patch } = g;
  const { T, Kp } = patchSizes(g);
  // One channel with rows of whole vec4s in the patch: the 4 features n..n+3
  // are 4 neighbouring voxels, 16-byte aligned (n, p3 and W are multiples of 4).
  const xVec = g.volume[0] === 1 && patch[2] % 4 === 0;
  const ds = source(BACKWARD_OP, dy, hidden % 4 === 0);
  const xs = source(BACKWARD_OP, x, xVec);
  const dw = Tensor.empty([hidden, Kp]);
  const spec: PatchGradSpec = { dtype: "f32", bias: false, volume: g.volume, patch, dy: ds.layout, other: xs.layout };
  dispatchGemm({ kernel: `${BACKWARD_OP}(dw)`, spec, loaders: weightGradLoaders }, dw, { M: hidden, N: Kp, K: B * T }, [...ds.bindings, ...xs.bindings]);
  return dw;
}

/** dx [B, C, D, H, W]: M = B·T (tokens), N = Kp (patch features), K = hidden; A(k, m) = dy[token m, feature k], B(k, n) = w[k, n]. */
function inputGradLoaders(s: PatchGradSpec): GemmLoaders {
  const off = xOffsets(s);
  return {
    decls: sourcesWgsl(s.dtype, [["dy", s.dy], ["w", s.other]]),
    loadA: `var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) { v[i] = dy_at(min(m + i, p.GM - 1u) * p.GK + k); }
      return v;`,
    loadB: s.other.vec4
      ? "return w4(k * p.GN + n);"
      : `var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) { v[i] = w_at(k * p.GN + min(n + i, p.GN - 1u)); }
      return v;`,
    rowOff: `return ${off.tok("m")};`,
    colOff: `return ${off.feat("n")};`,
  };
}

function inputGrad(g: Geometry, w: Tensor, dy: Tensor): Tensor {
  const { hidden, B, volume, patch } = g;
  const { T, Kp } = patchSizes(g);
  const ds = source(BACKWARD_OP, dy, false);
  const ws = source(BACKWARD_OP, w, Kp % 4 === 0);
  const dx = Tensor.empty([B, ...volume]);
  const spec: PatchGradSpec = { dtype: "f32", bias: false, volume, patch, dy: ds.layout, other: ws.layout };
  dispatchGemm({ kernel: `${BACKWARD_OP}(dx)`, spec, loaders: inputGradLoaders }, dx, { M: B * T, N: Kp, K: hidden }, [...ds.bindings, ...ws.bindings]);
  return dx;
}

/** Σ over tokens of dy [B, T, hidden] → [hidden]. */
function biasGrad(dy: Tensor, hidden: number): Tensor {
  const v = dy.reshape([-1, hidden]);
  const out = reduce("sum", v, 0);
  v.dispose();
  return out;
}

/** dL/dW of patchEmbed, from the volume and dy [B, tokens, hidden]. */
export function patchEmbedWeightGrad(x: Tensor, dy: Tensor, patch: readonly [number, number, number], hidden = dy.shape[2] ?? 0): Tensor {
  const op = `${BACKWARD_OP}(dw)`;
  beginBackward(op, [x, dy]);
  const C = x.shape[1] ?? 0;
  return weightGrad(geometry(op, x.shape, [hidden, patch[0] * patch[1] * patch[2] * C], dy.shape, patch), x, dy);
}

/** dL/dx of patchEmbed, from the weight and dy. */
export function patchEmbedInputGrad(w: Tensor, dy: Tensor, xShape: readonly number[], patch: readonly [number, number, number]): Tensor {
  const op = `${BACKWARD_OP}(dx)`;
  beginBackward(op, [w, dy]);
  return inputGrad(geometry(op, xShape, w.shape, dy.shape, patch), w, dy);
}

/** dL/dbias of patchEmbed (of any Linear): Σ of dy [..., hidden] over all but the last axis. */
export function patchEmbedBiasGrad(dy: Tensor): Tensor {
  const op = `${BACKWARD_OP}(dbias)`;
  beginBackward(op, [dy]);
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
  beginBackward(BACKWARD_OP, [x, w, dy]);
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
