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
import { checkRank, fail } from "./check.js";
import { beginBackward, dispatchGemm, source, sourcesWgsl, wholeBinding, type Dims, type GemmLoaders, type GemmSpec, type Source, type SourceLayout } from "./conv_gemm.js";
import { permute } from "./layout.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { enableF16, precisionOf, type Precision } from "./precision.js";
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

/** ConvTranspose3d in the precision of its inputs (f32 or f16, all alike; the sums in f32). */
export function convTranspose3d(x: Tensor, w: Tensor, bias?: Tensor, opts: ConvTranspose3dOptions = {}): Tensor {
  const dtype = precisionOf(OP, [x, w, bias]);
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
  const out = Tensor.empty(outShape, dtype);
  if (s[0] === kd && s[1] === kh && s[2] === kw) gemmPath(x, w, bias, out);
  else directPath(x, w, bias, out, s);
  return out;
}

/** What both forward paths' WGSL depends on: the precision, the bias, the kernel size and the sources' layouts. */
interface ConvTForwardSpec extends GemmSpec {
  kernel: Triple;
  w: SourceLayout;
  x: SourceLayout;
}

/** The GEMM path's loaders add one sample's volume [D, H, W] and Cout (Cin is GK, the batch is in GN). */
interface ConvTSpec extends ConvTForwardSpec {
  volume: Triple;
  Cout: number;
}

function convTLoaders(s: ConvTSpec): GemmLoaders {
  const [D, H, W] = s.volume;
  const [kd, kh, kw] = s.kernel;
  const k3 = kd * kh * kw;
  const P = D * H * W;
  // Output [B, Cout, D·kd, H·kh, W·kw]: row m = (o, a, bb, c) and column
  // n = (b, i, j, l) contribute separately to the flat output index.
  const Do = D * kd, Ho = H * kh, Wo = W * kw;
  return {
    decls: sourcesWgsl(s.dtype, [["w", s.w], ["x", s.x]], s.bias),
    loadA: s.w.vec4
      ? "return w4(k * p.GM + m);"
      : `let r = k * p.GM + m; let e = p.GM * p.GK - 1u;
       return vec4<f32>(w_at(min(r, e)), w_at(min(r + 1u, e)), w_at(min(r + 2u, e)), w_at(min(r + 3u, e)));`,
    // x is [B, K, P]: column n = b·P + s lives at (b·K + k)·P + s.
    loadB: s.x.vec4
      ? `let b = n / ${P}u; return x4((b * p.GK + k) * ${P}u + n - b * ${P}u);`
      : `var v = vec4<f32>(0.0);
       for (var i = 0u; i < 4u; i++) { let c = min(n + i, p.GN - 1u); let b = c / ${P}u; v[i] = x_at((b * p.GK + k) * ${P}u + c - b * ${P}u); }
       return v;`,
    rowOff: `let o = m / ${k3}u; let r = m % ${k3}u;
    return ((o * ${Do}u + r / ${kh * kw}u) * ${Ho}u + (r / ${kw}u) % ${kh}u) * ${Wo}u + r % ${kw}u;`,
    colOff: `let b = n / ${P}u; let s = n % ${P}u;
    return ((b * ${s.Cout * Do}u + (s / ${H * W}u) * ${kd}u) * ${Ho}u + ((s / ${W}u) % ${H}u) * ${kh}u) * ${Wo}u + (s % ${W}u) * ${kw}u;`,
    ...(s.bias ? { biasRow: `return f32(bias[m / ${k3}u]);` } : {}),
  };
}

