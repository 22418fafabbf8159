// Reductions (sum, mean, min, max) over one axis or over all elements.
//
// The input is viewed as [outer, n, inner] (n = the reduced axis) and each
// output element reduces one strided row. Three kernels:
//  - "thread": one invocation per output, looping over n. Best when there
//    are many outputs (adjacent invocations read adjacent memory when
//    inner > 1).
//  - "group": one workgroup per output; its invocations stride over n, then
//    combine in workgroup memory. Used when outputs are few and rows long.
//  - "columns" (a strided axis, inner a multiple of 4): one invocation per 4
//    or 8 adjacent outputs (the variant's `cols`), walking n with one vec4
//    load per 4 of them per step along the contiguous inner axis: a quarter
//    of the thread kernel's loads, and neighbouring invocations still read
//    neighbouring memory (2.0 → 4-7 GB/s on lavapipe). Where those
//    vectors are too few to keep the cores busy, n is split into spans, a
//    first pass writes an f32 partial per span and a second pass (the same
//    kernel) reduces the spans. f16 is converted by integer operations
//    (f16bits.ts), cheaper than WGSL's conversions on lavapipe.
// Reducing everything is hierarchical: a first "group" pass writes one
// partial per block of the flat input, a second one reduces the partials
// (keeping f32 sums short and pairwise-ish, and both passes parallel).
// Inputs of any size are read through segments; outputs written per chunk.
// Contiguous rows (inner = 1, n a multiple of 4, one segment) are read as
// vec4: a quarter of the loads and loop trips, which is what lavapipe pays
// for (each load is a per-lane scalar fetch).
// Either precision (precision.ts): x and the result both f32 or both f16;
// f16 is read into f32, every sum and comparison is f32, and the partials
// of two-pass reductions stay f32, so the result is rounded to f16 once,
// when stored. The backward (expandTo, sumTo) is f32.
import { gpu } from "../tensor/device.js";
import { Tensor, numel, shapeStr } from "../tensor/tensor.js";
import { inputSegments, layoutOf, outputChunks, segmentsWgsl, type SegmentLayout } from "./binding.js";
import { checkRowVariant, deviceProfile, laneGroups, variantName, variantPipeline, type DeviceProfile, type RowVariant } from "./profile.js";
import { checkInputs, fail, normAxis } from "./check.js";
import { columnsFor } from "./axis_rows.js";
import { axisStepWgsl, divisorWords, UDIV_WGSL } from "./udiv.js";
import { F16_BITS_WGSL, loadVec4, storeVec4, vec4Storage } from "./f16bits.js";
import { vec4Segments } from "./vec4.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { enableF16, precisionOf, type Precision } from "./precision.js";

export type ReduceOp = "sum" | "mean" | "min" | "max";

const OPS: readonly ReduceOp[] = ["sum", "mean", "min", "max"];
const COMBINE: Record<ReduceOp, string> = { sum: "a + b", mean: "a + b", min: "min(a, b)", max: "max(a, b)" };
const INIT: Record<ReduceOp, number> = { sum: 0, mean: 0, min: Infinity, max: -Infinity };
const WG = 256;
/** Invocations of the portable "group" workgroup: fewer than WG, so fewer barrier stages (on lavapipe each one a switch between coroutines). */
const GROUP_WG = 64;
/** Partials of the first all-reduce pass (one workgroup each). */
const MAX_PARTIALS = 1024;

/**
 * A reduction kernel's compile-time shape: its mode and op, the input's
 * segments, and the dtypes it reads and writes (the precision; f32 out of
 * an f16 input for the all-reduce's partials).
 */
interface ReduceSpec {
  mode: "thread" | "group";
  op: ReduceOp;
  x: SegmentLayout;
  src: Precision;
  dst: Precision;
  /** Elements per load: 4 reads x as vec4 (n, inner and total then count vectors). */
  w: 1 | 4;
  /** The group kernel's subgroup lanes (0: barrier tree; always 0 for the thread kernel). */
  lanes: number;
}

