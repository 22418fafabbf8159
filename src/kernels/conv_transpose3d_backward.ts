// Backward of ConvTranspose3d (conv_transpose3d.ts: padding 0, no output
// padding), for any kernel/stride pair:
//   y[b, o, i·sd + a, j·sh + e, l·sw + f] += x[b, ci, i, j, l] · w[ci, o, a, e, f]
// The dy element a pair (input voxel (b, i, j, l), tap (o, a, e, f)) touches
// sits at a separable offset, tapOff(o, a, e, f) + voxOff(b, i, j, l), so
// both gradients are GEMMs whose loaders gather dy directly (conv_gemm.ts),
// with no im2col buffer and no atomics:
//   dx[b, ci, v]   = Σ_(o,a,e,f)  w[ci, (o,a,e,f)] · dy[tapOff + voxOff(b, v)]
//   dw[ci, (o,a,e,f)] = Σ_(b,v)   x[b, ci, v]       · dy[tapOff + voxOff(b, v)]
//   dbias[o]       = Σ dy[b, o, …]                  (two axis reductions)
// Overlapping taps (stride < kernel) need nothing special: each term of the
// sums above is one (voxel, tap) pair, and the pairs are independent.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { dispatchGemm, source, type GemmKernel } from "./conv_gemm.js";
import { triple, type Triple } from "./conv_transpose3d.js";
import { reduce } from "./reduce.js";

const OP = "convTranspose3dBackward";

type S5 = [number, number, number, number, number];

export interface ConvTranspose3dBackwardOptions {
  /** Default: the kernel size (as the forward). */
  stride?: number | Triple;
}

interface Geometry {
  x: S5;
  w: S5;
  dy: S5;
  s: Triple;
}

/** Checks that x [B,Cin,D,H,W], w [Cin,Cout,kd,kh,kw] and dy (the forward's output shape) agree. */
function geometry(op: string, xShape: readonly number[], wShape: readonly number[], dyShape: readonly number[], stride: number | Triple | undefined): Geometry {
  const desc = `x ${shapeStr(xShape)}, w ${shapeStr(wShape)}, dy ${shapeStr(dyShape)}`;
  if (xShape.length !== 5 || wShape.length !== 5 || dyShape.length !== 5) {
    fail(op, `expected x [B, Cin, D, H, W], w [Cin, Cout, kd, kh, kw] and dy [B, Cout, Do, Ho, Wo], got ${desc}`);
  }
  const x = [...xShape] as S5;
  const w = [...wShape] as S5;
  if (w[0] !== x[1]) fail(op, `weight has ${w[0]} input channels but x has ${x[1]} (${desc})`);
  if (x.some((d) => d < 1) || w.some((d) => d < 1)) fail(op, `empty input or weight (${desc})`);
  const s = triple(op, "stride", stride ?? [w[2], w[3], w[4]], 1);
  const want = [x[0], w[1], (x[2] - 1) * s[0] + w[2], (x[3] - 1) * s[1] + w[3], (x[4] - 1) * s[2] + w[4]];
  if (!dyShape.every((d, a) => d === want[a])) {
    fail(op, `dy must have the forward output shape ${shapeStr(want)} for stride ${shapeStr(s)}, got ${desc}`);
  }
  return { x, w, dy: want as S5, s };
}

/** WGSL offsets of dy: tap (o, a, e, f) = flat index t into w's [Cout, kd, kh, kw], voxel (b, i, j, l) = flat index into x's [B, D, H, W]. */
function dyOffsets(geo: Geometry): { tap: (t: string) => string; vox: (v: string) => string } {
  const [, , D, H, W] = geo.x;
  const [, Cout, kd, kh, kw] = geo.w;
  const [, , Do, Ho, Wo] = geo.dy;
  const [sd, sh, sw] = geo.s;
  const P = D * H * W;
  return {
    tap: (t) => `((((${t}) / ${kd * kh * kw}u) * ${Do}u + ((${t}) / ${kh * kw}u) % ${kd}u) * ${Ho}u + ((${t}) / ${kw}u) % ${kh}u) * ${Wo}u + (${t}) % ${kw}u`,
    vox: (v) =>
      `(((${v}) / ${P}u) * ${Cout * Do}u + (((${v}) % ${P}u) / ${H * W}u) * ${sd}u) * ${Ho * Wo}u + (((${v}) / ${W}u) % ${H}u) * ${sh * Wo}u + ((${v}) % ${W}u) * ${sw}u`,
  };
}

/** Four scalar gathers of a 4-wide loader, clamped to the last valid index (the GEMM ignores the clamped lanes). */
function gather4(first: string, last: string, load: (i: string) => string): string {
  return `var v = vec4<f32>(0.0);
      for (var i = 0u; i < 4u; i++) { v[i] = ${load(`min(${first} + i, ${last})`)}; }
      return v;`;
}

