// Layout ops: slice, pad, permute (one strided-gather kernel), concat,
// gather (embedding lookup) and cast. All of them work for tensors larger
// than one storage binding: outputs are written per binding-sized chunk,
// inputs are read through segments.
import { gpu } from "../tensor/device.js";
import { Tensor, numel, shapeStr, type DType } from "../tensor/tensor.js";
import { inputSegments, layoutOf, outputChunks, segmentsWgsl, type SegmentLayout } from "./binding.js";
import { variantPipeline } from "./profile.js";
import { checkInputs, fail, normAxis } from "./check.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { checkF16, enableF16, precisionOf, type Precision } from "./precision.js";

const WG = 256;
const MAX_RANK = 8;
const LAYOUT_DTYPES: readonly DType[] = ["f32", "f16", "i32", "u32"];

function padTo(v: readonly number[], fill: number): number[] {
  const out = [...v];
  while (out.length < MAX_RANK) out.push(fill);
  return out;
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** Bits of a scalar in the element type's 32-bit carrier (f16 travels as f32). */
function valueBits(value: number, dtype: DType): number {
  const buf = new ArrayBuffer(4);
  if (dtype === "i32") new Int32Array(buf)[0] = value;
  else if (dtype === "u32") new Uint32Array(buf)[0] = value;
  else new Float32Array(buf)[0] = value;
  return new Uint32Array(buf)[0]!;
}

function fromBits(dtype: DType): string {
  if (dtype === "f16") return "f16(bitcast<f32>(p.value))";
  return `bitcast<${dtype}>(p.value)`;
}

// ---------------------------------------------------------------------------
// Strided gather: out[c] = x[sum((c[a] + off[a]) * stride[a])] where every
// c[a] + off[a] lies in [0, extent[a]), else `value`. Slice (off = start),
// pad (off = −before) and permute (permuted strides) are all this kernel.

interface Gather {
  outShape: number[];
  off: number[];
  extent: number[];
  stride: number[];
  value: number;
}

/** Output elements per invocation: one multi-index decomposition serves a run along the last axis. */
const RUN = 16;

function stridedWgsl(dtype: DType, seg: SegmentLayout, header: string, rank: number): string {
  const L = rank - 1;
  const at = (arr: string, d: number) => `p.${arr}[${d >> 2}][${d & 3}]`;
  // Decomposition unrolled per axis (rank is part of the pipeline key).
  let locate = `  var rem = g;
`;
  for (let d = L; d >= 0; d--) {
    locate += `  { let c = rem % ${at("shape", d)}; rem = rem / ${at("shape", d)};
`;
    if (d === L) {
      locate += `    ol = c; cl = i32(c) + ${at("off", d)}; }
`;
    } else {
      locate += `    let s = i32(c) + ${at("off", d)};
`;
      locate += `    inside = inside && s >= 0 && u32(s) < ${at("extent", d)};
`;
      locate += `    src += u32(s) * ${at("stride", d)}; }
`;
    }
  }
  return /* wgsl */ `${header}
struct P {
  n: u32, base: u32, rank: u32, value: u32,
  shape: array<vec4<u32>, 2>, extent: array<vec4<u32>, 2>, stride: array<vec4<u32>, 2>, off: array<vec4<i32>, 2>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${dtype}>;
${segmentsWgsl("x", 2, seg, dtype)}
// Position of output element g: source offset of its row (axes < last),
// whether the row lies inside the source, and its last-axis coordinates.
var<private> src: u32;
var<private> inside: bool;
var<private> cl: i32;
var<private> ol: u32;
fn locate(g: u32) {
  src = 0u;
  inside = true;
${locate}}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${WG}u;
  let first = t * ${RUN}u;
  if (first >= p.n) { return; }
  let end = min(first + ${RUN}u, p.n);
  locate(p.base + first);
  for (var i = first; i < end; i++) {
    if (inside && cl >= 0 && u32(cl) < ${at("extent", L)}) {
      out[i] = x_at(src + u32(cl) * ${at("stride", L)});
    } else {
      out[i] = ${fromBits(dtype)};
    }
    cl += 1;
    ol += 1u;
    if (ol == ${at("shape", L)}) { locate(p.base + i + 1u); }
  }
}`;
}

/**
 * Merges adjacent output axes that are one run in the source (the inner one
 * whole, unpadded and contiguous with the outer): fewer axes to decompose.
 */
function mergeAxes(gsp: Gather): Gather {
  const r: Gather = { outShape: [gsp.outShape[0]!], off: [gsp.off[0]!], extent: [gsp.extent[0]!], stride: [gsp.stride[0]!], value: gsp.value };
  for (let a = 1; a < gsp.outShape.length; a++) {
    const k = r.outShape.length - 1;
    const full = gsp.off[a] === 0 && gsp.outShape[a] === gsp.extent[a];
    if (full && r.stride[k] === gsp.stride[a]! * gsp.extent[a]!) {
      r.outShape[k] = r.outShape[k]! * gsp.outShape[a]!;
      r.off[k] = r.off[k]! * gsp.extent[a]!;
      r.extent[k] = r.extent[k]! * gsp.extent[a]!;
      r.stride[k] = gsp.stride[a]!;
    } else {
      r.outShape.push(gsp.outShape[a]!);
      r.off.push(gsp.off[a]!);
      r.extent.push(gsp.extent[a]!);
      r.stride.push(gsp.stride[a]!);
    }
  }
  return r;
}

function runStrided(op: string, x: Tensor, spec: Gather): Tensor {
  const g = gpu();
  checkF16(op, [x.dtype]);
  const out = Tensor.empty(spec.outShape, x.dtype);
  if (out.size === 0) return out;
  if (x.size === 0) {
    // Pad of an empty tensor: every element is the fill value; bind a dummy input.
    const dummy = Tensor.zeros([1], x.dtype);
    const r = runStrided(op, dummy, { ...spec, extent: spec.extent.map(() => 0) });
    dummy.dispose();
    out.dispose();
    return r;
  }
  // Rank-0 tensors become [1]; then merge axes.
  const gsp = mergeAxes(
    spec.outShape.length > 0 ? spec : { outShape: [1], off: [0], extent: [1], stride: [1], value: spec.value },
  );
  const rank = gsp.outShape.length;
  const seg = inputSegments(op, x);
  const pipe = variantPipeline("strided", { dtype: x.dtype, rank, x: layoutOf(seg) }, (s) => stridedWgsl(s.dtype, s.x, enableF16([s.dtype]), s.rank));
  for (const c of outputChunks(out)) {
    const params = new Params().u32(c.count).u32(c.start).u32(rank).u32(valueBits(gsp.value, x.dtype));
    for (const v of padTo(gsp.outShape, 1)) params.u32(v);
    for (const v of padTo(gsp.extent, 1)) params.u32(v);
    for (const v of padTo(gsp.stride, 0)) params.u32(v);
    for (const v of padTo(gsp.off, 0)) params.i32(v);
    g.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), g.grid(Math.ceil(c.count / RUN / WG)));
  }
  return out;
}

