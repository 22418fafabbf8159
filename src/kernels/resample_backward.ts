// Backward of resize3d (resample.ts): trilinear (either align_corners),
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
import { gpu } from "../tensor/device.js";
import { Tensor, numel, shapeStr } from "../tensor/tensor.js";
import { inputSegments, outputChunks, segmentsWgsl, type Segments } from "./binding.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { Params } from "./params.js";
import { axisScale, linearSource, nearestSource, type ResizeMode } from "./resample.js";

const MODES: readonly ResizeMode[] = ["trilinear", "nearest", "nearest-exact"];
const WG = 64;
/** Aim for at least this many invocations per pass (2 cores × SIMD lanes × slack). */
const TARGET_THREADS = 4096;
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
function passWgsl(mode: ResizeMode, alignCorners: boolean, seg: Segments): string {
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
  const pipe = gp.pipeline(`resize3dBackward:${mode}:${alignCorners}:${seg.key}`, () => passWgsl(mode, alignCorners, seg));
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
 * [B, C, D, H, W], same leading axes as dy).
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
