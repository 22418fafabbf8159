// 3-D resizing with PyTorch `F.interpolate` semantics (trilinear with either
// align_corners, nearest, nearest-exact) for [D, H, W] or [B, C, D, H, W].
//
// Why the kernel looks like this: on lavapipe every buffer load is expensive,
// so one invocation produces many outputs from few loads. An invocation owns
// one output plane (b, c, d), one "row group" of output rows h that share
// their source rows (same h0/h1, or the same nearest source row), and one
// segment of W. It walks W keeping the last two source columns in registers
// (4 values each: planes d0/d1 × rows h0/h1), so each source value is loaded
// once per invocation, and every loaded column feeds all rows of the group.
// Row groups are computed on the host (small table), splitting long groups
// so that per-row weights fit a private array.
//
// Index arithmetic mimics PyTorch's CPU kernels (float scale `in/out`, or
// `(in-1)/(out-1)` with align_corners; nearest: floor(dst*scale); exact:
// floor((dst+0.5)*scale); both clamped to in-1) so nearest results match
// bit for bit and linear weights to f32 rounding.
//
// The forward reads and writes f32 or f16 (precision.ts): source values are
// loaded into f32, blended in f32 and rounded once when stored, so nearest
// modes copy f16 values exactly. The backward is f32 only.
import { gpu } from "../tensor/device.js";
import { Tensor, numel, shapeStr } from "../tensor/tensor.js";
import { inputSegments, layoutOf, outputChunks, segmentsWgsl, type SegmentLayout } from "./binding.js";
import { variantPipeline } from "./profile.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { enableF16, precisionOf, type Precision } from "./precision.js";

export type ResizeMode = "trilinear" | "nearest" | "nearest-exact";

const MODES: readonly ResizeMode[] = ["trilinear", "nearest", "nearest-exact"];
/** Rows per group (private array length in the kernel). */
const MAXG = 8;
const WG = 64;
/** Aim for at least this many invocations per dispatch (2 cores × SIMD lanes × slack). */
const TARGET_THREADS = 4096;

const f32 = Math.fround;

/** PyTorch's source-index scale for one axis (float). */
export function axisScale(inSize: number, outSize: number, mode: ResizeMode, alignCorners: boolean): number {
  if (mode === "trilinear" && alignCorners) return outSize > 1 ? f32((inSize - 1) / (outSize - 1)) : 0;
  return f32(inSize / outSize);
}

/** Nearest / nearest-exact source index of output `dst`, as PyTorch computes it in float. */
export function nearestSource(dst: number, inSize: number, scale: number, mode: "nearest" | "nearest-exact"): number {
  const s = mode === "nearest" ? f32(dst * scale) : f32((dst + 0.5) * scale);
  return Math.min(Math.floor(s), inSize - 1);
}

/** Linear source coordinate of output `dst` (float, clamped at 0 without align_corners). */
export function linearSource(dst: number, scale: number, alignCorners: boolean): number {
  if (alignCorners) return f32(scale * dst);
  const s = f32(scale * (dst + 0.5) - 0.5);
  return s < 0 ? 0 : s;
}

interface RowGroup {
  first: number;
  count: number;
  i0: number;
  i1: number;
}

/** Output rows grouped by their source row(s); groups are contiguous and at most MAXG long. */
function rowGroups(inSize: number, outSize: number, scale: number, mode: ResizeMode, alignCorners: boolean): RowGroup[] {
  const groups: RowGroup[] = [];
  for (let o = 0; o < outSize; o++) {
    let i0: number;
    let i1: number;
    if (mode === "trilinear") {
      i0 = Math.min(Math.floor(linearSource(o, scale, alignCorners)), inSize - 1);
      i1 = Math.min(i0 + 1, inSize - 1);
    } else {
      i0 = i1 = nearestSource(o, inSize, scale, mode);
    }
    const last = groups[groups.length - 1];
    if (last && last.i0 === i0 && last.count < MAXG) last.count++;
    else groups.push({ first: o, count: 1, i0, i1 });
  }
  return groups;
}