/** The uniform block, the output at s.dst, the input's segments at s.src, and the op's f32 combine. */
function headerWgsl(s: ReduceSpec): string {
  return /* wgsl */ `${enableF16([s.src, s.dst])}
struct P { n: u32, inner: u32, total: u32, base: u32, count: u32, init: f32, scale: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${s.dst}>;
${segmentsWgsl("x", 2, s.x, s.w === 4 ? `vec4<${s.src}>` : s.src)}
fn combine(a: f32, b: f32) -> f32 { return ${COMBINE[s.op]}; }
// Folds the element (or vector) at x index i into a.
fn fold(a: f32, i: u32) -> f32 {
  ${s.w === 4 ? "let v = vec4<f32>(x_at(i)); return combine(a, combine(combine(v.x, v.y), combine(v.z, v.w)));" : "return combine(a, f32(x_at(i)));"}
}`;
}

/** The stored result of an f32 accumulator `v`: scaled for a mean, rounded once to the output's type (`T`, or a vector of T). */
function finish(op: ReduceOp, type: string, v: string): string {
  return `${type}(${op === "mean" ? `${v} * p.scale` : v})`;
}

function threadWgsl(s: ReduceSpec): string {
  return /* wgsl */ `${headerWgsl(s)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.count) { return; }
  let o = p.base + i;
  var idx = (o / p.inner) * p.n * p.inner + o % p.inner;
  var acc = p.init;
  for (var k = 0u; k < p.n; k++) {
    acc = fold(acc, idx);
    idx += p.inner;
  }
  out[i] = ${finish(s.op, s.dst, "acc")};
}`;
}

/** The subgroup operation that combines one value from each lane, by op. */
const SUBGROUP_OP: Record<ReduceOp, string> = { sum: "subgroupAdd", mean: "subgroupAdd", min: "subgroupMin", max: "subgroupMax" };

/**
 * One workgroup per output. With s.lanes > 0 the workgroup is one subgroup
 * of that many lanes, combined by a subgroup operation; with 0, GROUP_WG
 * invocations combined in workgroup memory between barriers.
 */
function groupWgsl(s: ReduceSpec): string {
  const sg = s.lanes > 0;
  const L = sg ? s.lanes : GROUP_WG;
  const merge = sg
    ? `let r = ${SUBGROUP_OP[s.op]}(acc);`
    : `sh[t] = acc;
  workgroupBarrier();
  for (var s = ${L / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { sh[t] = combine(sh[t], sh[t + s]); }
    workgroupBarrier();
  }
  let r = sh[0];`;
  return /* wgsl */ `${sg ? "enable subgroups;\n" : ""}${headerWgsl(s)}
${sg ? "" : `var<workgroup> sh: array<f32, ${L}>;`}
@compute @workgroup_size(${L})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = wid.x + wid.y * nwg.x;
  // Uniform per workgroup (a spare workgroup redoes the last output), so the merge stays in uniform control flow.
  let o = p.base + min(i, p.count - 1u);
  let start = (o / p.inner) * p.n * p.inner + o % p.inner;
  // The all-reduce views the flat input as rows of n; the last row is short.
  let len = min(p.n, (p.total - start + p.inner - 1u) / p.inner);
  var acc = p.init;
  for (var k = t; k < len; k += ${L}u) {
    acc = fold(acc, start + k * p.inner);
  }
  ${merge}
  if (t == 0u && i < p.count) { out[i] = ${finish(s.op, s.dst, "r")}; }
}`;
}

/** Invocations of the columns kernel's workgroup. */
const COLUMNS_WG = 64;
/** Column vectors the columns kernel aims to run at once: fewer split the reduced axis into spans. */
const COLUMNS_TARGET = 2048;
/** The shortest span of a split reduced axis, so that a span's loop outweighs its partial's store and reload. */
const MIN_SPAN = 64;


