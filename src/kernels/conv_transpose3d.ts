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
import { Tensor, numel, shapeStr } from "../tensor/tensor.js";
import { outputChunks } from "./binding.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { dispatchGemm, source, type GemmKernel } from "./conv_gemm.js";
import { permute } from "./layout.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { variantPipeline } from "./profile.js";
import { reduce } from "./reduce.js";

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
  // The sources' keys name their declarations (vec4 or segment layout); the rest is here.
  const pipe = variantPipeline("convT-direct", { kd, kh, kw, s: s.join(","), x: xs.key, w: ws.key, bias: !!bias }, code);
  const extra = [...xs.bindings, ...ws.bindings, ...(bias ? [{ buffer: bias.buffer, offset: 0, size: bias.byteLength }] : [])];
  for (const ch of outputChunks(out)) {
    const pr = new Params().u32(ch.count).u32(ch.start).u32(Cin).u32(Cout).u32(D).u32(H).u32(W).u32(Do).u32(Ho).u32(Wo);
    g.dispatch(pipe, [ch.binding, ...extra], pr.bytes(), g.grid(Math.ceil(ch.count / WG)));
  }
}

// ---------------------------------------------------------------------------
// Backward of ConvTranspose3d (padding 0, no output
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
// That gather path serves every shape; SegVol's kernel = stride case takes
// a vector path (see vectorPath below) whose GEMMs load like the forward's.

const BACKWARD_OP = "convTranspose3dBackward";

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

/**
 * WGSL for a loader's four per-lane offsets: `fn NAME(j: u32) -> vec4<u32>`
 * returns off(min(j + i, last)) for i = 0..3, computed on the first call and
 * cached in private memory: j (the lane's m or n) is the same on every k
 * step, so the divisions need not rely on the compiler hoisting them out of
 * the k loop (on lavapipe it made no measurable difference: the four scalar
 * loads per operand dominate, hence the vector path below).
 */
function cachedOffsets(name: string, last: string, off: (j: string) => string): string {
  const one = (i: number) => off(`min(j + ${i}u, ${last})`);
  return `var<private> ${name}_key: u32 = 0xffffffffu;
var<private> ${name}_val: vec4<u32>;
fn ${name}(j: u32) -> vec4<u32> {
  if (j != ${name}_key) {
    ${name}_key = j;
    ${name}_val = vec4<u32>(${one(0)}, ${one(1)}, ${one(2)}, ${one(3)});
  }
  return ${name}_val;
}
`;
}

/** Four scalar loads at base + offsets. */
const load4 = (at: string, base: string, offs: string) =>
  `let o = ${offs}; return vec4<f32>(${at}(${base} + o.x), ${at}(${base} + o.y), ${at}(${base} + o.z), ${at}(${base} + o.w));`;

/**
 * dx GEMM on the gathers: M = Cin (rows ci), N = B·D·H·W (voxels), K =
 * Cout·kd·kh·kw (taps); any stride, any sizes, inputs in segments.
 */
function inputGradGather(geo: Geometry, w: Tensor, dy: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const [, Cout, kd, kh, kw] = geo.w;
  const P = D * H * W;
  const K = Cout * kd * kh * kw;
  const off = dyOffsets(geo);
  const ws = source(BACKWARD_OP, "w", w, 2, false);
  const ds = source(BACKWARD_OP, "dy", dy, 2 + ws.bindings.length, false);
  const dx = Tensor.empty(geo.x);
  const kernel: GemmKernel = {
    key: `${BACKWARD_OP}:dx:${shapeStr(geo.x)}:${shapeStr(geo.w)}:${geo.s.join(",")}:${ws.key}:${ds.key}`,
    decls: ws.decls + ds.decls + cachedOffsets("rows_a", "GM - 1u", (j) => `(${j}) * ${K}u`) + cachedOffsets("vox_b", "GN - 1u", off.vox),
    // A(k, m) = w[m, k]: w is [Cin, K] row-major.
    loadA: load4("w_at", "k", "rows_a(m)"),
    // B(k, n) = dy at tap k of voxel n.
    loadB: load4("dy_at", off.tap("k"), "vox_b(n)"),
    rowOff: `return m * ${P}u;`,
    colOff: `let b = n / ${P}u; return b * ${Cin * P}u + n - b * ${P}u;`,
  };
  dispatchGemm(kernel, dx, { M: Cin, N: B * P, K }, [...ws.bindings, ...ds.bindings]);
  return dx;
}