const paramsWgsl = (vec: boolean, T: Precision) => /* wgsl */ `${enableF16(T)}
struct P {
  base: u32, count: u32, planeLo: u32, planes: u32,
  groups: u32, nseg: u32, wseg: u32, inD: u32,
  inH: u32, inW: u32, outD: u32, outH: u32,
  outW: u32, scaleD: f32, scaleW: f32, scaleH: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${vec ? `vec4<${T}>` : T}>;
@group(0) @binding(2) var<storage, read> rg: array<vec4<u32>>;
`;

/** Invocation → (plane, row group, W segment); shared prologue of both kernels. */
const PROLOGUE_WGSL = /* wgsl */ `
  let t = gid.x + gid.y * nwg.x * ${WG}u;
  let seg = t % p.nseg;
  let r = t / p.nseg;
  let gi = r % p.groups;
  let plane = p.planeLo + r / p.groups;
  if (plane >= p.planes) { return; }
  let d = plane % p.outD;
  let bc = plane / p.outD;
  let g = rg[gi];
  let ws = seg * p.wseg;
  let we = min(ws + p.wseg, p.outW);
  // First element of each output row of the group, relative to this chunk
  // (chunks hold whole rows; rows of other chunks are skipped).
  var orow: array<u32, ${MAXG}>;
  var live: array<bool, ${MAXG}>;
  for (var m = 0u; m < g.y; m++) {
    let row = (plane * p.outH + g.x + m) * p.outW;
    live[m] = row >= p.base && row < p.base + p.count;
    orow[m] = row - p.base;
  }
  let inPlane = bc * p.inD;
`;

// The output loop over W. `value(w)` sets f0 (and f1) for column w through
// the walk `colW`, whose state is private (per invocation). With vec, W is a
// multiple of 4 and each row store writes four outputs at once (stores cost
// as much as loads on lavapipe). Values are f32 until the store rounds them to T.
function storeLoop(vec: boolean, T: Precision, value: (w: string) => string, rowValue: (m: string) => string): string {
  if (!vec) {
    return `for (var w = ws; w < we; w++) {
    ${value("w")}
    for (var m = 0u; m < g.y; m++) {
      if (live[m]) { out[orow[m] + w] = ${T}(${rowValue("m")}); }
    }
  }`;
  }
  // One call site of the walk (a loop over the quad): every x_at call site
  // is inlined with its segment switch, and lavapipe's compile time grows
  // with each copy.
  return `for (var w = ws; w < we; w += 4u) {
    var q0: vec4<f32>; var q1: vec4<f32>;
    for (var k = 0u; k < 4u; k++) {
      ${value("w + k")} q0[k] = f0; q1[k] = f1;
    }
    for (var m = 0u; m < g.y; m++) {
      if (live[m]) { out[(orow[m] + w) / 4u] = vec4<${T}>(${rowValue("m").replaceAll("f0", "q0").replaceAll("f1", "q1")}); }
    }
  }`;
}

