// Layout ops: slice, pad, permute (one strided-gather kernel), concat,
// gather (embedding lookup) and cast. All of them work for tensors larger
// than one storage binding: outputs are written per binding-sized chunk,
// inputs are read through segments.
import { gpu } from "../tensor/device.js";
import { Tensor, numel, shapeStr, type DType } from "../tensor/tensor.js";
import { inputSegments, outputChunks, segmentsWgsl, type Segments } from "./binding.js";
import { checkInputs, fail, normAxis } from "./check.js";
import { Params } from "./params.js";

const WG = 256;
const MAX_RANK = 8;
const LAYOUT_DTYPES: readonly DType[] = ["f32", "f16", "i32", "u32"];

/** `enable f16;` when a kernel touches f16 data, with a clear error where the device lacks it. */
function f16Header(op: string, dtypes: readonly DType[]): string {
  if (!dtypes.includes("f16")) return "";
  if (!gpu().hasF16) fail(op, "f16 tensors need the shader-f16 feature, which this device does not have");
  return "enable f16;\n";
}

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

function stridedWgsl(dtype: DType, seg: Segments, header: string): string {
  return /* wgsl */ `${header}
struct P {
  n: u32, base: u32, rank: u32, value: u32,
  shape: array<vec4<u32>, 2>, extent: array<vec4<u32>, 2>, stride: array<vec4<u32>, 2>, off: array<vec4<i32>, 2>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${dtype}>;
${segmentsWgsl("x", 2, seg, dtype)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  var rem = p.base + i;
  var src = 0u;
  var inside = true;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let q = u32(d) / 4u; let r = u32(d) % 4u;
    let extent = p.shape[q][r];
    let c = i32(rem % extent) + p.off[q][r];
    rem = rem / extent;
    inside = inside && c >= 0 && u32(c) < p.extent[q][r];
    src += u32(c) * p.stride[q][r];
  }
  if (inside) { out[i] = x_at(src); } else { out[i] = ${fromBits(dtype)}; }
}`;
}

function runStrided(op: string, x: Tensor, gsp: Gather): Tensor {
  const g = gpu();
  const header = f16Header(op, [x.dtype]);
  const out = Tensor.empty(gsp.outShape, x.dtype);
  if (out.size === 0) return out;
  if (x.size === 0) {
    // Pad of an empty tensor: every element is the fill value; bind a dummy input.
    const dummy = Tensor.zeros([1], x.dtype);
    const r = runStrided(op, dummy, { ...gsp, extent: gsp.extent.map(() => 0) });
    dummy.dispose();
    out.dispose();
    return r;
  }
  const seg = inputSegments(op, x);
  const pipe = g.pipeline(`strided:${x.dtype}:${seg.key}`, () => stridedWgsl(x.dtype, seg, header));
  const rank = gsp.outShape.length;
  for (const c of outputChunks(out)) {
    const params = new Params().u32(c.count).u32(c.start).u32(rank).u32(valueBits(gsp.value, x.dtype));
    for (const v of padTo(gsp.outShape, 1)) params.u32(v);
    for (const v of padTo(gsp.extent, 1)) params.u32(v);
    for (const v of padTo(gsp.stride, 0)) params.u32(v);
    for (const v of padTo(gsp.off, 0)) params.i32(v);
    g.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), g.grid(Math.ceil(c.count / WG)));
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

/** Reorders axes: output axis a is input axis perm[a]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkLayoutInput("permute", x);
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== x.rank || sorted.some((v, i) => v !== i)) {
    fail("permute", `[${perm.join(", ")}] is not a permutation of the axes of ${shapeStr(x.shape)}`);
  }
  const st = stridesOf(x.shape);
  const outShape = perm.map((a) => x.shape[a]!);
  return runStrided("permute", x, { outShape, off: perm.map(() => 0), extent: outShape, stride: perm.map((a) => st[a]!), value: 0 });
}

// ---------------------------------------------------------------------------
// Concat: input-driven. Input k's element j goes to output element
// outer·outRow + offset_k·inner + (j mod len_k·inner), which grows with j, so
// the input elements landing in one output chunk are a contiguous range.

function concatWgsl(dtype: DType, seg: Segments, header: string): string {
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
  const header = f16Header("concat", [first.dtype]);
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
    const pipe = g.pipeline(`concat:${x.dtype}:${seg.key}`, () => concatWgsl(x.dtype, seg, header));
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

function gatherWgsl(st: Segments, si: Segments): string {
  return /* wgsl */ `
struct P { n: u32, base: u32, dim: u32, vocab: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${segmentsWgsl("table", 2, st)}
${segmentsWgsl("ids", 2 + st.bindings.length, si, "i32")}
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
 * Embedding lookup: table [V, D] f32, ids i32 of any shape → [...ids.shape, D].
 * Host ids (Int32Array or number[], shape [n]) are range-checked; ids already
 * on the GPU are clamped to [0, V−1].
 */
export function gather(table: Tensor, ids: Tensor | Int32Array | readonly number[]): Tensor {
  checkInputs("gather", [table]);
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
  const out = Tensor.empty([...idsT.shape, dim]);
  if (out.size > 0) {
    if (vocab === 0) fail("gather", `table ${shapeStr(table.shape)} is empty`);
    const g = gpu();
    const st = inputSegments("gather", table);
    const si = inputSegments("gather", idsT);
    const pipe = g.pipeline(`gather:${st.key}:${si.key}`, () => gatherWgsl(st, si));
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

function castWgsl(from: DType, to: DType, seg: Segments, header: string): string {
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
  const header = f16Header("cast", [x.dtype, dtype]);
  const out = Tensor.empty(x.shape, dtype);
  if (out.size === 0) return out;
  const g = gpu();
  const seg = inputSegments("cast", x);
  const pipe = g.pipeline(`cast:${x.dtype}:${dtype}:${seg.key}`, () => castWgsl(x.dtype, dtype, seg, header));
  for (const c of outputChunks(out)) {
    const params = new Params().u32(c.count).u32(c.start);
    g.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), g.grid(Math.ceil(c.count / WG)));
  }
  return out;
}