/** dw GEMM on the gathers: M = Cin, N = Cout·kd·kh·kw (taps), K = B·D·H·W (voxels). */
function weightGradGather(geo: Geometry, x: Tensor, dy: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const [, Cout, kd, kh, kw] = geo.w;
  const P = D * H * W;
  const N = Cout * kd * kh * kw;
  const off = dyOffsets(geo);
  const xs = source(BACKWARD_OP, "x", x, 2, false);
  const ds = source(BACKWARD_OP, "dy", dy, 2 + xs.bindings.length, false);
  const dw = Tensor.empty(geo.w);
  const kernel: GemmKernel = {
    key: `${BACKWARD_OP}:dw:${shapeStr(geo.x)}:${shapeStr(geo.w)}:${geo.s.join(",")}:${xs.key}:${ds.key}`,
    decls: xs.decls + ds.decls + cachedOffsets("rows_a", "GM - 1u", (j) => `(${j}) * ${P}u`) + cachedOffsets("taps_b", "GN - 1u", off.tap),
    // A(k, m) = x[b, m, s] for voxel k = b·P + s.
    loadA: `let b = k / ${P}u; ${load4("x_at", `b * ${(Cin - 1) * P}u + k`, "rows_a(m)")}`,
    // B(k, n) = dy at tap n of voxel k.
    loadB: load4("dy_at", off.vox("k"), "taps_b(n)"),
    rowOff: `return m * ${N}u;`,
    colOff: "return n;",
  };
  dispatchGemm(kernel, dw, { M: Cin, N, K: B * P }, [...xs.bindings, ...ds.bindings]);
  return dw;
}

// The vector path (kernel = stride, SegVol's case). Taps do not overlap, so
// dy is a permutation of the [B, K, P] matrix dyR[b, tap, voxel]; with it
// (and its transpose dyT [B, P, K], xT [B, P, Cin], wT [K, Cin]) both
// gradients are GEMMs whose operands are contiguous along the GEMM's m and
// n, i.e. one vec4 load each per k step, as in the forward. The four copies
// are memory passes (together ~15-40% of one GEMM at SegVol's sizes) that
// buy ~2x on the GEMMs, where the gathers need four scalar loads per operand.

/** Whether the vector path applies: kernel = stride, vec4-aligned sizes, every copy in one binding. */
function vectorPath(geo: Geometry, dy: Tensor): boolean {
  const [, Cin, D, H, W] = geo.x;
  const [, Cout, kd, kh, kw] = geo.w;
  const K = Cout * kd * kh * kw;
  const same = geo.s[0] === kd && geo.s[1] === kh && geo.s[2] === kw;
  const fits = Math.max(dy.byteLength, 4 * numel(geo.x), 4 * numel(geo.w)) <= gpu().maxBindingBytes;
  return same && fits && Cin % 4 === 0 && (D * H * W) % 4 === 0 && K % 4 === 0;
}

/** dy [B, Cout, D·kd, H·kh, W·kw] → dyR [B, K, P] (tap-major, voxels contiguous). */
function tapMajor(geo: Geometry, dy: Tensor): Tensor {
  const [B, , D, H, W] = geo.x;
  const [, Cout, kd, kh, kw] = geo.w;
  const v = dy.reshape([B, Cout, D, kd, H, kh, W, kw]);
  const r = permute(v, [0, 1, 3, 5, 7, 2, 4, 6]);
  v.dispose();
  const out = r.reshape([B, Cout * kd * kh * kw, D * H * W]);
  r.dispose();
  return out;
}