function checkLayoutInput(op: string, x: Tensor): void {
  checkInputs(op, [x], LAYOUT_DTYPES);
  if (x.rank > MAX_RANK) fail(op, `rank ${x.rank} exceeds ${MAX_RANK} for ${shapeStr(x.shape)}`);
}

/** x[s0:e0, s1:e1, …]; fewer entries than the rank keep the trailing axes whole. Negative indices count from the end. */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  checkLayoutInput("slice", x);
  if (starts.length !== ends.length || starts.length > x.rank) {
    fail("slice", `starts [${starts.join(", ")}] and ends [${ends.join(", ")}] must have equal length ≤ rank of ${shapeStr(x.shape)}`);
  }
  const lo: number[] = [];
  const hi: number[] = [];
  x.shape.forEach((dim, a) => {
    let s = a < starts.length ? starts[a]! : 0;
    let e = a < ends.length ? ends[a]! : dim;
    if (!Number.isInteger(s) || !Number.isInteger(e)) fail("slice", `non-integer bounds on axis ${a} of ${shapeStr(x.shape)}`);
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (s < 0 || e > dim || s > e) {
      fail("slice", `range [${starts[a]}, ${ends[a]}) is out of bounds for axis ${a} of ${shapeStr(x.shape)}`);
    }
    lo.push(s);
    hi.push(e);
  });
  const outShape = lo.map((s, a) => hi[a]! - s);
  return runStrided("slice", x, { outShape, off: lo, extent: [...x.shape], stride: stridesOf(x.shape), value: 0 });
}