/** The columns kernel's compile-time shape: the op, the input's segments (counted in vec4s), the dtypes it reads and writes, and the vec4s an invocation owns. */
interface ColumnsSpec {
  op: ReduceOp;
  x: SegmentLayout;
  src: Precision;
  dst: Precision;
  vecs: number;
}

/**
 * One invocation per group of s.vecs adjacent output vectors of
 * [outer, split, inner / 4], each reduced over one span of the reduced axis
 * (the whole axis when split = 1) with its own accumulator: s.vecs
 * independent loads a step. inner, base and count count groups.
 */
function columnsWgsl(s: ColumnsSpec): string {
  const V = s.vecs;
  const each = (f: (j: number) => string, sep = " ") => Array.from({ length: V }, (_, j) => f(j)).join(sep);
  return /* wgsl */ `
struct P { n: u32, inner: u32, span: u32, split: u32, base: u32, count: u32, init: f32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${vec4Storage(s.dst)}>;
${segmentsWgsl("x", 2, s.x, vec4Storage(s.src))}
${F16_BITS_WGSL}
fn combine(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> { return ${COMBINE[s.op]}; }
@compute @workgroup_size(${COLUMNS_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${COLUMNS_WG}u;
  if (i >= p.count) { return; }
  let o = p.base + i;
  let q = o / p.inner;
  let row = q / p.split;
  let first = (q - row * p.split) * p.span;
  let len = min(p.span, p.n - first);
  let stride = p.inner * ${V}u;
  var idx = (row * p.n + first) * stride + (o - q * p.inner) * ${V}u;
  ${each((j) => `var a${j} = vec4<f32>(p.init);`)}
  for (var k = 0u; k < len; k++) {
    ${each((j) => `a${j} = combine(a${j}, ${loadVec4(s.src, `x_at(idx${j ? ` + ${j}u` : ""})`)});`, "\n    ")}
    idx += stride;
  }
  ${each((j) => `out[i * ${V}u + ${j}u] = ${storeVec4(s.dst, s.op === "mean" ? `a${j} * p.scale` : `a${j}`)};`, "\n  ")}
}`;
}

/**
 * One pass of the columns kernel, `cols` columns an invocation: x as
 * [outer, n, inner] into out as [outer, split, inner], spans of `span`
 * (scale: a mean's 1/n).
 */
function columnsPass(op: ReduceOp, x: Tensor, out: Tensor, n: number, inner: number, cols: number, span: number, split: number, scale: number): void {
  const g = gpu();
  const seg = vec4Segments(`reduce(${op})`, x);
  const V = cols / 4;
  const spec: ColumnsSpec = { op, x: layoutOf(seg), src: x.dtype as Precision, dst: out.dtype as Precision, vecs: V };
  const pipe = variantPipeline("reduce_columns", spec, columnsWgsl);
  for (const c of outputChunks(out, 4)) {
    const params = new Params().u32(n).u32(inner / 4 / V).u32(span).u32(split).u32(c.start / 4 / V).u32(c.count / 4 / V).f32(INIT[op]).f32(scale);
    g.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), g.grid(Math.ceil(c.count / 4 / V / COLUMNS_WG)));
  }
}

/**
 * Reduces x viewed as [outer, n, inner] (inner a multiple of 4) over n with
 * the columns kernel: in one pass where its output vectors are enough to
 * keep the device busy, else in spans of at least MIN_SPAN whose f32
 * partials a second pass reduces.
 */
