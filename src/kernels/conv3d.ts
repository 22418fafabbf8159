// Conv3d (PyTorch semantics: cross-correlation, zero padding, no dilation or
// groups). x [B, Cin, D, H, W], w [Cout, Cin, kd, kh, kw], bias [Cout] →
// [B, Cout, D', H', W'] with D' = ⌊(D + 2·pd − kd) / sd⌋ + 1 (same for H, W).
//
// Implicit GEMM on the shared core (conv_gemm.ts): rows m = output channel,
// columns n = (batch, output voxel), k = (ci, a, b, c). The im2col matrix is
// never materialised: load_b gathers the 4 input voxels of a column group at
// one tap, 0 where the tap falls in the padding. SegVol's checkpoint has no
// Conv3d on its inference path, so this favours generality over speed.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { dispatchGemm, source, type GemmKernel } from "./conv_gemm.js";
import { checkBias, triple, type Triple } from "./conv_transpose3d.js";

export interface Conv3dOptions {
  stride?: number | Triple;
  padding?: number | Triple;
}

const OP = "conv3d";

export function conv3d(x: Tensor, w: Tensor, bias?: Tensor, opts: Conv3dOptions = {}): Tensor {
  checkInputs(OP, bias ? [x, w, bias] : [x, w]);
  checkRank(OP, x, 5, "input x [B, Cin, D, H, W]");
  checkRank(OP, w, 5, "weight w [Cout, Cin, kd, kh, kw]");
  const [B, Cin, D, H, W] = x.shape as [number, number, number, number, number];
  const [Cout, wCin, kd, kh, kw] = w.shape as [number, number, number, number, number];
  if (wCin !== Cin) {
    fail(OP, `weight ${shapeStr(w.shape)} expects ${wCin} input channels but x ${shapeStr(x.shape)} has ${Cin}`);
  }
  if (Cout < 1 || kd < 1 || kh < 1 || kw < 1) fail(OP, `empty weight ${shapeStr(w.shape)}`);
  checkBias(OP, bias, Cout);
  const s = triple(OP, "stride", opts.stride ?? 1, 1);
  const pad = triple(OP, "padding", opts.padding ?? 0, 0);
  const outDim = (n: number, k: number, i: number) => Math.floor((n + 2 * pad[i]! - k) / s[i]!) + 1;
  const Do = outDim(D, kd, 0), Ho = outDim(H, kh, 1), Wo = outDim(W, kw, 2);
  if (B < 1 || Cin < 1 || Do < 1 || Ho < 1 || Wo < 1) {
    fail(OP, `kernel ${shapeStr([kd, kh, kw])} with padding ${shapeStr(pad)} does not fit input ${shapeStr(x.shape)}`);
  }
  gpu().checkAlive(OP);
  const out = Tensor.empty([B, Cout, Do, Ho, Wo]);
  const Po = Do * Ho * Wo;
  const K = Cin * kd * kh * kw;
  const ws = source(OP, "w", w, 2, false);
  const xs = source(OP, "x", x, 2 + ws.bindings.length, false);
  const nb = 2 + ws.bindings.length + xs.bindings.length;
  // Column n = b·Po + (od, oh, ow) reads x[b, ci, od·sd − pd + a, …] at tap k = (ci, a, bb, c).
  const tap = (ax: string, o: string, st: number, p: number, size: number) =>
    `let ${ax} = i32(${o} * ${st}u + ${ax}k) - ${p}; ok = ok && ${ax} >= 0 && ${ax} < ${size};`;
  const kernel: GemmKernel = {
    key: `${OP}:${shapeStr(x.shape)}:${shapeStr(w.shape)}:${s.join(",")}:${pad.join(",")}:${ws.key}:${xs.key}:${bias ? "b" : "nb"}`,
    decls: ws.decls + xs.decls + (bias ? `@group(0) @binding(${nb}) var<storage, read> bias: array<f32>;\n` : ""),
    loadA: `let e = GM - 1u;
      return vec4<f32>(w_at(min(m, e) * ${K}u + k), w_at(min(m + 1u, e) * ${K}u + k), w_at(min(m + 2u, e) * ${K}u + k), w_at(min(m + 3u, e) * ${K}u + k));`,
    loadB: `let ci = k / ${kd * kh * kw}u; let r = k % ${kd * kh * kw}u;
      let dk = r / ${kh * kw}u; let hk = (r / ${kw}u) % ${kh}u; let wk = r % ${kw}u;
      var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) {
        let c = min(n + i, GN - 1u);
        let b = c / ${Po}u; let q = c % ${Po}u;
        let od = q / ${Ho * Wo}u; let oh = (q / ${Wo}u) % ${Ho}u; let ow = q % ${Wo}u;
        var ok = true;
        ${tap("d", "od", s[0], pad[0], D)}
        ${tap("h", "oh", s[1], pad[1], H)}
        ${tap("w", "ow", s[2], pad[2], W)}
        let idx = (((b * ${Cin}u + ci) * ${D}u + u32(max(d, 0))) * ${H}u + u32(max(h, 0))) * ${W}u + u32(max(w, 0));
        v[i] = select(0.0, x_at(idx), ok);
      }
      return v;`,
    rowOff: `return m * ${Po}u;`,
    colOff: `let b = n / ${Po}u; return b * ${Cout * Po}u + n - b * ${Po}u;`,
  };
  if (bias) kernel.biasRow = "return bias[m];";
  const inputs = [...ws.bindings, ...xs.bindings, ...(bias ? [{ buffer: bias.buffer, offset: 0, size: bias.byteLength }] : [])];
  dispatchGemm(kernel, out, { M: Cout, N: B * Po, K }, inputs);
  return out;
}
