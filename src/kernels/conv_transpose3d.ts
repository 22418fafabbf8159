// ConvTranspose3d (PyTorch semantics, padding 0, no output padding).
// x [B, Cin, D, H, W], w [Cin, Cout, kd, kh, kw], bias [Cout] →
// [B, Cout, (D-1)·sd + kd, (H-1)·sh + kh, (W-1)·sw + kw].
//
// SegVol's case, kernel = stride (2, 2, 2), has no overlapping taps: every
// input voxel times w[:, :, a, b, c] gives exactly one output voxel. That is
// one GEMM, C[(o, a, b, c), voxel] = Σ_ci w[ci, (o, a, b, c)] · x[ci, voxel],
// whose rows are contiguous in w and whose columns are contiguous in x, so
// both operands load as vec4 (conv_gemm.ts); the store scatters each element
// to its output voxel. Other kernel/stride pairs use a direct gather kernel
// (each output voxel sums its valid taps): correct, not tuned.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { outputChunks } from "./binding.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { dispatchGemm, source, type GemmKernel } from "./conv_gemm.js";
import { Params } from "./params.js";

export type Triple = [number, number, number];

export interface ConvTranspose3dOptions {
  /** Default: the kernel size. */
  stride?: number | Triple;
}

const OP = "convTranspose3d";

export function triple(op: string, name: string, v: number | readonly number[], min: number): Triple {
  const t = (typeof v === "number" ? [v, v, v] : [...v]) as Triple;
  if (t.length !== 3 || !t.every((d) => Number.isInteger(d) && d >= min)) {
    fail(op, `${name} must be an integer ≥ ${min} or three of them, got ${JSON.stringify(v)}`);
  }
  return t;
}

export function checkBias(op: string, bias: Tensor | undefined, cout: number): void {
  if (bias && (bias.rank !== 1 || bias.shape[0] !== cout)) {
    fail(op, `bias must have shape [${cout}] (one per output channel), got ${shapeStr(bias.shape)}`);
  }
}

export function convTranspose3d(x: Tensor, w: Tensor, bias?: Tensor, opts: ConvTranspose3dOptions = {}): Tensor {
  checkInputs(OP, bias ? [x, w, bias] : [x, w]);
  checkRank(OP, x, 5, "input x [B, Cin, D, H, W]");
  checkRank(OP, w, 5, "weight w [Cin, Cout, kd, kh, kw]");
  const [B, Cin, D, H, W] = x.shape as unknown as number[] as [number, number, number, number, number];
  const [wCin, Cout, kd, kh, kw] = w.shape as unknown as number[] as [number, number, number, number, number];
  if (wCin !== Cin) {
    fail(OP, `weight ${shapeStr(w.shape)} expects ${wCin} input channels but x ${shapeStr(x.shape)} has ${Cin}`);
  }
  if (kd < 1 || kh < 1 || kw < 1 || Cout < 1) fail(OP, `empty weight ${shapeStr(w.shape)}`);
  checkBias(OP, bias, Cout);
  const s = triple(OP, "stride", opts.stride ?? [kd, kh, kw], 1);
  const outShape = [B, Cout, (D - 1) * s[0] + kd, (H - 1) * s[1] + kh, (W - 1) * s[2] + kw];
  if (B === 0 || Cin === 0 || D * H * W === 0) fail(OP, `empty input ${shapeStr(x.shape)}`);
  gpu().checkAlive(OP);
  const out = Tensor.empty(outShape);
  if (s[0] === kd && s[1] === kh && s[2] === kw) gemmPath(x, w, bias, out);
  else directPath(x, w, bias, out, s);
  return out;
}