function reduceColumns(op: ReduceOp, x: Tensor, out: Tensor, n: number, inner: number, cols: number): void {
  const split = Math.max(1, Math.min(Math.ceil(COLUMNS_TARGET / (out.size / 4)), Math.floor(n / MIN_SPAN)));
  if (split === 1) {
    columnsPass(op, x, out, n, inner, cols, n, 1, 1 / n);
    return;
  }
  // n ≥ 2·MIN_SPAN here, so there are at least 2 spans, none empty.
  const span = Math.ceil(n / split);
  const spans = Math.ceil(n / span);
  const partial = Tensor.empty([out.size / inner, spans, inner]);
  columnsPass(op === "mean" ? "sum" : op, x, partial, n, inner, cols, span, spans, 1);
  columnsPass(op, partial, out, spans, inner, cols, spans, 1, 1 / n);
  partial.dispose();
}

/**
 * A reduction's variant. `lanes` (rows 1, a RowVariant): the group
 * kernel's subgroup lanes, 0 for its barrier tree. `cols`: the most
 * adjacent outputs an invocation of the columns kernel reduces over a
 * strided axis (vec4 loads; 8 is two vectors, loads that can be in flight
 * together), each call taking the largest of 8 and 4 up to it that divides
 * the inner size; 1, or an inner size that is no multiple of 4, reduces
 * strided axes like any other (the thread or group kernel).
 */
export interface ReduceVariant extends RowVariant {
  cols: 1 | 4 | 8;
}

/**
 * The variant on this device: the forced knobs (`force.reduce`), else
 * columns for strided axes, and for the group kernel (rows = 1: a
 * workgroup is one subgroup) the widest lane group every subgroup holds,
 * which needs no barrier (on lavapipe each barrier switches between the
 * workgroup's coroutines), lanes 0 without subgroups.
 */
export function chooseReduceVariant(p: DeviceProfile = deviceProfile()): ReduceVariant {
  return { lanes: laneGroups(p).at(-1) ?? 0, rows: 1, cols: 8, ...p.force.reduce };
}

/** Every variant this device runs: the group kernel's barrier tree and one subgroup at each lane group, each with strided axes read by columns and without. */
export function reduceVariants(p: DeviceProfile): ReduceVariant[] {
  const lanes = [0, ...laneGroups(p)];
  return lanes.flatMap((l) => ([8, 4, 1] as const).map((cols) => ({ lanes: l, rows: 1, cols })));
}

/** Reduces x viewed as [outer, n, inner] over n into out (outer·inner elements). */
function reduceRows(op: ReduceOp, x: Tensor, out: Tensor, n: number, inner: number, mode: "thread" | "group", scale: number, v: ReduceVariant): void {
  const g = gpu();
  const seg = inputSegments(`reduce(${op})`, x);
  const w = seg.count === 1 && inner === 1 && n % 4 === 0 && x.size % 4 === 0 ? 4 : 1;
  const lanes = mode === "group" ? v.lanes : 0;
  const spec: ReduceSpec = { mode, op, x: layoutOf(seg), src: x.dtype as Precision, dst: out.dtype as Precision, w, lanes };
  const pipe = variantPipeline("reduce", spec, (s) => (s.mode === "thread" ? threadWgsl(s) : groupWgsl(s)));
  for (const c of outputChunks(out)) {
    const params = new Params().u32(n / w).u32(inner).u32(x.size / w).u32(c.start).u32(c.count).f32(INIT[op]).f32(scale).u32(0);
    const groups = mode === "thread" ? Math.ceil(c.count / WG) : c.count;
    g.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), g.grid(groups));
  }
}

/**
 * sum / mean / min / max. Without `axis`: over all elements, shape [] (or all
 * ones with keepDims). With `axis`: that axis removed, or kept as 1.
 * `variant` forces knobs of the variant (`reduceVariants` lists them; those
 * left out are chosen).
 */