/** Constant padding: `pads[a] = [before, after]` for the leading axes (missing trailing axes are not padded). */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  checkLayoutInput("pad", x);
  if (pads.length > x.rank) fail("pad", `${pads.length} (before, after) pairs for rank-${x.rank} input ${shapeStr(x.shape)}`);
  const before = x.shape.map((_, a) => pads[a]?.[0] ?? 0);
  const after = x.shape.map((_, a) => pads[a]?.[1] ?? 0);
  for (const v of [...before, ...after]) {
    if (!Number.isInteger(v) || v < 0) {
      fail("pad", `pads must be non-negative integers, got ${JSON.stringify(pads)} for ${shapeStr(x.shape)}`);
    }
  }
  const outShape = x.shape.map((d, a) => d + before[a]! + after[a]!);
  return runStrided("pad", x, { outShape, off: before.map((b) => -b), extent: [...x.shape], stride: stridesOf(x.shape), value });
}

// Transpose for permutes that move the input's contiguous axis away from
// the output's last axis. Each invocation copies a run of RUN outputs along
// the output's last axis L, and neighbouring invocations take neighbouring
// coordinates along B (the output axis reading the input's contiguous axis):
// SIMD lanes then load adjacent input elements and each lane writes a whole
// cache line. (Lanes adjacent along L instead, as in the strided kernel,
// make every load a cache miss: 10× slower on a 400 MiB volume.) No
// workgroup memory or barriers, which lavapipe executes slowly.
function transposeWgsl(dtype: DType, seg: SegmentLayout, header: string, rank: number, B: number): string {
  const L = rank - 1;
  const at = (arr: string, d: number) => `p.${arr}[${d >> 2}][${d & 3}]`;
  // Mixed-radix decomposition, B fastest; axis 0 may be restricted to [lo0, lo0 + count0).
  const comp = (a: number) => {
    const count = a === 0 ? "p.count0" : at("grid", a);
    let code = `  { let c = rem % ${count}${a === 0 ? " + p.lo0" : ""}; rem = rem / ${count};
`;
    if (a === B) code += `    cB = c; }
`;
    else if (a === L) code += `    l0 = c * ${RUN}u; }
`;
    else code += `    inBase += c * ${at("stride", a)}; outBase += c * ${at("ostride", a)}; }
`;
    return code;
  };
  let decompose = comp(B);
  for (let a = L; a >= 0; a--) if (a !== B) decompose += comp(a);
  return /* wgsl */ `${header}
struct P {
  base: u32, count: u32, lo0: u32, count0: u32,
  shape: array<vec4<u32>, 2>, grid: array<vec4<u32>, 2>, stride: array<vec4<u32>, 2>, ostride: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${dtype}>;
${segmentsWgsl("x", 2, seg, dtype)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  var rem = gid.x + gid.y * nwg.x * ${WG}u;
  var inBase = 0u; var outBase = 0u; var cB = 0u; var l0 = 0u;
${decompose}  if (rem != 0u) { return; }
  let src = inBase + cB;
  let dst = outBase + cB * ${at("ostride", B)};
  let l1 = min(l0 + ${RUN}u, ${at("shape", L)});
  for (var l = l0; l < l1; l++) {
    let o = dst + l;
    if (o >= p.base && o < p.base + p.count) { out[o - p.base] = x_at(src + l * ${at("stride", L)}); }
  }
}`;
}

