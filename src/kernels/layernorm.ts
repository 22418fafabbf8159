// LayerNorm over the trailing dims whose shape equals weight.shape:
// y = (x − mean) / sqrt(var + eps) · weight + bias, biased variance, f32.
//
// Two paths, chosen by the normalised size N:
//  - rows (N ≤ 1024 with subgroups of 8, else N ≤ 2048): one subgroup (or
//    one 64-lane workgroup) per row; each lane keeps its slice of the row in
//    registers (straight-line code for this N), so x is loaded once and
//    mean/variance are exact two-pass sums over the registers.
//  - blocks (SegVol's whole-block norm, N = 192·16·32·32 = 3.1M): stage 1
//    reduces chunks of each row to partial (count, mean, M2) with Welford
//    updates merged by Chan's formula; stage 2 merges a row's partials into
//    (mean, rstd); stage 3 normalises elementwise.
import { gpu } from "../tensor/device.js";
import { Tensor, numel, shapeStr } from "../tensor/tensor.js";
import { checkInputs, fail, sameShape } from "./check.js";
import { Params } from "./params.js";
import { fixedSubgroups } from "./subgroups.js";

/** Workgroup size of the row kernels (the backward kernels share it with CHAN). */
export const WG = 64;
/** Registers (vectors) per lane in the row kernel. */
const ROW_REGS = 8;
/** Vectors per lane per stage-1 workgroup: a chunk is WG·CHUNK_VECS vectors. */
const CHUNK_VECS = 16;