function linearWgsl(seg: SegmentLayout, alignCorners: boolean, vec: boolean, T: Precision): string {
  const src = (v: string, s: string) => (alignCorners ? `${s} * f32(${v})` : `max(${s} * (f32(${v}) + 0.5) - 0.5, 0.0)`);
  return /* wgsl */ `
${paramsWgsl(vec, T)}
${segmentsWgsl("x", 3, seg, T)}
var<private> cur: i32 = -2;
// Source values at columns c (va) and c+1 (vb) of the rows (d0,h0), (d0,h1), (d1,h0), (d1,h1).
var<private> va: array<f32, 4>;
var<private> vb: array<f32, 4>;
var<private> rows: array<u32, 4>;
var<private> ld: f32;
// Output column w blended over W and D: (value at row h0, value at row h1).
fn colW(w: u32) -> vec2<f32> {
  let sw = ${src("w", "p.scaleW")};
  let c = min(u32(sw), p.inW - 1u);
  let lw = sw - f32(c);
  if (i32(c) != cur) {
    let c1 = min(c + 1u, p.inW - 1u);
    // Moving one column right reuses the old right column; loads happen in
    // one loop so that x_at is instantiated once.
    var first = 0u;
    if (i32(c) == cur + 1) { va = vb; first = 4u; }
    for (var j = first; j < 8u; j++) {
      let v = f32(x_at(rows[j & 3u] + select(c, c1, j >= 4u)));
      if (j < 4u) { va[j] = v; } else { vb[j - 4u] = v; }
    }
    cur = i32(c);
  }
  let e00 = va[0] + lw * (vb[0] - va[0]);
  let e01 = va[1] + lw * (vb[1] - va[1]);
  let e10 = va[2] + lw * (vb[2] - va[2]);
  let e11 = va[3] + lw * (vb[3] - va[3]);
  return vec2<f32>(e00 + ld * (e10 - e00), e01 + ld * (e11 - e01));
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${PROLOGUE_WGSL}
  let sd = ${src("d", "p.scaleD")};
  let d0 = min(u32(sd), p.inD - 1u);
  let d1 = min(d0 + 1u, p.inD - 1u);
  ld = sd - f32(d0);
  var lh: array<f32, ${MAXG}>;
  for (var m = 0u; m < g.y; m++) {
    lh[m] = ${src("g.x + m", "p.scaleH")} - f32(g.z);
  }
  rows[0] = ((inPlane + d0) * p.inH + g.z) * p.inW;
  rows[1] = ((inPlane + d0) * p.inH + g.w) * p.inW;
  rows[2] = ((inPlane + d1) * p.inH + g.z) * p.inW;
  rows[3] = ((inPlane + d1) * p.inH + g.w) * p.inW;
  var f0: f32; var f1: f32;
  ${storeLoop(vec, T, (w) => `{ let f = colW(${w}); f0 = f.x; f1 = f.y; }`, (m) => `f0 + lh[${m}] * (f1 - f0)`)}
}`;
}

function nearestWgsl(seg: SegmentLayout, exact: boolean, vec: boolean, T: Precision): string {
  const src = (v: string, s: string) => (exact ? `u32(floor((f32(${v}) + 0.5) * ${s}))` : `u32(floor(f32(${v}) * ${s}))`);
  return /* wgsl */ `
${paramsWgsl(vec, T)}
${segmentsWgsl("x", 3, seg, T)}
var<private> cur: u32 = 0xffffffffu;
var<private> v: f32;
var<private> row: u32;
fn colW(w: u32) -> f32 {
  let c = min(${src("w", "p.scaleW")}, p.inW - 1u);
  if (c != cur) { v = f32(x_at(row + c)); cur = c; }
  return v;
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${PROLOGUE_WGSL}
  let sd = min(${src("d", "p.scaleD")}, p.inD - 1u);
  row = ((inPlane + sd) * p.inH + g.z) * p.inW;
  // Every row of a nearest group has the same source row: one load, many stores.
  var f0: f32; var f1: f32;
  ${storeLoop(vec, T, (w) => `f0 = colW(${w});`, () => `f0`)}
}`;
}