/** Runs the transpose kernel over merged axes `gsp`; `outShape` is the caller's (unmerged) shape. */
function runTranspose(x: Tensor, outShape: readonly number[], gsp: Gather, B: number): Tensor {
  const g = gpu();
  checkF16("permute", [x.dtype]);
  const out = Tensor.empty(outShape, x.dtype);
  const shape = gsp.outShape;
  const rank = shape.length;
  const L = rank - 1;
  const ostride = stridesOf(shape);
  const grid = shape.map((d, a) => (a === L ? Math.ceil(d / RUN) : d));
  const otherInvocations = grid.slice(1).reduce((m, v) => m * v, 1);
  const seg = inputSegments("permute", x);
  const pipe = variantPipeline("transpose", { dtype: x.dtype, rank, B, x: layoutOf(seg) }, (s) => transposeWgsl(s.dtype, s.x, enableF16([s.dtype]), s.rank, s.B));
  for (const c of outputChunks(out)) {
    // Only the invocations whose outermost output coordinate meets this chunk.
    const unit = L === 0 ? RUN : 1;
    const hi = Math.min(grid[0]!, Math.ceil(Math.ceil((c.start + c.count) / ostride[0]!) / unit));
    const lo = Math.min(hi, Math.floor(Math.floor(c.start / ostride[0]!) / unit));
    if (hi === lo) continue;
    const params = new Params().u32(c.start).u32(c.count).u32(lo).u32(hi - lo);
    for (const v of padTo(shape, 1)) params.u32(v);
    for (const v of padTo(grid, 1)) params.u32(v);
    for (const v of padTo(gsp.stride, 0)) params.u32(v);
    for (const v of padTo(ostride, 0)) params.u32(v);
    g.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), g.grid(Math.ceil(((hi - lo) * otherInvocations) / WG)));
  }
  return out;
}

/** Reorders axes: output axis a is input axis perm[a]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkLayoutInput("permute", x);
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== x.rank || sorted.some((v, i) => v !== i)) {
    fail("permute", `[${perm.join(", ")}] is not a permutation of the axes of ${shapeStr(x.shape)}`);
  }
  const st = stridesOf(x.shape);
  const outShape = perm.map((a) => x.shape[a]!);
  const spec: Gather = { outShape, off: perm.map(() => 0), extent: outShape, stride: perm.map((a) => st[a]!), value: 0 };
  if (x.size >= 1024) {
    const merged = mergeAxes(spec);
    const L = merged.outShape.length - 1;
    // The output axis reading the input's contiguous axis (stride 1, extent > 1).
    const B = merged.stride.findIndex((s, a) => s === 1 && merged.outShape[a]! > 1);
    if (B >= 0 && B !== L) return runTranspose(x, outShape, merged, B);
  }
  return runStrided("permute", x, spec);
}

// ---------------------------------------------------------------------------
// Concat: input-driven. Input k's element j goes to output element
// outer·outRow + offset_k·inner + (j mod len_k·inner), which grows with j, so
// the input elements landing in one output chunk are a contiguous range.

function concatWgsl(dtype: DType, seg: SegmentLayout, header: string): string {
  return /* wgsl */ `${header}
struct P { lo: u32, n: u32, rowIn: u32, rowOut: u32, offset: u32, base: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${dtype}>;
${segmentsWgsl("x", 2, seg, dtype)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let j = p.lo + i;
  let o = (j / p.rowIn) * p.rowOut + p.offset + j % p.rowIn;
  out[o - p.base] = x_at(j);
}`;
}