/** Shared-memory tree reduction of (sum) or Chan-merged (n, mean, M2) triples. */
const TREE_SUM = /* wgsl */ `
var<workgroup> red: array<f32, ${WG}>;
fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

/** Workgroup-wide (count, mean, M2) merge; the backward kernel's row statistics use it too. */
export const CHAN = /* wgsl */ `
// Chan et al.: merge two (count, mean, M2) summaries without cancellation.
fn chan(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  let n = a.x + b.x;
  if (n == 0.0) { return a; }
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3<f32>(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}
var<workgroup> tri: array<vec3<f32>, ${WG}>;
fn wg_chan(v: vec3<f32>, lid: u32) -> vec3<f32> {
  tri[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { tri[lid] = chan(tri[lid], tri[lid + s]); }
    workgroupBarrier();
  }
  return tri[0];
}`;

function vtype(w: number): string {
  return w === 4 ? "vec4<f32>" : "f32";
}

function hsum(w: number, e: string): string {
  return w === 4 ? `dot(${e}, vec4<f32>(1.0))` : e;
}

/** Row kernel for rows of exactly `n` elements (n/w vectors). */
function rowWgsl(n: number, w: number): string {
  const nvec = n / w;
  const regs = Math.ceil(nvec / WG);
  const T = vtype(w);
  const L: string[] = [];
  for (let r = 0; r < regs; r++) {
    const idx = `lid + ${r * WG}u`;
    // Lanes past the row's end hold zeros and are excluded from the sums.
    L.push(`  let i${r} = ${idx};`);
    L.push(`  let ok${r} = i${r} < ${nvec}u;`);
    L.push(`  let x${r} = select(${T}(0.0), xs[base + min(i${r}, ${nvec - 1}u)], ok${r});`);
  }
  const sumX = Array.from({ length: regs }, (_, r) => hsum(w, `x${r}`)).join(" + ");
  const sumD = Array.from({ length: regs }, (_, r) => `select(0.0, ${hsum(w, `(x${r} - mean) * (x${r} - mean)`)}, ok${r})`).join(" + ");
  const writes = Array.from(
    { length: regs },
    (_, r) => `  if (ok${r}) { out[base + i${r}] = (x${r} - mean) * rstd * ws[i${r}] + bs[i${r}]; }`,
  ).join("\n");
  return /* wgsl */ `
struct P { rows: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read> xs: array<${T}>;
@group(0) @binding(3) var<storage, read> ws: array<${T}>;
@group(0) @binding(4) var<storage, read> bs: array<${T}>;
${TREE_SUM}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  // Uniform per workgroup, so the barriers below stay in uniform control flow.
  let base = min(row, p.rows - 1u) * ${nvec}u;
${L.join("\n")}
  let mean = wg_sum(${sumX}, lid) / ${n}.0;
  let var_ = wg_sum(${sumD}, lid) / ${n}.0;
  let rstd = inverseSqrt(var_ + p.eps);
  if (row >= p.rows) { return; }
${writes}
}`;
}

/** Lanes of the subgroup row kernel: one workgroup is exactly one subgroup. */
const SG = 8;
/** Rows (subgroups) per workgroup in the subgroup row kernel. */
const SG_ROWS = 8;
/** Registers (vectors) per lane in the subgroup row kernel: rows up to 8·32 vectors. */
const SG_REGS = 32;

/**
 * Row kernel with one subgroup per row, 8 rows per workgroup: sums are
 * subgroupAdd, so there is no workgroup barrier. Back to back on 2048×768
 * (loaded machine): 22–40 ms against 136 ms for the 64-lane barrier kernel.
 */
function rowSgWgsl(n: number, w: number): string {
  const nvec = n / w;
  const regs = Math.ceil(nvec / SG);
  const T = vtype(w);
  const L: string[] = [];
  for (let r = 0; r < regs; r++) {
    L.push(`  let i${r} = sl + ${r * SG}u;`);
    L.push(`  let ok${r} = i${r} < ${nvec}u;`);
    L.push(`  let x${r} = select(${T}(0.0), xs[base + min(i${r}, ${nvec - 1}u)], ok${r});`);
  }
  const sumX = Array.from({ length: regs }, (_, r) => hsum(w, `x${r}`)).join(" + ");
  const sumD = Array.from({ length: regs }, (_, r) => `select(0.0, ${hsum(w, `(x${r} - mean) * (x${r} - mean)`)}, ok${r})`).join(" + ");
  const writes = Array.from(
    { length: regs },
    (_, r) => `  if (ok${r}) { out[base + i${r}] = (x${r} - mean) * rstd * ws[i${r}] + bs[i${r}]; }`,
  ).join("\n");
  return /* wgsl */ `enable subgroups;
struct P { rows: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read> xs: array<${T}>;
@group(0) @binding(3) var<storage, read> ws: array<${T}>;
@group(0) @binding(4) var<storage, read> bs: array<${T}>;
@compute @workgroup_size(${SG * SG_ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32, @builtin(local_invocation_index) lid: u32) {
  // Subgroups are consecutive SG-lane slices of the workgroup (lavapipe runs
  // a workgroup as SIMD chunks of SG lanes), so lid / SG names this subgroup.
  let row = (wid.x + wid.y * nwg.x) * ${SG_ROWS}u + lid / ${SG}u;
  let base = min(row, p.rows - 1u) * ${nvec}u;
${L.join("\n")}
  let mean = subgroupAdd(${sumX}) / ${n}.0;
  let var_ = subgroupAdd(${sumD}) / ${n}.0;
  let rstd = inverseSqrt(var_ + p.eps);
  if (row >= p.rows) { return; }
${writes}
}`;
}

/** Stage 1: (count, mean, M2) of one chunk of one row. */
function partialWgsl(w: number): string {
  const T = vtype(w);
  return /* wgsl */ `
struct P { nvec: u32, parts: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> xs: array<${T}>;
${CHAN}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let chunk = wid.x;
  let row = wid.y;
  let lo = chunk * ${WG * CHUNK_VECS}u;
  let hi = min(p.nvec, lo + ${WG * CHUNK_VECS}u);
  var acc = vec3<f32>(0.0);
  for (var i = lo + lid; i < hi; i += ${WG}u) {
    let v = xs[row * p.nvec + i];
    // Welford on a ${w}-element batch: its own mean and M2, then a Chan merge.
    let m = ${hsum(w, "v")} / ${w}.0;
    let d = v - m;
    acc = chan(acc, vec3<f32>(${w}.0, m, ${hsum(w, "d * d")}));
  }
  let r = wg_chan(acc, lid);
  if (lid == 0u) { part[row * p.parts + chunk] = vec4<f32>(r, 0.0); }
}`;
}

/** Stage 2: merge a row's partials into (mean, rstd). */
const STATS_WGSL = /* wgsl */ `
struct P { parts: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> part: array<vec4<f32>>;
${CHAN}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  var acc = vec3<f32>(0.0);
  for (var i = lid; i < p.parts; i += ${WG}u) { acc = chan(acc, part[row * p.parts + i].xyz); }
  let r = wg_chan(acc, lid);
  if (lid == 0u) { stats[row] = vec2<f32>(r.y, inverseSqrt(r.z / r.x + p.eps)); }
}`;

/** Stage 3: elementwise normalise with per-row stats and per-element affine. */
function applyWgsl(w: number): string {
  const T = vtype(w);
  return /* wgsl */ `
struct P { total: u32, nvec: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read> xs: array<${T}>;
@group(0) @binding(3) var<storage, read> ws: array<${T}>;
@group(0) @binding(4) var<storage, read> bs: array<${T}>;
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.total) { return; }
  let row = i / p.nvec;
  let c = i - row * p.nvec;
  let s = stats[row];
  out[i] = (xs[i] - s.x) * s.y * ws[c] + bs[c];
}`;
}

function bind(t: Tensor): GPUBufferBinding {
  return { buffer: t.buffer, offset: 0, size: Math.max(16, t.byteLength) };
}

/**
 * LayerNorm over the trailing dims of x that equal weight.shape (weight and
 * bias share that shape). eps defaults to 1e-5 (PyTorch's default).
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  const op = "layerNorm";
  checkInputs(op, [x, weight, bias]);
  const shapes = `x ${shapeStr(x.shape)}, weight ${shapeStr(weight.shape)}, bias ${shapeStr(bias.shape)}`;
  if (!sameShape(weight.shape, bias.shape)) fail(op, `weight and bias shapes differ: ${shapes}`);
  const k = weight.rank;
  if (k === 0 || k > x.rank || !sameShape(x.shape.slice(x.rank - k), weight.shape)) {
    fail(op, `weight shape must equal the trailing dims of x: ${shapes}`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) fail(op, `eps must be a finite non-negative number, got ${eps}`);
  const n = numel(weight.shape);
  const rows = numel(x.shape.slice(0, x.rank - k));
  const g = gpu();
  if (x.byteLength > g.maxBindingBytes) {
    fail(op, `x ${shapeStr(x.shape)} (${x.byteLength} bytes) exceeds one storage binding (${g.maxBindingBytes} bytes)`);
  }
  const out = Tensor.empty(x.shape);
  if (out.size === 0) return out;
  const w = n % 4 === 0 ? 4 : 1;
  const nvec = n / w;
  if (Math.ceil(nvec / SG) <= SG_REGS && fixedSubgroups(SG)) {
    const pipe = g.pipeline(`layernorm:rowsg:${n}:${w}:${SG_ROWS}`, () => rowSgWgsl(n, w));
    const params = new Params().u32(rows).f32(eps);
    g.dispatch(pipe, [bind(out), bind(x), bind(weight), bind(bias)], params.bytes(), g.grid(Math.ceil(rows / SG_ROWS)));
    return out;
  }
  if (Math.ceil(nvec / WG) <= ROW_REGS) {
    const pipe = g.pipeline(`layernorm:row:${n}:${w}`, () => rowWgsl(n, w));
    const params = new Params().u32(rows).f32(eps);
    g.dispatch(pipe, [bind(out), bind(x), bind(weight), bind(bias)], params.bytes(), g.grid(rows));
    return out;
  }
  // Whole-block path: partials, stats, apply.
  const parts = Math.ceil(nvec / (WG * CHUNK_VECS));
  if (rows > g.maxWorkgroupsPerDim || parts > g.maxWorkgroupsPerDim) fail(op, `too many rows or chunks: ${shapes}`);
  const partial = Tensor.empty([rows, parts, 4]);
  const stats = Tensor.empty([rows, 2]);
  try {
    const p1 = g.pipeline(`layernorm:partial:${w}`, () => partialWgsl(w));
    g.dispatch(p1, [bind(partial), bind(x)], new Params().u32(nvec).u32(parts).bytes(), [parts, rows, 1]);
    const p2 = g.pipeline("layernorm:stats", () => STATS_WGSL);
    g.dispatch(p2, [bind(stats), bind(partial)], new Params().u32(parts).f32(eps).bytes(), [rows, 1, 1]);
    const p3 = g.pipeline(`layernorm:apply:${w}`, () => applyWgsl(w));
    const total = rows * nvec;
    g.dispatch(
      p3,
      [bind(out), bind(x), bind(weight), bind(bias), bind(stats)],
      new Params().u32(total).u32(nvec).bytes(),
      g.grid(Math.ceil(total / 256)),
    );
  } finally {
    // Pooled buffers: released now, reused only by later-recorded work.
    partial.dispose();
    stats.dispose();
  }
  return out;
}