/** dx = Wᵀ-side GEMM: M = Cin (rows ci), N = B·D·H·W (voxels), K = Cout·kd·kh·kw (taps). */
function inputGrad(geo: Geometry, w: Tensor, dy: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const [, Cout, kd, kh, kw] = geo.w;
  const P = D * H * W;
  const K = Cout * kd * kh * kw;
  const off = dyOffsets(geo);
  const ws = source(OP, "w", w, 2, false);
  const ds = source(OP, "dy", dy, 2 + ws.bindings.length, false);
  const dx = Tensor.empty(geo.x);
  const kernel: GemmKernel = {
    key: `${OP}:dx:${shapeStr(geo.x)}:${shapeStr(geo.w)}:${geo.s.join(",")}:${ws.key}:${ds.key}`,
    // The voxels' dy offsets do not depend on k: computed once per call site and hoisted out of the k loop.
    decls: ws.decls + ds.decls + `fn vox_off(n: u32) -> u32 { return ${off.vox("n")}; }\n`,
    // A(k, m) = w[m, k]: w is [Cin, K] row-major.
    loadA: gather4("m", "GM - 1u", (i) => `w_at(${i} * ${K}u + k)`),
    loadB: `let t = ${off.tap("k")};
      ${gather4("n", "GN - 1u", (i) => `dy_at(t + vox_off(${i}))`)}`,
    rowOff: `return m * ${P}u;`,
    colOff: `let b = n / ${P}u; return b * ${Cin * P}u + n - b * ${P}u;`,
  };
  dispatchGemm(kernel, dx, { M: Cin, N: B * P, K }, [...ws.bindings, ...ds.bindings]);
  return dx;
}

/** dw GEMM: M = Cin, N = Cout·kd·kh·kw (taps), K = B·D·H·W (voxels). */
function weightGrad(geo: Geometry, x: Tensor, dy: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const [, Cout, kd, kh, kw] = geo.w;
  const P = D * H * W;
  const N = Cout * kd * kh * kw;
  const off = dyOffsets(geo);
  const xs = source(OP, "x", x, 2, false);
  const ds = source(OP, "dy", dy, 2 + xs.bindings.length, false);
  const dw = Tensor.empty(geo.w);
  const kernel: GemmKernel = {
    key: `${OP}:dw:${shapeStr(geo.x)}:${shapeStr(geo.w)}:${geo.s.join(",")}:${xs.key}:${ds.key}`,
    decls: xs.decls + ds.decls + `fn tap_off(n: u32) -> u32 { return ${off.tap("n")}; }\n`,
    // A(k, m) = x[b, m, s] for voxel k = b·P + s.
    loadA: `let b = k / ${P}u; let base = b * ${Cin * P}u + k - b * ${P}u;
      ${gather4("m", "GM - 1u", (i) => `x_at(base + ${i} * ${P}u)`)}`,
    loadB: `let vo = ${off.vox("k")};
      ${gather4("n", "GN - 1u", (i) => `dy_at(vo + tap_off(${i}))`)}`,
    rowOff: `return m * ${N}u;`,
    colOff: "return n;",
  };
  dispatchGemm(kernel, dw, { M: Cin, N, K: B * P }, [...xs.bindings, ...ds.bindings]);
  return dw;
}

/** Σ over batch and space of dy [B, Cout, …] → [Cout]. */
function biasGrad(dy: Tensor): Tensor {
  const [B, Cout] = dy.shape as [number, number];
  const S = dy.size / (B * Cout);
  const v = dy.reshape([B, Cout, S]);
  const perBatch = reduce("sum", v, 2);
  v.dispose();
  if (B === 1) {
    const out = perBatch.reshape([Cout]);
    perBatch.dispose();
    return out;
  }
  const out = reduce("sum", perBatch, 0);
  perBatch.dispose();
  return out;
}

function begin(op: string, tensors: Tensor[]): void {
  checkInputs(op, tensors);
  gpu().checkAlive(op);
}

/** dL/dx of convTranspose3d, from the weight and dy. */
export function convTranspose3dInputGrad(w: Tensor, dy: Tensor, xShape: readonly number[], opts: ConvTranspose3dBackwardOptions = {}): Tensor {
  const op = `${OP}(dx)`;
  begin(op, [w, dy]);
  return inputGrad(geometry(op, xShape, w.shape, dy.shape, opts.stride), w, dy);
}

/** dL/dw of convTranspose3d, from the input and dy. */
export function convTranspose3dWeightGrad(x: Tensor, dy: Tensor, wShape: readonly number[], opts: ConvTranspose3dBackwardOptions = {}): Tensor {
  const op = `${OP}(dw)`;
  begin(op, [x, dy]);
  return weightGrad(geometry(op, x.shape, wShape, dy.shape, opts.stride), x, dy);
}

/** dL/dbias of convTranspose3d (or of any per-channel bias on [B, C, …]): Σ of dy over batch and space. */
export function convTranspose3dBiasGrad(dy: Tensor): Tensor {
  const op = `${OP}(dbias)`;
  begin(op, [dy]);
  checkRank(op, dy, 5, "dy [B, Cout, Do, Ho, Wo]");
  if (dy.size === 0) fail(op, `empty dy ${shapeStr(dy.shape)}`);
  return biasGrad(dy);
}

/** All three gradients of y = convTranspose3d(x, w, bias, opts) given dy = dL/dy. */
export function convTranspose3dBackward(x: Tensor, w: Tensor, dy: Tensor, opts: ConvTranspose3dBackwardOptions = {}): { dx: Tensor; dw: Tensor; dbias: Tensor } {
  begin(OP, [x, w, dy]);
  checkRank(OP, x, 5, "input x [B, Cin, D, H, W]");
  checkRank(OP, w, 5, "weight w [Cin, Cout, kd, kh, kw]");
  const geo = geometry(OP, x.shape, w.shape, dy.shape, opts.stride);
  return { dx: inputGrad(geo, w, dy), dw: weightGrad(geo, x, dy), dbias: biasGrad(dy) };
}