/** First j in [0, n) with f(j) ≥ target (f increasing), or n. */
function lowerBound(n: number, target: number, f: (j: number) => number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (f(mid) < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Joins tensors along an existing axis; all other extents and the dtype must agree. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) fail("concat", "needs at least one tensor");
  for (const x of xs) checkLayoutInput("concat", x);
  const first = xs[0]!;
  const ax = normAxis("concat", axis, first.rank);
  const shapes = xs.map((x) => shapeStr(x.shape)).join(", ");
  for (const x of xs) {
    if (x.dtype !== first.dtype) fail("concat", `dtypes differ (${xs.map((t) => t.dtype).join(", ")}) for shapes ${shapes}`);
    if (x.rank !== first.rank || x.shape.some((d, a) => a !== ax && d !== first.shape[a])) {
      fail("concat", `shapes ${shapes} differ outside axis ${axis}`);
    }
  }
  const outShape = [...first.shape];
  outShape[ax] = xs.reduce((s, x) => s + x.shape[ax]!, 0);
  const out = Tensor.empty(outShape, first.dtype);
  if (out.size === 0) return out;
  const g = gpu();
  checkF16("concat", [first.dtype]);
  const inner = numel(first.shape.slice(ax + 1));
  const rowOut = outShape[ax]! * inner;
  const chunks = outputChunks(out);
  let offset = 0;
  for (const x of xs) {
    const rowIn = x.shape[ax]! * inner;
    const off = offset * inner;
    offset += x.shape[ax]!;
    if (x.size === 0) continue;
    const seg = inputSegments("concat", x);
    const pipe = variantPipeline("concat", { dtype: x.dtype, x: layoutOf(seg) }, (s) => concatWgsl(s.dtype, s.x, enableF16([s.dtype])));
    const dest = (j: number) => Math.floor(j / rowIn) * rowOut + off + (j % rowIn);
    for (const c of chunks) {
      const lo = lowerBound(x.size, c.start, dest);
      const hi = lowerBound(x.size, c.start + c.count, dest);
      if (hi <= lo) continue;
      const params = new Params().u32(lo).u32(hi - lo).u32(rowIn).u32(rowOut).u32(off).u32(c.start);
      g.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), g.grid(Math.ceil((hi - lo) / WG)));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Gather (embedding lookup): out[r, c] = table[clamp(ids[r]), c].

function gatherWgsl(dtype: Precision, st: SegmentLayout, si: SegmentLayout): string {
  return /* wgsl */ `${enableF16(dtype)}
struct P { n: u32, base: u32, dim: u32, vocab: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${dtype}>;
${segmentsWgsl("table", 2, st, dtype)}
${segmentsWgsl("ids", 2 + st.count, si, "i32")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let o = p.base + i;
  // Ids are validated on the host when they come from the host; on the GPU
  // an out-of-range id is clamped rather than read out of bounds.
  let id = u32(clamp(ids_at(o / p.dim), 0, i32(p.vocab) - 1));
  out[i] = table_at(id * p.dim + o % p.dim);
}`;
}

/**
 * Embedding lookup: table [V, D] (f32 or f16), ids i32 of any shape → [...ids.shape, D] of the table's dtype.
 * Host ids (Int32Array or number[], shape [n]) are range-checked; ids already
 * on the GPU are clamped to [0, V−1].
 */
export function gather(table: Tensor, ids: Tensor | Int32Array | readonly number[]): Tensor {
  const dtype = precisionOf("gather", [table]);
  if (table.rank !== 2) fail("gather", `table must be [V, D], got ${shapeStr(table.shape)}`);
  const [vocab, dim] = table.shape as [number, number];
  let idsT: Tensor;
  let owned = false;
  if (ids instanceof Tensor) {
    checkInputs("gather", [ids], "i32");
    idsT = ids;
  } else {
    const host = ids instanceof Int32Array ? ids : Int32Array.from(ids);
    host.forEach((id, k) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        fail("gather", `id ${id} at position ${k} is out of range for table ${shapeStr(table.shape)}`);
      }
    });
    idsT = Tensor.from(host, [host.length], "i32");
    owned = true;
  }
  const out = Tensor.empty([...idsT.shape, dim], dtype);
  if (out.size > 0) {
    if (vocab === 0) fail("gather", `table ${shapeStr(table.shape)} is empty`);
    const g = gpu();
    const st = inputSegments("gather", table);
    const si = inputSegments("gather", idsT);
    const pipe = variantPipeline("gather", { dtype, table: layoutOf(st), ids: layoutOf(si) }, (s) => gatherWgsl(s.dtype, s.table, s.ids));
    for (const c of outputChunks(out)) {
      const params = new Params().u32(c.count).u32(c.start).u32(dim).u32(vocab);
      g.dispatch(pipe, [c.binding, ...st.bindings, ...si.bindings], params.bytes(), g.grid(Math.ceil(c.count / WG)));
    }
  }
  if (owned) idsT.dispose();
  return out;
}

// ---------------------------------------------------------------------------
// Cast between f32, f16 and (to float) i32/u32. f32 → f16 rounds to nearest.