/** Resizes the three trailing spatial axes of a [D,H,W] or [B,C,D,H,W] f32 or f16 tensor (the result has its dtype). */
export function resize3d(x: Tensor, size: readonly [number, number, number], mode: ResizeMode, alignCorners = false): Tensor {
  const op = `resize3d(${mode})`;
  if (!MODES.includes(mode)) fail("resize3d", `unknown mode "${String(mode)}" (expected ${MODES.join(", ")})`);
  const dtype = precisionOf(op, [x]);
  checkRank(op, x, [3, 5]);
  if (!Array.isArray(size) || size.length !== 3 || size.some((s) => !Number.isInteger(s) || s < 1)) {
    fail(op, `size must be three positive integers, got [${String(size)}] for input ${shapeStr(x.shape)}`);
  }
  if (alignCorners && mode !== "trilinear") fail(op, `align_corners only applies to trilinear (input ${shapeStr(x.shape)})`);
  const [inD, inH, inW] = x.shape.slice(-3) as [number, number, number];
  if (inD < 1 || inH < 1 || inW < 1) fail(op, `cannot resize an empty input ${shapeStr(x.shape)} to ${shapeStr(size)}`);
  const [outD, outH, outW] = size;
  const outShape = [...x.shape.slice(0, -3), outD, outH, outW];
  const bcount = x.shape.slice(0, -3).reduce((a, b) => a * b, 1);
  const out = Tensor.empty(outShape, dtype);
  if (out.size === 0) return out;

  const scaleD = axisScale(inD, outD, mode, alignCorners);
  const scaleH = axisScale(inH, outH, mode, alignCorners);
  const scaleW = axisScale(inW, outW, mode, alignCorners);
  const groups = rowGroups(inH, outH, scaleH, mode, alignCorners);

  const g = gpu();
  const seg = inputSegments(op, x);
  const vec = outW % 4 === 0;
  const pipe = variantPipeline("resize3d", { mode, alignCorners, vec, dtype, x: layoutOf(seg) }, (s) =>
    s.mode === "trilinear" ? linearWgsl(s.x, s.alignCorners, s.vec, s.dtype) : nearestWgsl(s.x, s.mode === "nearest-exact", s.vec, s.dtype),
  );
  const table = new Uint32Array(groups.length * 4);
  groups.forEach((r, i) => table.set([r.first, r.count, r.i0, r.i1], i * 4));
  const tableT = Tensor.from(table, [groups.length, 4], "u32");

  const planes = bcount * outD;
  const perPlane = groups.length;
  for (const c of outputChunks(out, outW)) {
    // Planes touched by this chunk's rows; invocations cover only those.
    const rowLo = c.start / outW;
    const rowHi = (c.start + c.count) / outW;
    const planeLo = Math.floor(rowLo / outH);
    const planeHi = Math.min(planes, Math.ceil(rowHi / outH));
    const nPlanes = planeHi - planeLo;
    const nseg = Math.max(1, Math.min(Math.ceil(outW / 16), Math.ceil(TARGET_THREADS / (nPlanes * perPlane))));
    // W segments of whole quads on the vec4 path.
    const wseg = vec ? Math.ceil(outW / nseg / 4) * 4 : Math.ceil(outW / nseg);
    const params = new Params()
      .u32(c.start).u32(c.count).u32(planeLo).u32(planeHi)
      .u32(perPlane).u32(nseg).u32(wseg).u32(inD)
      .u32(inH).u32(inW).u32(outD).u32(outH)
      .u32(outW).f32(scaleD).f32(scaleW).f32(scaleH);
    const threads = nPlanes * perPlane * nseg;
    g.dispatch(pipe, [c.binding, { buffer: tableT.buffer }, ...seg.bindings], params.bytes(), g.grid(Math.ceil(threads / WG)));
  }
  // The table's buffer is referenced by the recorded dispatches; the pool
  // only recycles it for later commands, which run after these.
  tableT.dispose();
  return out;
}

// ---------------------------------------------------------------------------
// Backward of resize3d: trilinear (either align_corners),
// nearest and nearest-exact, without float atomics.
//
// The forward is separable: out = R_D ⊗ R_H ⊗ R_W applied to x, where each
// R is a [out, in] interpolation matrix with at most two non-zeros per row.
// So dx = R_Dᵀ ⊗ R_Hᵀ ⊗ R_Wᵀ applied to dy, one axis at a time. Each pass is
// a gather: input index i along the axis sums the outputs o that sample it,
//   dx_axis[.., i, ..] = Σ_{o ∈ [lo_i, hi_i)} r(o, i) · g[.., o, ..],
// where the source index of o is monotone in o, so the outputs touching i
// form one contiguous range (and a run of inputs, one contiguous run of
// outputs, which the kernel walks once). The ranges come from a small host
// table; the weights are recomputed in the kernel with the forward's own
// f32 arithmetic, so the pass is the exact transpose of what the forward
// did. Each range is widened by one output on both sides and the kernel's
// taps decide: if the GPU rounds a source coordinate differently from the
// host (fma contraction), the walk still sees every output.
//
// Passes run in the order that minimises the work (the axis that shrinks
// the most first); axes whose size is unchanged are the identity and are
// skipped.