export function reduce(op: ReduceOp, x: Tensor, axis?: number, keepDims = false, variant?: Partial<ReduceVariant>): Tensor {
  if (!OPS.includes(op)) fail("reduce", `unknown op "${String(op)}" (expected ${OPS.join(", ")})`);
  const name = `reduce(${op})`;
  const T = precisionOf(name, [x]);
  const prof = deviceProfile();
  const v = { ...chooseReduceVariant(prof), ...variant };
  if (v.rows !== 1) fail(name, `variant ${variantName(v)}: the group kernel runs one row a workgroup (rows = 1)`);
  if (![1, 4, 8].includes(v.cols)) fail(name, `variant ${variantName(v)}: cols must be 1, 4 or 8`);
  checkRowVariant(name, prof, v);
  if (axis === undefined) {
    const shape = keepDims ? x.shape.map(() => 1) : [];
    if (x.size === 0 && (op === "min" || op === "max")) fail(name, `empty input ${shapeStr(x.shape)} has no ${op}`);
    const out = Tensor.empty(shape, T);
    if (x.size === 0) {
      // An empty sum is 0, an empty mean NaN (0x7e00 as f16 bits).
      out.write(T === "f16" ? new Uint16Array([op === "sum" ? 0 : 0x7e00]) : new Float32Array([op === "sum" ? 0 : NaN]));
      return out;
    }
    // Pass 1: one partial per block of the flat input.
    // A multiple of 4 elements, so that each block's rows are whole vectors.
    const block = Math.max(WG * 4, Math.ceil(x.size / MAX_PARTIALS / 4) * 4);
    const parts = Math.ceil(x.size / block);
    if (parts === 1) {
      reduceRows(op, x, out, x.size, 1, "group", 1 / x.size, v);
      return out;
    }
    // f32 partials: an f16 input's result is rounded once, by the second pass.
    const partial = Tensor.empty([parts]);
    reduceRows(op === "mean" ? "sum" : op, x, partial, block, 1, "group", 1, v);
    reduceRows(op, partial, out, parts, 1, "group", 1 / x.size, v);
    partial.dispose();
    return out;
  }
  const ax = normAxis(name, axis, x.rank);
  const n = x.shape[ax]!;
  if (n === 0 && (op === "min" || op === "max")) fail(name, `axis ${axis} of ${shapeStr(x.shape)} is empty; ${op} is undefined`);
  const inner = numel(x.shape.slice(ax + 1));
  const shape = keepDims ? x.shape.map((d, a) => (a === ax ? 1 : d)) : x.shape.filter((_, a) => a !== ax);
  const out = Tensor.empty(shape, T);
  if (out.size === 0) return out;
  const cols = columnsFor(v.cols, inner);
  if (cols > 0) {
    reduceColumns(op, x, out, n, inner, cols);
    return out;
  }
  // Few outputs with long rows: a workgroup per output keeps both cores busy.
  // Strided rows (inner > 1) stay with the thread kernel unless outputs are
  // very few: its neighbouring invocations read neighbouring elements, where
  // a group's lanes would each fetch another cache line.
  const mode = n >= 4 * WG && out.size < (inner === 1 ? 8192 : GROUP_WG) ? "group" : "thread";
  reduceRows(op, x, out, n, inner, mode, 1 / n, v);
  return out;
}

export const sum = (x: Tensor, axis?: number, keepDims = false) => reduce("sum", x, axis, keepDims);
export const mean = (x: Tensor, axis?: number, keepDims = false) => reduce("mean", x, axis, keepDims);
export const min = (x: Tensor, axis?: number, keepDims = false) => reduce("min", x, axis, keepDims);
export const max = (x: Tensor, axis?: number, keepDims = false) => reduce("max", x, axis, keepDims);

// ---------------------------------------------------------------------------
// Backward of the reductions: broadcasts the upstream gradient g back to the
// reduced input's shape, times a scale (1 for sum, 1/n for mean):
//   out[i] = scale · g[broadcast index of i]
// g must broadcast to `shape` (reduced axes kept as 1, or missing in front).
// Outputs of any size are written in chunks. Where the innermost (merged)
// axis is a multiple of 16 (else 4) long, each invocation writes 4 vec4s
// (one) from one index computation: one g value splat where that axis is
// broadcast, else g's vectors; elsewhere one output and one load each. The
// index math per output was the cost: [1, 768] to [4096, 768] took 24 ms
// of lavapipe CPU time one output an invocation, 5.5 ms 16 at a time. The
// coordinates come from udiv (udiv.ts), not `/` and `%`: [1, 767] to
// [4096, 767], one output an invocation, 24 → 15 ms.