function castWgsl(from: DType, to: DType, seg: SegmentLayout, header: string): string {
  return /* wgsl */ `${header}
struct P { n: u32, base: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${to}>;
${segmentsWgsl("x", 2, seg, from)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  out[i] = ${to}(x_at(p.base + i));
}`;
}

/** Converts to f32 or f16 (f16 needs the device's shader-f16 feature). Returns a new tensor even when the dtype is unchanged. */
export function cast(x: Tensor, dtype: "f32" | "f16"): Tensor {
  checkInputs("cast", [x], LAYOUT_DTYPES);
  if (dtype !== "f32" && dtype !== "f16") fail("cast", `target dtype must be f32 or f16, got ${String(dtype)} for ${shapeStr(x.shape)}`);
  checkF16("cast", [x.dtype, dtype]);
  const out = Tensor.empty(x.shape, dtype);
  if (out.size === 0) return out;
  const g = gpu();
  const seg = inputSegments("cast", x);
  const pipe = variantPipeline("cast", { from: x.dtype, to: dtype, x: layoutOf(seg) }, (s) => castWgsl(s.from, s.to, s.x, enableF16([s.from, s.to])));
  for (const c of outputChunks(out)) {
    const params = new Params().u32(c.count).u32(c.start);
    g.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), g.grid(Math.ceil(c.count / WG)));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Backward of the embedding gather: a scatter-add of the upstream gradient
// rows into a zeroed [V, D] table gradient, without float atomics:
//   dTable[v, c] = Σ_{r : ids[r] = v} g[r, c]
// One invocation per (id position r, feature c). Only the first position of
// each distinct id writes, summing the rows of all its later repeats, so no
// two invocations write the same element. The cost is O(n²·D) id loads for
// n ids, independent of the vocabulary size V (the table is cleared with a
// buffer clear): fine for token counts like CLIP's 77, not for millions of ids.

function gatherBackwardWgsl(sg: SegmentLayout, si: SegmentLayout): string {
  return /* wgsl */ `
struct P { nIds: u32, dim: u32, vocab: u32, base: u32, count: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${segmentsWgsl("g", 2, sg)}
${segmentsWgsl("ids", 2 + sg.count, si, "i32")}
// Ids are clamped exactly as the forward gather clamps them.
fn id_at(r: u32) -> u32 { return u32(clamp(ids_at(r), 0, i32(p.vocab) - 1)); }
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.nIds * p.dim) { return; }
  let r = i / p.dim;
  let c = i % p.dim;
  let id = id_at(r);
  let o = id * p.dim + c;
  if (o < p.base || o >= p.base + p.count) { return; }
  for (var q = 0u; q < r; q++) {
    if (id_at(q) == id) { return; }
  }
  var acc = g_at(i);
  for (var q = r + 1u; q < p.nIds; q++) {
    if (id_at(q) == id) { acc += g_at(q * p.dim + c); }
  }
  out[o - p.base] = acc;
}`;
}

/**
 * Gradient of `gather(table, ids)` w.r.t. a [vocab, D] table: g is
 * [...ids.shape, D], ids i32 on the GPU.
 */
export function gatherBackward(g: Tensor, ids: Tensor, vocab: number): Tensor {
  const op = "gather_backward";
  checkInputs(op, [g]);
  checkInputs(op, [ids], "i32");
  const dim = g.shape[g.rank - 1];
  if (dim === undefined || g.rank !== ids.rank + 1 || ids.shape.some((d, a) => d !== g.shape[a])) {
    fail(op, `gradient ${shapeStr(g.shape)} must be [...ids.shape, D] for ids ${shapeStr(ids.shape)}`);
  }
  if (!Number.isInteger(vocab) || vocab <= 0) fail(op, `vocab ${vocab} must be a positive integer`);
  const out = Tensor.zeros([vocab, dim]);
  const n = ids.size;
  if (n === 0 || dim === 0) return out;
  const gp = gpu();
  const sg = inputSegments(op, g);
  const si = inputSegments(op, ids);
  const pipe = variantPipeline("gather_bwd", { g: layoutOf(sg), ids: layoutOf(si) }, (s) => gatherBackwardWgsl(s.g, s.ids));
  for (const c of outputChunks(out)) {
    const params = new Params().u32(n).u32(dim).u32(vocab).u32(c.start).u32(c.count);
    gp.dispatch(pipe, [c.binding, ...sg.bindings, ...si.bindings], params.bytes(), gp.grid(Math.ceil((n * dim) / WG)));
  }
  return out;
}