/** Shortest input segment per invocation (except at a line's end): the walk shares each loaded output between neighbouring inputs. */
const MIN_SEG = 8;

/** The taps of output o along one axis, as the forward computes them (WGSL). */
function tapsWgsl(mode: ResizeMode, alignCorners: boolean): string {
  if (mode === "trilinear") {
    const src = alignCorners ? "p.scale * f32(o)" : "max(p.scale * (f32(o) + 0.5) - 0.5, 0.0)";
    return /* wgsl */ `
// out = x[i0] + l·(x[i1] − x[i0]): weight 1 − l on i0 and l on i1 (both on i0 when they coincide).
fn taps(o: u32) -> Taps {
  let s = ${src};
  let i0 = min(u32(s), p.Lin - 1u);
  let l = s - f32(i0);
  return Taps(i0, min(i0 + 1u, p.Lin - 1u), 1.0 - l, l);
}`;
  }
  const src = mode === "nearest" ? "floor(f32(o) * p.scale)" : "floor((f32(o) + 0.5) * p.scale)";
  return /* wgsl */ `
fn taps(o: u32) -> Taps {
  let i0 = min(u32(${src}), p.Lin - 1u);
  return Taps(i0, i0, 1.0, 0.0);
}`;
}

// One invocation owns a segment [iS, iE) of inputs along the axis for one
// (outer a, inner c) line, and walks the outputs that touch it once each:
// every dy value is loaded once per segment (not once per input it feeds),
// and the tap weights are computed once per output. Source indices are
// monotone in o, so the two accumulators a0 (input cur) and a1 (cur + 1)
// suffice: once the walk's i0 passes cur, input cur is complete.
function passWgsl(mode: ResizeMode, alignCorners: boolean, seg: SegmentLayout): string {
  return /* wgsl */ `
struct P { base: u32, count: u32, aLo: u32, threads: u32, inner: u32, Lout: u32, Lin: u32, segLen: u32, nseg: u32, scale: f32 }
struct Taps { i0: u32, i1: u32, w0: f32, w1: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> ranges: array<vec2<u32>>;
${segmentsWgsl("g", 3, seg)}
${tapsWgsl(mode, alignCorners)}
var<private> obase: u32;
// Output chunking: only elements in [p.base, p.base + p.count) are written (u32 wrap-around makes one test).
fn store(i: u32, v: f32) {
  let k = obase + i * p.inner - p.base;
  if (k < p.count) { out[k] = v; }
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${WG}u;
  if (t >= p.threads) { return; }
  let c = t % p.inner;
  let r = t / p.inner;
  let sg = r % p.nseg;
  let a = p.aLo + r / p.nseg;
  let iS = sg * p.segLen;
  let iE = min(iS + p.segLen, p.Lin);
  obase = a * p.Lin * p.inner + c;
  let lo = ranges[iS].x;
  let hi = ranges[iE - 1u].y;
  var idx = (a * p.Lout + lo) * p.inner + c;
  var cur = iS;
  var a0 = 0.0;
  var a1 = 0.0;
  for (var o = lo; o < hi; o++) {
    let q = taps(o);
    while (cur < q.i0 && cur < iE) {
      store(cur, a0);
      a0 = a1;
      a1 = 0.0;
      cur++;
    }
    if (cur == iE) { break; }
    // Now q.i0 <= cur and q.i1 <= cur + 1; taps before the segment are dropped.
    let v = g_at(idx);
    if (q.i0 == cur) { a0 = fma(q.w0, v, a0); }
    if (q.i1 == cur) { a0 = fma(q.w1, v, a0); } else if (q.i1 == cur + 1u) { a1 = fma(q.w1, v, a1); }
    idx += p.inner;
  }
  for (; cur < iE; cur++) {
    store(cur, a0);
    a0 = a1;
    a1 = 0.0;
  }
}`;
}