/** The last two axes of a [..., r, c] tensor swapped. */
function transposeLast(t: Tensor, shape: readonly number[]): Tensor {
  const v = t.reshape(shape);
  const perm = shape.map((_, a) => a);
  perm.splice(-2, 2, shape.length - 1, shape.length - 2);
  const out = permute(v, perm);
  v.dispose();
  return out;
}

function vecSource(name: string, t: Tensor, first: number): ReturnType<typeof source> {
  const s = source(BACKWARD_OP, name, t, first, true);
  if (!s.vec4) fail(BACKWARD_OP, `internal: ${name} ${shapeStr(t.shape)} is not vec4-bindable`);
  return s;
}

/** dx = wT-side GEMM: A(k, m) = wT[k, m], B(k, n) = dyR[b, k, s]. */
function inputGradVec(geo: Geometry, w: Tensor, dyR: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const P = D * H * W;
  const K = dyR.shape[1]!;
  const wT = transposeLast(w, [Cin, K]);
  const ws = vecSource("w", wT, 2);
  const ds = vecSource("dy", dyR, 3);
  const dx = Tensor.empty(geo.x);
  const kernel: GemmKernel = {
    key: `${BACKWARD_OP}:dxv:${shapeStr(geo.x)}:${shapeStr(geo.w)}`,
    decls: ws.decls + ds.decls,
    loadA: "return w4(k * GM + m);",
    loadB: `let b = n / ${P}u; return dy4((b * GK + k) * ${P}u + n - b * ${P}u);`,
    rowOff: `return m * ${P}u;`,
    colOff: `let b = n / ${P}u; return b * ${Cin * P}u + n - b * ${P}u;`,
  };
  dispatchGemm(kernel, dx, { M: Cin, N: B * P, K }, [...ws.bindings, ...ds.bindings]);
  // Recorded dispatches hold the buffers; the pool reuses them only for later commands.
  wT.dispose();
  return dx;
}

/** dw GEMM: A(k, m) = xT[k, m], B(k, n) = dyT[k, n], k over B·P voxels. */
function weightGradVec(geo: Geometry, x: Tensor, dyR: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const P = D * H * W;
  const K = dyR.shape[1]!;
  const xT = transposeLast(x, [B, Cin, P]);
  const dyT = transposeLast(dyR, [B, K, P]);
  const xs = vecSource("x", xT, 2);
  const ds = vecSource("dy", dyT, 3);
  const dw = Tensor.empty(geo.w);
  const kernel: GemmKernel = {
    key: `${BACKWARD_OP}:dwv:${shapeStr(geo.x)}:${shapeStr(geo.w)}`,
    decls: xs.decls + ds.decls,
    loadA: "return x4(k * GM + m);",
    loadB: "return dy4(k * GN + n);",
    rowOff: `return m * ${K}u;`,
    colOff: "return n;",
  };
  dispatchGemm(kernel, dw, { M: Cin, N: K, K: B * P }, [...xs.bindings, ...ds.bindings]);
  xT.dispose();
  dyT.dispose();
  return dw;
}

function inputGrad(geo: Geometry, w: Tensor, dy: Tensor): Tensor {
  if (!vectorPath(geo, dy)) return inputGradGather(geo, w, dy);
  const dyR = tapMajor(geo, dy);
  const dx = inputGradVec(geo, w, dyR);
  dyR.dispose();
  return dx;
}

function weightGrad(geo: Geometry, x: Tensor, dy: Tensor): Tensor {
  if (!vectorPath(geo, dy)) return weightGradGather(geo, x, dy);
  const dyR = tapMajor(geo, dy);
  const dw = weightGradVec(geo, x, dyR);
  dyR.dispose();
  return dw;
}