// ---------------------------------------------------------------------------
// The differentiable layout ops: each backward is the inverse layout map.

/** A zero-copy view with a new shape (-1 infers one axis). */
export const reshapeOp = defineOp<[Tensor], { shape: readonly number[] }>({
  name: "reshape",
  forward: ([x], { shape }) => x.reshape(shape),
  backward: (_saved, g, { shapes: [s] }) => [g.reshape(s!)],
});

/** x[s0:e0, …]; the gradient pads back with zeros. */
export const sliceOp = defineOp<[Tensor], { starts: readonly number[]; ends: readonly number[] }>({
  name: "slice",
  forward: ([x], { starts, ends }) => slice(x, starts, ends),
  backward: (_saved, g, { attrs: { starts }, shapes: [s] }) => {
    const shape = s!;
    const lo = shape.map((dim, a) => {
      const v = a < starts.length ? starts[a]! : 0;
      return v < 0 ? v + dim : v;
    });
    const pads = shape.map((dim, a) => [lo[a]!, dim - lo[a]! - g.shape[a]!] as const);
    return [pad(g, pads, 0)];
  },
});

/** Constant padding; the gradient is the slice of the unpadded region. */
export const padOp = defineOp<[Tensor], { pads: readonly (readonly [number, number])[]; value: number }>({
  name: "pad",
  forward: ([x], { pads, value }) => pad(x, pads, value),
  backward: (_saved, g, { attrs: { pads }, shapes: [s] }) => {
    const starts = s!.map((_, a) => pads[a]?.[0] ?? 0);
    const ends = s!.map((d, a) => starts[a]! + d);
    return [slice(g, starts, ends)];
  },
});

/** Output axis a is input axis perm[a]; the gradient permutes back. */
export const permuteOp = defineOp<[Tensor], { perm: readonly number[] }>({
  name: "permute",
  forward: ([x], { perm }) => permute(x, perm),
  backward: (_saved, g, { attrs: { perm } }) => {
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, a) => (inverse[p] = a));
    return [permute(g, inverse)];
  },
});

/** Joins tensors along an existing axis; each gradient is its slice. */
export const concatOp = defineOp<Tensor[], { axis: number }>({
  name: "concat",
  forward: (xs, { axis }) => concat(xs, axis),
  backward: (_saved, g, { attrs: { axis }, wants, shapes }) => {
    const ax = normAxis("concat", axis, g.rank);
    const shape = g.shape;
    let offset = 0;
    return shapes.map((s, k) => {
      const lo = offset;
      offset += s![ax]!;
      if (!wants[k]) return null;
      const starts = shape.map((_, a) => (a === ax ? lo : 0));
      const ends = shape.map((d, a) => (a === ax ? lo + s![ax]! : d));
      return slice(g, starts, ends);
    });
  },
});

/** A change of float precision; no gradient flows through it (f16 is for inference: gradients are f32). */
export const castOp = defineOp<[Tensor], { dtype: "f32" | "f16" }>({
  name: "cast",
  forward: ([x], { dtype }) => cast(x, dtype),
});

/** Embedding lookup of a [V, D] table by integer ids; the gradient (w.r.t. the table only) scatter-adds. */
export const gatherOp = defineOp<[Tensor], { ids: Tensor | Int32Array | readonly number[] }>({
  name: "gather",
  forward: ([table], { ids }) => gather(table, ids),
  save: (_t, _out, { attrs: { ids } }) => [ids instanceof Tensor ? ids : Tensor.from(ids instanceof Int32Array ? ids : Int32Array.from(ids), [ids.length], "i32")],
  backward: ([ids], g, { shapes: [s] }) => [gatherBackward(g, ids!, s![0]!)],
});
