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