/** Host copy of the forward's source index along one axis (floor of the coordinate; monotone in o). */
function sourceIndex(o: number, inSize: number, scale: number, mode: ResizeMode, alignCorners: boolean): number {
  if (mode === "trilinear") return Math.min(Math.floor(linearSource(o, scale, alignCorners)), inSize - 1);
  return nearestSource(o, inSize, scale, mode);
}

/**
 * For each input index i, the outputs [lo, hi) whose weight on i may be
 * non-zero: source index in [i−1, i] (trilinear: o blends i0 and i0+1) or
 * equal to i (nearest), widened by one on each side.
 */
function rangeTable(inSize: number, outSize: number, scale: number, mode: ResizeMode, alignCorners: boolean): Uint32Array {
  const src = Array.from({ length: outSize }, (_, o) => sourceIndex(o, inSize, scale, mode, alignCorners));
  const reach = mode === "trilinear" ? 1 : 0;
  const table = new Uint32Array(2 * inSize);
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < inSize; i++) {
    while (lo < outSize && src[lo]! < i - reach) lo++;
    if (hi < lo) hi = lo;
    while (hi < outSize && src[hi]! <= i) hi++;
    table[2 * i] = Math.max(0, lo - 1);
    table[2 * i + 1] = Math.min(outSize, hi + 1);
  }
  return table;
}

interface Pass {
  /** Axis 0..2 of the spatial dims. */
  axis: number;
  inSize: number;
  outSize: number;
}

/** Pass order with the least work: cost of a pass ≈ result elements × (terms per element + overhead). */
function planPasses(inDims: readonly number[], outDims: readonly number[]): Pass[] {
  const axes = [0, 1, 2].filter((a) => inDims[a] !== outDims[a]);
  const orders: number[][] = [[]];
  for (let k = 0; k < axes.length; k++) {
    const next: number[][] = [];
    for (const o of orders) for (const a of axes) if (!o.includes(a)) next.push([...o, a]);
    orders.splice(0, orders.length, ...next);
  }
  let best: number[] = [];
  let bestCost = Infinity;
  for (const order of orders) {
    const dims = [...outDims];
    let cost = 0;
    for (const a of order) {
      const terms = outDims[a]! / inDims[a]! + 3;
      dims[a] = inDims[a]!;
      cost += numel(dims) * terms;
    }
    if (cost < bestCost) {
      bestCost = cost;
      best = order;
    }
  }
  return best.map((a) => ({ axis: a, inSize: inDims[a]!, outSize: outDims[a]! }));
}