/** kernel = stride: one GEMM, M = Cout·kd·kh·kw, N = B·D·H·W, K = Cin. */
function gemmPath(x: Tensor, w: Tensor, bias: Tensor | undefined, out: Tensor): void {
  const [B, Cin, D, H, W] = x.shape as [number, number, number, number, number];
  const [, Cout, kd, kh, kw] = w.shape as [number, number, number, number, number];
  const M = Cout * kd * kh * kw;
  const P = D * H * W;
  const ws = source(OP, w, M % 4 === 0);
  const xs = source(OP, x, P % 4 === 0);
  const spec: ConvTSpec = { dtype: out.dtype as Precision, bias: !!bias, kernel: [kd, kh, kw], w: ws.layout, x: xs.layout, volume: [D, H, W], Cout };
  const inputs = [...ws.bindings, ...xs.bindings, ...(bias ? [wholeBinding(bias)] : [])];
  dispatchGemm({ kernel: OP, spec, loaders: convTLoaders }, out, { M, N: B * P, K: Cin }, inputs);
}

const WG = 128;

/** The direct kernel adds the stride (its sizes are uniforms). */
interface DirectSpec extends ConvTForwardSpec {
  stride: Triple;
}

// Taps along one axis: output z receives input i with kernel offset a = z - i·s, 0 ≤ a < k.
function directWgsl(spec: DirectSpec): string {
  const [kd, kh, kw] = spec.kernel;
  const s = spec.stride;
  return /* wgsl */ `${enableF16(spec.dtype)}
struct P { n: u32, base: u32, Cin: u32, Cout: u32, D: u32, H: u32, W: u32, Do: u32, Ho: u32, Wo: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${spec.dtype}>;
${sourcesWgsl(spec.dtype, [["x", spec.x], ["w", spec.w]], spec.bias)}
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
  var acc = ${spec.bias ? "f32(bias[o])" : "0.0"};
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
  out[t] = ${spec.dtype}(acc);
}`;
}