const MAX_RANK = 8;

// The index map is unrolled for the (merged) rank, a WGSL constant: dynamic
// indexing into the uniform arrays made lavapipe's loop several times slower.
/** The expand kernel's compile-time shape: the merged rank, g's segments, the outputs an invocation writes, and whether g is broadcast along the innermost merged axis. */
interface ExpandSpec {
  rank: number;
  g: SegmentLayout;
  w: number;
  splat: boolean;
}

function expandWgsl({ rank, g: seg, w, splat }: ExpandSpec): string {
  // w > 1: w / 4 vec4s of one g value (splat), or of g's vec4s (g contiguous
  // along the innermost axis, whose length w divides, so ig is a multiple of 4).
  const stores = Array.from({ length: w / 4 }, (_, k) => `  out[i * ${w / 4}u + ${k}u] = ${splat ? "vec4<f32>(g_at(ig))" : `g_at(ig / 4u + ${k}u)`} * p.scale;`).join("\n");
  // Each axis' coordinate by udiv (the outermost is what remains).
  let index = "";
  for (let d = rank - 1; d >= 0; d--) {
    const at = (arr: string) => `p.${arr}[${d >> 2}][${d & 3}]`;
    index += d === 0 ? `  ig += rem * ${at("sg")};\n` : `  { ${axisStepWgsl(d)} ig += c${d} * ${at("sg")}; }\n`;
  }
  return /* wgsl */ `
struct P { n: u32, base: u32, rank: u32, scale: f32, shape: array<vec4<u32>, 2>, sg: array<vec4<u32>, 2>, magic: array<vec4<u32>, 2>, shift: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> p: P;
${UDIV_WGSL}
@group(0) @binding(1) var<storage, read_write> out: array<${w > 1 ? "vec4<f32>" : "f32"}>;
${segmentsWgsl("g", 2, seg, w > 1 && !splat ? "vec4<f32>" : "f32")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  var rem = p.base + i${w > 1 ? ` * ${w}u` : ""};
  var ig = 0u;
${index}${w === 1 ? "  out[i] = g_at(ig) * p.scale;" : stores}
}`;
}

/** Drops unit axes and merges neighbours that are both broadcast or contiguous with each other. */
function mergeAxes(shape: readonly number[], strides: readonly number[]): { shape: number[]; strides: number[] } {
  const outShape: number[] = [];
  const outStrides: number[] = [];
  shape.forEach((d, a) => {
    if (d === 1) return;
    const st = strides[a]!;
    const k = outShape.length - 1;
    if (k >= 0 && ((st === 0 && outStrides[k] === 0) || (st !== 0 && outStrides[k] === st * d))) {
      outShape[k]! *= d;
      outStrides[k] = st;
    } else {
      outShape.push(d);
      outStrides.push(st);
    }
  });
  return { shape: outShape, strides: outStrides };
}

function padTo<T>(v: readonly T[], fill: T): T[] {
  const out = [...v];
  while (out.length < MAX_RANK) out.push(fill);
  return out;
}

