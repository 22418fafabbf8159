// Backward of resize3d (resample.ts): trilinear (either align_corners),
// nearest and nearest-exact, without float atomics.
//
// The forward is separable: out = R_D ⊗ R_H ⊗ R_W applied to x, where each
// R is a [out, in] interpolation matrix with at most two non-zeros per row.
// So dx = R_Dᵀ ⊗ R_Hᵀ ⊗ R_Wᵀ applied to dy, one axis at a time. Each pass is
// a gather: input index i along the axis sums the outputs o that sample it,
//   dx_axis[.., i, ..] = Σ_{o ∈ [lo_i, hi_i)} r(o, i) · g[.., o, ..],
// where the source index of o is monotone in o, so the outputs touching i
// form one contiguous range. The ranges come from a small host table; the
// weights r(o, i) are recomputed in the kernel with the forward's own f32
// arithmetic, so the pass is the exact transpose of what the forward did.
// Each range is widened by one output on both sides and the weight decides
// (0 skips the load): if the GPU rounds a source coordinate differently
// from the host (fma contraction), the kernel still sees every output.
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
const WG = 128;

/** Weight of output o for input i along one axis, as the forward computes it (WGSL). */
function weightWgsl(mode: ResizeMode, alignCorners: boolean): string {
  if (mode === "trilinear") {
    const src = alignCorners ? "p.scale * f32(o)" : "max(p.scale * (f32(o) + 0.5) - 0.5, 0.0)";
    return /* wgsl */ `
fn weight(o: u32, i: u32) -> f32 {
  let s = ${src};
  let i0 = min(u32(s), p.Lin - 1u);
  let i1 = min(i0 + 1u, p.Lin - 1u);
  let l = s - f32(i0);
  // out = x[i0] + l·(x[i1] − x[i0]): weight 1 − l on i0 and l on i1 (1 when they coincide).
  return select(0.0, 1.0 - l, i0 == i) + select(0.0, l, i1 == i);
}`;
  }
  const src = mode === "nearest" ? "floor(f32(o) * p.scale)" : "floor((f32(o) + 0.5) * p.scale)";
  return /* wgsl */ `
fn weight(o: u32, i: u32) -> f32 {
  return select(0.0, 1.0, min(u32(${src}), p.Lin - 1u) == i);
}`;
}

function passWgsl(mode: ResizeMode, alignCorners: boolean, seg: Segments): string {
  return /* wgsl */ `
struct P { base: u32, count: u32, inner: u32, Lout: u32, Lin: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> ranges: array<vec2<u32>>;
${segmentsWgsl("g", 3, seg)}
${weightWgsl(mode, alignCorners)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${WG}u;
  if (t >= p.count) { return; }
  // Output element e = (a, i, c) of the [outer, Lin, inner] result.
  let e = p.base + t;
  let c = e % p.inner;
  let r = e / p.inner;
  let i = r % p.Lin;
  let a = r / p.Lin;
  let rg = ranges[i];
  var idx = (a * p.Lout + rg.x) * p.inner + c;
  var acc = 0.0;
  for (var o = rg.x; o < rg.y; o++) {
    let w = weight(o, i);
    if (w != 0.0) { acc = fma(w, g_at(idx), acc); }
    idx += p.inner;
  }
  out[t] = acc;
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
  const scale = axisScale(pass.inSize, pass.outSize, mode, alignCorners);
  const table = Tensor.from(rangeTable(pass.inSize, pass.outSize, scale, mode, alignCorners), [pass.inSize, 2], "u32");
  const seg = inputSegments(op, g);
  const pipe = gp.pipeline(`resize3dBackward:${mode}:${alignCorners}:${seg.key}`, () => passWgsl(mode, alignCorners, seg));
  for (const c of outputChunks(out)) {
    const params = new Params().u32(c.start).u32(c.count).u32(inner).u32(pass.outSize).u32(pass.inSize).f32(scale);
    gp.dispatch(pipe, [c.binding, { buffer: table.buffer, offset: 0, size: table.byteLength }, ...seg.bindings], params.bytes(), gp.grid(Math.ceil(c.count / WG)));
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
