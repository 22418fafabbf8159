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
import { checkRank, fail } from "./check.js";
import { dispatchGemm, source, sourcesWgsl, wholeBinding, type GemmLoaders, type GemmSpec, type SourceLayout } from "./conv_gemm.js";
import { checkBias, triple, type Triple } from "./conv_transpose3d.js";
import { precisionOf } from "./precision.js";

export interface Conv3dOptions {
  stride?: number | Triple;
  padding?: number | Triple;
}

const OP = "conv3d";

/** What conv3d's loaders depend on: one sample's geometry (the batch is GN's uniform), the sources, the precision. */
interface Conv3dSpec extends GemmSpec {
  /** x's [Cin, D, H, W] and the output's [Cout, Do, Ho, Wo]. */
  input: [number, number, number, number];
  output: [number, number, number, number];
  kernel: Triple;
  stride: Triple;
  pad: Triple;
  w: SourceLayout;
  x: SourceLayout;
}

/** Column n = b·Po + (od, oh, ow) reads x[b, ci, od·sd − pd + a, …] at tap k = (ci, a, bb, c). */
function conv3dLoaders(s: Conv3dSpec): GemmLoaders {
  const [Cin, D, H, W] = s.input;
  const [Cout, Do, Ho, Wo] = s.output;
  const [kd, kh, kw] = s.kernel;
  const Po = Do * Ho * Wo;
  const K = Cin * kd * kh * kw;
  const tap = (ax: string, o: string, st: number, p: number, size: number) =>
    `let ${ax} = i32(${o} * ${st}u + ${ax}k) - ${p}; ok = ok && ${ax} >= 0 && ${ax} < ${size};`;
  return {
    decls: sourcesWgsl(s.dtype, [["w", s.w], ["x", s.x]], s.bias),
    loadA: `let e = p.GM - 1u;
      return vec4<f32>(w_at(min(m, e) * ${K}u + k), w_at(min(m + 1u, e) * ${K}u + k), w_at(min(m + 2u, e) * ${K}u + k), w_at(min(m + 3u, e) * ${K}u + k));`,
    loadB: `let ci = k / ${kd * kh * kw}u; let r = k % ${kd * kh * kw}u;
      let dk = r / ${kh * kw}u; let hk = (r / ${kw}u) % ${kh}u; let wk = r % ${kw}u;
      var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) {
        let c = min(n + i, p.GN - 1u);
        let b = c / ${Po}u; let q = c % ${Po}u;
        let od = q / ${Ho * Wo}u; let oh = (q / ${Wo}u) % ${Ho}u; let ow = q % ${Wo}u;
        var ok = true;
        ${tap("d", "od", s.stride[0], s.pad[0], D)}
        ${tap("h", "oh", s.stride[1], s.pad[1], H)}
        ${tap("w", "ow", s.stride[2], s.pad[2], W)}
        let idx = (((b * ${Cin}u + ci) * ${D}u + u32(max(d, 0))) * ${H}u + u32(max(h, 0))) * ${W}u + u32(max(w, 0));
        v[i] = select(0.0, x_at(idx), ok);
      }
      return v;`,
    rowOff: `return m * ${Po}u;`,
    colOff: `let b = n / ${Po}u; return b * ${Cout * Po}u + n - b * ${Po}u;`,
    ...(s.bias ? { biasRow: "return f32(bias[m]);" } : {}),
  };
}

/** Conv3d in the precision of its inputs (f32 or f16, all alike; the sums in f32). */
export function conv3d(x: Tensor, w: Tensor, bias?: Tensor, opts: Conv3dOptions = {}): Tensor {
  const dtype = precisionOf(OP, [x, w, bias]);
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
  const out = Tensor.empty([B, Cout, Do, Ho, Wo], dtype);
  const ws = source(OP, w, false);
  const xs = source(OP, x, false);
  const spec: Conv3dSpec = {
    dtype, bias: !!bias, input: [Cin, D, H, W], output: [Cout, Do, Ho, Wo], kernel: [kd, kh, kw], stride: s, pad, w: ws.layout, x: xs.layout,
  };
  const inputs = [...ws.bindings, ...xs.bindings, ...(bias ? [wholeBinding(bias)] : [])];
  dispatchGemm({ kernel: OP, spec, loaders: conv3dLoaders }, out, { M: Cout, N: B * Do * Ho * Wo, K: Cin * kd * kh * kw }, inputs);
  return out;
}