/** One gather pass along `pass.axis` of g [lead, d0, d1, d2] (spatial dims `dims`). */
function runPass(op: string, g: Tensor, lead: number, dims: readonly number[], pass: Pass, mode: ResizeMode, alignCorners: boolean): Tensor {
  const gp = gpu();
  const resDims = dims.map((d, a) => (a === pass.axis ? pass.inSize : d));
  const out = Tensor.empty([lead, ...resDims]);
  const inner = numel(dims.slice(pass.axis + 1));
  const outer = lead * numel(dims.slice(0, pass.axis));
  const Lin = pass.inSize;
  const scale = axisScale(Lin, pass.outSize, mode, alignCorners);
  const table = Tensor.from(rangeTable(Lin, pass.outSize, scale, mode, alignCorners), [Lin, 2], "u32");
  const seg = inputSegments(op, g);
  const pipe = variantPipeline("resize3dBackward", { mode, alignCorners, g: layoutOf(seg) }, (s) => passWgsl(s.mode, s.alignCorners, s.g));
  const lineLen = Lin * inner;
  for (const c of outputChunks(out)) {
    // Lines (outer index a) that this chunk touches; segments split lines when there are too few of them.
    const aLo = Math.floor(c.start / lineLen);
    const aHi = Math.min(outer, Math.ceil((c.start + c.count) / lineLen));
    const lines = (aHi - aLo) * inner;
    const nseg = Math.min(Math.ceil(Lin / MIN_SEG), Math.max(1, Math.ceil(TARGET_THREADS / lines)));
    const segLen = Math.ceil(Lin / nseg);
    const nsegs = Math.ceil(Lin / segLen);
    const threads = lines * nsegs;
    const params = new Params()
      .u32(c.start).u32(c.count).u32(aLo).u32(threads)
      .u32(inner).u32(pass.outSize).u32(Lin).u32(segLen)
      .u32(nsegs).f32(scale);
    gp.dispatch(pipe, [c.binding, { buffer: table.buffer, offset: 0, size: table.byteLength }, ...seg.bindings], params.bytes(), gp.grid(Math.ceil(threads / WG)));
  }
  // Recorded dispatches hold the buffer; the pool reuses it only for later commands.
  table.dispose();
  return out;
}

/**
 * dL/dx of y = resize3d(x, size, mode, alignCorners) given dy = dL/dy
 * ([…lead, outD, outH, outW]); `inputShape` is x's shape ([D, H, W] or
 * [B, C, D, H, W], same leading axes as dy); f32 only.
 */
export function resize3dBackward(dy: Tensor, inputShape: readonly number[], mode: ResizeMode, alignCorners = false): Tensor {
  const op = `resize3dBackward(${mode})`;
  if (!MODES.includes(mode)) fail("resize3dBackward", `unknown mode "${String(mode)}" (expected ${MODES.join(", ")})`);
  checkInputs(op, [dy]);
  checkRank(op, dy, [3, 5], "dy");
  if (alignCorners && mode !== "trilinear") fail(op, `align_corners only applies to trilinear (dy ${shapeStr(dy.shape)})`);
  const rank = dy.rank;
  if (
    !Array.isArray(inputShape) ||
    inputShape.length !== rank ||
    inputShape.some((d, a) => !Number.isInteger(d) || d < 1 || (a < rank - 3 && d !== dy.shape[a]))
  ) {
    fail(op, `input shape ${JSON.stringify(inputShape)} must be positive integers with dy's rank and leading axes (dy ${shapeStr(dy.shape)})`);
  }
  if (dy.size === 0) fail(op, `empty dy ${shapeStr(dy.shape)}`);
  gpu().checkAlive(op);
  const inDims = inputShape.slice(-3);
  const outDims = dy.shape.slice(-3);
  const lead = numel(dy.shape.slice(0, -3));
  const passes = planPasses(inDims, outDims);
  if (passes.length === 0) {
    // Same size: the forward is the identity.
    const copy = Tensor.empty(inputShape);
    gpu().copy(dy.buffer, 0, copy.buffer, 0, Math.ceil(dy.byteLength / 4) * 4);
    return copy;
  }
  let g = dy;
  const dims = [...outDims];
  for (const pass of passes) {
    const next = runPass(op, g, lead, dims, pass, mode, alignCorners);
    if (g !== dy) g.dispose();
    g = next;
    dims[pass.axis] = pass.inSize;
  }
  const out = g.reshape(inputShape);
  g.dispose();
  return out;
}

export interface ResizeAttrs {
  size: readonly [number, number, number];
  mode: ResizeMode;
  alignCorners: boolean;
}

/** resize3d as a differentiable op: its backward needs only the input's shape. */
export const resize3dOp = defineOp<[Tensor], ResizeAttrs>({
  name: ({ mode }) => `resize3d(${mode})`,
  forward: ([x], { size, mode, alignCorners }) => resize3d(x, size, mode, alignCorners),
  backward: (_saved, g, { attrs: { mode, alignCorners }, shapes: [s] }) => [resize3dBackward(g, s!, mode, alignCorners)],
});