/** General kernel/stride: one invocation per output voxel, summing the taps that land on it (in f32). */
function directPath(x: Tensor, w: Tensor, bias: Tensor | undefined, out: Tensor, s: Triple): void {
  const g = gpu();
  const [, Cin, D, H, W] = x.shape as [number, number, number, number, number];
  const [, Cout, kd, kh, kw] = w.shape as [number, number, number, number, number];
  const [, , Do, Ho, Wo] = out.shape as [number, number, number, number, number];
  const xs = source(OP, x, false);
  const ws = source(OP, w, false);
  const spec: DirectSpec = { dtype: out.dtype as Precision, bias: !!bias, kernel: [kd, kh, kw], w: ws.layout, x: xs.layout, stride: s };
  const pipe = variantPipeline("convT-direct", spec, directWgsl);
  const extra = [...xs.bindings, ...ws.bindings, ...(bias ? [wholeBinding(bias)] : [])];
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

/** One sample's shapes, what the backward loaders' index math needs: x's volume [D, H, W], w's shape, the stride (the batch is a uniform). */
interface Sample {
  volume: Triple;
  w: S5;
  s: Triple;
}

function sampleOf(geo: Geometry): Sample {
  return { volume: [geo.x[2], geo.x[3], geo.x[4]], w: geo.w, s: geo.s };
}

/** What a backward GEMM's loaders depend on (f32 only): the sample and the layouts of its two sources. */
interface GradSpec extends GemmSpec, Sample {
  a: SourceLayout;
  b: SourceLayout;
}

/** WGSL offsets of dy: tap (o, a, e, f) = flat index t into w's [Cout, kd, kh, kw], voxel (b, i, j, l) = flat index into x's [B, D, H, W]. */
function dyOffsets(g: Sample): { tap: (t: string) => string; vox: (v: string) => string } {
  const [D, H, W] = g.volume;
  const [, Cout, kd, kh, kw] = g.w;
  const [sd, sh, sw] = g.s;
  const Do = (D - 1) * sd + kd, Ho = (H - 1) * sh + kh, Wo = (W - 1) * sw + kw;
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
 * A(k, m) = w[m, k] (w is [Cin, K] row-major), B(k, n) = dy at tap k of voxel n.
 */
function inputGradGatherLoaders(s: GradSpec): GemmLoaders {
  const [D, H, W] = s.volume;
  const [Cin, Cout, kd, kh, kw] = s.w;
  const P = D * H * W;
  const K = Cout * kd * kh * kw;
  const off = dyOffsets(s);
  return {
    decls: sourcesWgsl(s.dtype, [["w", s.a], ["dy", s.b]]) + cachedOffsets("rows_a", "p.GM - 1u", (j) => `(${j}) * ${K}u`) + cachedOffsets("vox_b", "p.GN - 1u", off.vox),
    loadA: load4("w_at", "k", "rows_a(m)"),
    loadB: load4("dy_at", off.tap("k"), "vox_b(n)"),
    rowOff: `return m * ${P}u;`,
    colOff: `let b = n / ${P}u; return b * ${Cin * P}u + n - b * ${P}u;`,
  };
}

/** A backward GEMM (`grad` names it) on the sources a and b, into a new f32 tensor of `shape`. */
function gradGemm(grad: "dx" | "dw", loaders: (s: GradSpec) => GemmLoaders, geo: Geometry, a: Source, b: Source, shape: S5, dims: Dims): Tensor {
  const out = Tensor.empty(shape);
  const spec: GradSpec = { dtype: "f32", bias: false, ...sampleOf(geo), a: a.layout, b: b.layout };
  dispatchGemm({ kernel: `${BACKWARD_OP}(${grad})`, spec, loaders }, out, dims, [...a.bindings, ...b.bindings]);
  return out;
}

function inputGradGather(geo: Geometry, w: Tensor, dy: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const [, Cout, kd, kh, kw] = geo.w;
  const dims = { M: Cin, N: B * D * H * W, K: Cout * kd * kh * kw };
  return gradGemm("dx", inputGradGatherLoaders, geo, source(BACKWARD_OP, w, false), source(BACKWARD_OP, dy, false), geo.x, dims);
}

/**
 * dw GEMM on the gathers: M = Cin, N = Cout·kd·kh·kw (taps), K = B·D·H·W
 * (voxels). A(k, m) = x[b, m, s] for voxel k = b·P + s, B(k, n) = dy at tap
 * n of voxel k.
 */
function weightGradGatherLoaders(s: GradSpec): GemmLoaders {
  const [D, H, W] = s.volume;
  const [Cin, Cout, kd, kh, kw] = s.w;
  const P = D * H * W;
  const N = Cout * kd * kh * kw;
  const off = dyOffsets(s);
  return {
    decls: sourcesWgsl(s.dtype, [["x", s.a], ["dy", s.b]]) + cachedOffsets("rows_a", "p.GM - 1u", (j) => `(${j}) * ${P}u`) + cachedOffsets("taps_b", "p.GN - 1u", off.tap),
    loadA: `let b = k / ${P}u; ${load4("x_at", `b * ${(Cin - 1) * P}u + k`, "rows_a(m)")}`,
    loadB: load4("dy_at", off.vox("k"), "taps_b(n)"),
    rowOff: `return m * ${N}u;`,
    colOff: "return n;",
  };
}

function weightGradGather(geo: Geometry, x: Tensor, dy: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const [, Cout, kd, kh, kw] = geo.w;
  const dims = { M: Cin, N: Cout * kd * kh * kw, K: B * D * H * W };
  return gradGemm("dw", weightGradGatherLoaders, geo, source(BACKWARD_OP, x, false), source(BACKWARD_OP, dy, false), geo.w, dims);
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

function vecSource(t: Tensor): Source {
  const s = source(BACKWARD_OP, t, true);
  if (!s.layout.vec4) fail(BACKWARD_OP, `internal: ${shapeStr(t.shape)} is not vec4-bindable`);
  return s;
}

/** dx GEMM on vec4 operands: A(k, m) = wT[k, m], B(k, n) = dyR[b, k, s]. */
function inputGradVecLoaders(s: GradSpec): GemmLoaders {
  const [D, H, W] = s.volume;
  const Cin = s.w[0];
  const P = D * H * W;
  return {
    decls: sourcesWgsl(s.dtype, [["w", s.a], ["dy", s.b]]),
    loadA: "return w4(k * p.GM + m);",
    loadB: `let b = n / ${P}u; return dy4((b * p.GK + k) * ${P}u + n - b * ${P}u);`,
    rowOff: `return m * ${P}u;`,
    colOff: `let b = n / ${P}u; return b * ${Cin * P}u + n - b * ${P}u;`,
  };
}

function inputGradVec(geo: Geometry, w: Tensor, dyR: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const K = dyR.shape[1]!;
  const wT = transposeLast(w, [Cin, K]);
  const dx = gradGemm("dx", inputGradVecLoaders, geo, vecSource(wT), vecSource(dyR), geo.x, { M: Cin, N: B * D * H * W, K });
  // Recorded dispatches hold the buffers; the pool reuses them only for later commands.
  wT.dispose();
  return dx;
}

/** dw GEMM on vec4 operands: A(k, m) = xT[k, m], B(k, n) = dyT[k, n], k over B·P voxels. */
function weightGradVecLoaders(s: GradSpec): GemmLoaders {
  const [, Cout, kd, kh, kw] = s.w;
  return {
    decls: sourcesWgsl(s.dtype, [["x", s.a], ["dy", s.b]]),
    loadA: "return x4(k * p.GM + m);",
    loadB: "return dy4(k * p.GN + n);",
    rowOff: `return m * ${Cout * kd * kh * kw}u;`,
    colOff: "return n;",
  };
}

function weightGradVec(geo: Geometry, x: Tensor, dyR: Tensor): Tensor {
  const [B, Cin, D, H, W] = geo.x;
  const P = D * H * W;
  const K = dyR.shape[1]!;
  const xT = transposeLast(x, [B, Cin, P]);
  const dyT = transposeLast(dyR, [B, K, P]);
  const dw = gradGemm("dw", weightGradVecLoaders, geo, vecSource(xT), vecSource(dyT), geo.w, { M: Cin, N: K, K: B * P });
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

/** dL/dx of convTranspose3d, from the weight and dy. */
export function convTranspose3dInputGrad(w: Tensor, dy: Tensor, xShape: readonly number[], opts: ConvTranspose3dBackwardOptions = {}): Tensor {
  const op = `${BACKWARD_OP}(dx)`;
  beginBackward(op, [w, dy]);
  return inputGrad(geometry(op, xShape, w.shape, dy.shape, opts.stride), w, dy);
}

/** dL/dw of convTranspose3d, from the input and dy. */
export function convTranspose3dWeightGrad(x: Tensor, dy: Tensor, wShape: readonly number[], opts: ConvTranspose3dBackwardOptions = {}): Tensor {
  const op = `${BACKWARD_OP}(dw)`;
  beginBackward(op, [x, dy]);
  return weightGrad(geometry(op, x.shape, wShape, dy.shape, opts.stride), x, dy);
}

/** dL/dbias of convTranspose3d (or of any per-channel bias on [B, C, …]): Σ of dy over batch and space. */
export function convTranspose3dBiasGrad(dy: Tensor): Tensor {
  const op = `${BACKWARD_OP}(dbias)`;
  beginBackward(op, [dy]);
  checkRank(op, dy, 5, "dy [B, Cout, Do, Ho, Wo]");
  if (dy.size === 0) fail(op, `empty dy ${shapeStr(dy.shape)}`);
  return biasGrad(dy);
}

/** dL/dx and dL/dw together (on the vector path they share one tap-major copy of dy). */
export function convTranspose3dInputWeightGrads(x: Tensor, w: Tensor, dy: Tensor, opts: ConvTranspose3dBackwardOptions = {}): { dx: Tensor; dw: Tensor } {
  beginBackward(BACKWARD_OP, [x, w, dy]);
  return inputAndWeightGrads(geometry(BACKWARD_OP, x.shape, w.shape, dy.shape, opts.stride), x, w, dy);
}

/** All three gradients of y = convTranspose3d(x, w, bias, opts) given dy = dL/dy. */
export function convTranspose3dBackward(x: Tensor, w: Tensor, dy: Tensor, opts: ConvTranspose3dBackwardOptions = {}): { dx: Tensor; dw: Tensor; dbias: Tensor } {
  beginBackward(BACKWARD_OP, [x, w, dy]);
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