/** scale · g broadcast to `shape` (NumPy rules, g may have fewer axes). */
export function expandTo(g: Tensor, shape: readonly number[], scale = 1): Tensor {
  const op = "expand";
  checkInputs(op, [g]);
  const rank = shape.length;
  if (g.rank > rank || rank > MAX_RANK) fail(op, `cannot broadcast ${shapeStr(g.shape)} to ${shapeStr(shape)} (rank ≤ ${MAX_RANK})`);
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let a = rank - 1; a >= 0; a--) {
    const d = g.shape[g.rank - rank + a] ?? 1;
    if (d !== 1 && d !== shape[a]) fail(op, `cannot broadcast ${shapeStr(g.shape)} to ${shapeStr(shape)}`);
    strides[a] = d === 1 ? 0 : s;
    s *= d;
  }
  const out = Tensor.empty(shape);
  if (out.size === 0) return out;
  const gp = gpu();
  const m = mergeAxes(shape, strides);
  const w = [16, 4].find((v) => (m.shape.at(-1) ?? 1) % v === 0) ?? 1;
  const splat = m.strides.at(-1) === 0;
  const seg = w > 1 && !splat ? vec4Segments(op, g) : inputSegments(op, g);
  const spec: ExpandSpec = { rank: m.shape.length, g: layoutOf(seg), w, splat };
  const pipe = variantPipeline("expand", spec, expandWgsl);
  for (const c of outputChunks(out, w)) {
    const params = new Params().u32(c.count / w).u32(c.start).u32(m.shape.length).f32(scale);
    for (const d of padTo(m.shape, 1)) params.u32(d);
    for (const st of padTo(m.strides, 0)) params.u32(st);
    for (const word of divisorWords(m.shape, MAX_RANK)) params.u32(word);
    gp.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), gp.grid(Math.ceil(c.count / w / WG)));
  }
  return out;
}

/** Sums g (a broadcast result) down to `shape`, over the broadcast axes; may return g itself. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  const R = g.rank;
  if (shape.length > R) throw new Error(`sumTo: cannot reduce ${shapeStr(g.shape)} to the larger rank ${shapeStr(shape)}`);
  const target = [...new Array<number>(R - shape.length).fill(1), ...shape];
  if (target.every((d, a) => d === g.shape[a])) return g;
  // Merge neighbouring axes into alternating kept / reduced groups, then sum
  // each reduced group with one reduce pass (innermost first).
  const groups: { size: number; reduced: boolean }[] = [];
  for (let a = 0; a < R; a++) {
    const d = g.shape[a]!;
    if (target[a] !== d && target[a] !== 1) throw new Error(`sumTo: ${shapeStr(g.shape)} does not broadcast from ${shapeStr(shape)}`);
    if (d === 1) continue;
    const reduced = target[a] === 1;
    const last = groups[groups.length - 1];
    if (last && last.reduced === reduced) last.size *= d;
    else groups.push({ size: d, reduced });
  }
  let x = g.reshape(groups.map((q) => q.size));
  if (groups.every((q) => q.reduced)) {
    const s = reduce("sum", x);
    x.dispose();
    x = s;
  } else {
    for (let k = groups.length - 1; k >= 0; k--) {
      if (!groups[k]!.reduced) continue;
      const s = reduce("sum", x, k);
      x.dispose();
      x = s;
    }
  }
  const out = x.reshape(shape);
  x.dispose();
  return out;
}

// ---------------------------------------------------------------------------
// The differentiable op

export interface ReduceAttrs {
  op: "sum" | "mean";
  /** Absent: over all elements. */
  axis?: number;
  keepDims: boolean;
}

/** sum / mean: the gradient broadcasts back over the reduced axis (times 1/n for mean). */
export const reduceOp = defineOp<[Tensor], ReduceAttrs>({
  name: (a) => a.op,
  forward: ([x], a) => reduce(a.op, x, a.axis, a.keepDims),
  backward: (_saved, g, { attrs: a, shapes: [s] }) => {
    const shape = [...s!];
    const ax = a.axis === undefined ? -1 : normAxis(a.op, a.axis, shape.length);
    const kept = ax < 0 ? shape.map(() => 1) : shape.map((d, i) => (i === ax ? 1 : d));
    const n = ax < 0 ? numel(shape) : shape[ax]!;
    return [expandTo(g.reshape(kept), shape, a.op === "mean" ? 1 / Math.max(1, n) : 1)];
  },
});