/** Both gradients, sharing one tap-major copy of dy on the vector path. */
function inputAndWeightGrads(geo: Geometry, x: Tensor, w: Tensor, dy: Tensor): { dx: Tensor; dw: Tensor } {
  if (!vectorPath(geo, dy)) return { dx: inputGradGather(geo, w, dy), dw: weightGradGather(geo, x, dy) };
  const dyR = tapMajor(geo, dy);
  const dx = inputGradVec(geo, w, dyR);
  const dw = weightGradVec(geo, x, dyR);
  dyR.dispose();
  return { dx, dw };
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
  const op = `${BACKWARD_OP}(dx)`;
  begin(op, [w, dy]);
  return inputGrad(geometry(op, xShape, w.shape, dy.shape, opts.stride), w, dy);
}

/** dL/dw of convTranspose3d, from the input and dy. */
export function convTranspose3dWeightGrad(x: Tensor, dy: Tensor, wShape: readonly number[], opts: ConvTranspose3dBackwardOptions = {}): Tensor {
  const op = `${BACKWARD_OP}(dw)`;
  begin(op, [x, dy]);
  return weightGrad(geometry(op, x.shape, wShape, dy.shape, opts.stride), x, dy);
}

/** dL/dbias of convTranspose3d (or of any per-channel bias on [B, C, …]): Σ of dy over batch and space. */
export function convTranspose3dBiasGrad(dy: Tensor): Tensor {
  const op = `${BACKWARD_OP}(dbias)`;
  begin(op, [dy]);
  checkRank(op, dy, 5, "dy [B, Cout, Do, Ho, Wo]");
  if (dy.size === 0) fail(op, `empty dy ${shapeStr(dy.shape)}`);
  return biasGrad(dy);
}

/** dL/dx and dL/dw together (on the vector path they share one tap-major copy of dy). */
export function convTranspose3dInputWeightGrads(x: Tensor, w: Tensor, dy: Tensor, opts: ConvTranspose3dBackwardOptions = {}): { dx: Tensor; dw: Tensor } {
  begin(BACKWARD_OP, [x, w, dy]);
  return inputAndWeightGrads(geometry(BACKWARD_OP, x.shape, w.shape, dy.shape, opts.stride), x, w, dy);
}

/** All three gradients of y = convTranspose3d(x, w, bias, opts) given dy = dL/dy. */
export function convTranspose3dBackward(x: Tensor, w: Tensor, dy: Tensor, opts: ConvTranspose3dBackwardOptions = {}): { dx: Tensor; dw: Tensor; dbias: Tensor } {
  begin(BACKWARD_OP, [x, w, dy]);
  checkRank(BACKWARD_OP, x, 5, "input x [B, Cin, D, H, W]");
  checkRank(BACKWARD_OP, w, 5, "weight w [Cin, Cout, kd, kh, kw]");
  const geo = geometry(BACKWARD_OP, x.shape, w.shape, dy.shape, opts.stride);
  return { ...inputAndWeightGrads(geo, x, w, dy), dbias: biasGrad(dy) };
}

/**
 * ConvTranspose3d as a differentiable op: x [B, Cin, D, H, W], w [Cin, Cout,
 * kd, kh, kw], bias [Cout] or absent. Saves x for dW and W for dx.
 */
export const convTranspose3dOp = defineOp<[Tensor, Tensor, Tensor | null], ConvTranspose3dOptions>({
  name: "convTranspose3d",
  forward: ([x, w, bias], opts) => convTranspose3d(x, w, bias ?? undefined, opts),
  save: ([x, w], _out, { wants: [gx, gw] }) => [gw ? x : null, gx ? w : null],
  backward: ([x, w], g, { attrs, wants: [gx, gw, gb], shapes: [xShape, wShape] }) => {
    // The forward validated shapes; the stride defaults to the kernel size.
    const stride: Triple = triple("convTranspose3d", "stride", attrs.stride ?? wShape!.slice(2), 1);
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (gx && gw) ({ dx, dw } = convTranspose3dInputWeightGrads(x!, w!, g, { stride }));
    else if (gx) dx = convTranspose3dInputGrad(w!, g, xShape!, { stride });
    else if (gw) dw = convTranspose3dWeightGrad(x!, g, wShape!, { stride });
    return [dx, dw, gb ? convTranspose3dBiasGrad(g) : null];
  },
});