/** kernel = stride: one GEMM, M = Cout·kd·kh·kw, N = B·D·H·W, K = Cin. */
function gemmPath(x: Tensor, w: Tensor, bias: Tensor | undefined, out: Tensor): void {
  const [B, Cin, D, H, W] = x.shape as [number, number, number, number, number];
  const [, Cout, kd, kh, kw] = w.shape as [number, number, number, number, number];
  const k3 = kd * kh * kw;
  const M = Cout * k3;
  const P = D * H * W;
  const N = B * P;
  const ws = source(OP, "w", w, 2, M % 4 === 0);
  const xs = source(OP, "x", x, 2 + ws.bindings.length, P % 4 === 0);
  const nb = 2 + ws.bindings.length + xs.bindings.length;
  const biasDecl = bias ? `@group(0) @binding(${nb}) var<storage, read> bias: array<f32>;\n` : "";
  const loadA = ws.vec4
    ? "return w4(k * GM + m);"
    : `let r = k * GM + m; let e = GM * GK - 1u;
       return vec4<f32>(w_at(min(r, e)), w_at(min(r + 1u, e)), w_at(min(r + 2u, e)), w_at(min(r + 3u, e)));`;
  // x is [B, K, P]: column n = b·P + s lives at (b·K + k)·P + s.
  const loadB = xs.vec4
    ? `let b = n / ${P}u; return x4((b * GK + k) * ${P}u + n - b * ${P}u);`
    : `var v = vec4<f32>(0.0);
       for (var i = 0u; i < 4u; i++) { let c = min(n + i, GN - 1u); let b = c / ${P}u; v[i] = x_at((b * GK + k) * ${P}u + c - b * ${P}u); }
       return v;`;
  // Output [B, Cout, D·kd, H·kh, W·kw]: row m = (o, a, bb, c) and column
  // n = (b, i, j, l) contribute separately to the flat output index.
  const Do = D * kd, Ho = H * kh, Wo = W * kw;
  const rowOff = `let o = m / ${k3}u; let r = m % ${k3}u;
    return ((o * ${Do}u + r / ${kh * kw}u) * ${Ho}u + (r / ${kw}u) % ${kh}u) * ${Wo}u + r % ${kw}u;`;
  const colOff = `let b = n / ${P}u; let s = n % ${P}u;
    return ((b * ${Cout * Do}u + (s / ${H * W}u) * ${kd}u) * ${Ho}u + ((s / ${W}u) % ${H}u) * ${kh}u) * ${Wo}u + (s % ${W}u) * ${kw}u;`;
  // Sizes are baked into the WGSL: the store's divisions become multiplications.
  const kernel: GemmKernel = {
    key: `${OP}:${shapeStr(x.shape)}:${shapeStr(w.shape)}:${ws.key}:${xs.key}:${bias ? "b" : "nb"}`,
    decls: ws.decls + xs.decls + biasDecl,
    loadA,
    loadB,
    rowOff,
    colOff,
  };
  if (bias) kernel.biasRow = `return bias[m / ${k3}u];`;
  const inputs = [...ws.bindings, ...xs.bindings, ...(bias ? [{ buffer: bias.buffer, offset: 0, size: bias.byteLength }] : [])];
  dispatchGemm(kernel, out, { M, N, K: Cin }, inputs);
}

const WG = 128;

/** General kernel/stride: one invocation per output voxel, summing the taps that land on it. */
function directPath(x: Tensor, w: Tensor, bias: Tensor | undefined, out: Tensor, s: Triple): void {
  const g = gpu();
  const [, Cin, D, H, W] = x.shape as [number, number, number, number, number];
  const [, Cout, kd, kh, kw] = w.shape as [number, number, number, number, number];
  const [, , Do, Ho, Wo] = out.shape as [number, number, number, number, number];
  const xs = source(OP, "x", x, 2, false);
  const ws = source(OP, "w", w, 2 + xs.bindings.length, false);
  const nb = 2 + xs.bindings.length + ws.bindings.length;
  const biasDecl = bias ? `@group(0) @binding(${nb}) var<storage, read> bias: array<f32>;\n` : "";
  // Taps along one axis: output z receives input i with kernel offset a = z - i·s, 0 ≤ a < k.
  const code = () => /* wgsl */ `
struct P { n: u32, base: u32, Cin: u32, Cout: u32, D: u32, H: u32, W: u32, Do: u32, Ho: u32, Wo: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${xs.decls}${ws.decls}${biasDecl}
fn first_tap(z: u32, s: u32, k: u32) -> u32 { return select(0u, (z - k + s) / s, z + 1u > k); }
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${WG}u;
  if (t >= p.n) { return; }
  let e = p.base + t;
  let ow = e % p.Wo; let oh = (e / p.Wo) % p.Ho; let od = (e / (p.Wo * p.Ho)) % p.Do;
  let bo = e / (p.Wo * p.Ho * p.Do); let o = bo % p.Cout; let b = bo / p.Cout;
  let i0 = first_tap(od, ${s[0]}u, ${kd}u); let i1 = min(od / ${s[0]}u + 1u, p.D);
  let j0 = first_tap(oh, ${s[1]}u, ${kh}u); let j1 = min(oh / ${s[1]}u + 1u, p.H);
  let l0 = first_tap(ow, ${s[2]}u, ${kw}u); let l1 = min(ow / ${s[2]}u + 1u, p.W);
  var acc = ${bias ? "bias[o]" : "0.0"};
  for (var c = 0u; c < p.Cin; c++) {
    let xc = (b * p.Cin + c) * p.D;
    let wc = (c * p.Cout + o) * ${kd}u;
    for (var i = i0; i < i1; i++) {
      for (var j = j0; j < j1; j++) {
        for (var l = l0; l < l1; l++) {
          let xv = x_at(((xc + i) * p.H + j) * p.W + l);
          let wv = w_at(((wc + od - i * ${s[0]}u) * ${kh}u + oh - j * ${s[1]}u) * ${kw}u + ow - l * ${s[2]}u);
          acc = fma(xv, wv, acc);
        }
      }
    }
  }
  out[t] = acc;
}`;
  const pipe = g.pipeline(`convT-direct:${kd}${kh}${kw}:${s.join("")}:${xs.key}:${ws.key}:${bias ? "b" : "nb"}`, code);
  const extra = [...xs.bindings, ...ws.bindings, ...(bias ? [{ buffer: bias.buffer, offset: 0, size: bias.byteLength }] : [])];
  for (const ch of outputChunks(out)) {
    const pr = new Params().u32(ch.count).u32(ch.start).u32(Cin).u32(Cout).u32(D).u32(H).u32(W).u32(Do).u32(Ho).u32(Wo);
    g.dispatch(pipe, [ch.binding, ...extra], pr.bytes(), g.grid(Math.ceil(ch.count / WG)));
  }
}
