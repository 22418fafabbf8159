// LayerNorm over the trailing dims whose shape equals weight.shape:
// y = (x − mean) / sqrt(var + eps) · weight + bias, biased variance.
// Forward at either precision (precision.ts): x, weight, bias and y are all
// f32 or all f16; f16 is loaded into f32 registers, the statistics and the
// affine map are f32, and y is rounded once when stored. Backward is f32.
//
// Two paths, chosen by the normalised size N:
//  - rows (N ≤ 128·lanes with subgroups, else N ≤ 2048): one subgroup (or
//    one 64-lane workgroup) per row; each lane keeps its slice of the row in
//    registers (straight-line code for this N), so x is loaded once and
//    mean/variance are exact two-pass sums over the registers.
//  - blocks (SegVol's whole-block norm, N = 192·16·32·32 = 3.1M): stage 1
//    reduces chunks of each row to partial (count, mean, M2) with Welford
//    updates merged by Chan's formula; stage 2 merges a row's partials into
//    (mean, rstd); stage 3 normalises elementwise.
import { gpu } from "../tensor/device.js";
import { Tensor, numel, shapeStr } from "../tensor/tensor.js";
import { wholeBinding } from "./axis_rows.js";
import { checkInputs, fail, sameShape } from "./check.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { UDIV_WGSL } from "./udiv.js";
import { enableF16, precisionOf, type Precision } from "./precision.js";
import { checkRowVariant, chooseRowVariant, deviceProfile, variantPipeline, type DeviceProfile, type RowVariant } from "./profile.js";

/** Workgroup size of the row kernels (the backward kernels share it with CHAN). */
export const WG = 64;
/** Registers (vectors) per lane in the row kernel. */
const ROW_REGS = 8;
/** Vectors per lane per stage-1 workgroup of the backward's block path: a chunk is WG·CHUNK_VECS vectors. */
const CHUNK_VECS = 16;
/**
 * The forward block path's default vectors per lane in stage 1
 * (`LayerNormVariant.chunk`). Each chunk's workgroup pays for its tree
 * merge's barriers: on lavapipe SegVol's 3.1M block took about 20% less
 * CPU time at 64 than at 16 (13.5 against 16.8-18 ms), and still leaves
 * 192 workgroups for that block.
 */
const BLOCK_CHUNK = 64;

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

/** The storage type of a w-wide vector at precision T (vtype(w) is its register type). */
function stype(w: number, T: Precision): string {
  return w === 4 ? `vec4<${T}>` : T;
}

function hsum(w: number, e: string): string {
  return w === 4 ? `dot(${e}, vec4<f32>(1.0))` : e;
}

/** A forward row kernel's compile-time shape: rows of n elements read as vectors of w, stored at precision T. */
interface RowSpec {
  n: number;
  w: number;
  T: Precision;
}

/**
 * The body shared by the forward row kernels: lane `lane` of `lanes` holds
 * vectors lane, lane + lanes, … of the row in registers (f32), `sum` adds a
 * value over the row's lanes; two-pass mean and variance over the
 * registers, then y stored at T where the row exists. `held`: weight and
 * bias are already in registers w0…, b0… (weightRegisters), else loaded.
 */
function rowBody(s: RowSpec, lanes: number, lane: string, sum: (e: string) => string, held = false): string {
  const { n, w, T } = s;
  const nvec = n / w;
  const regs = Math.ceil(nvec / lanes);
  const F = vtype(w);
  const R = Array.from({ length: regs }, (_, r) => r);
  // Only a last register that overhangs the row needs guards: lanes past
  // the row's end hold zeros, excluded from the sums and not stored.
  const whole = (r: number) => (r + 1) * lanes <= nvec;
  const guard = (r: number, e: string, none: string) => (whole(r) ? e : `select(${none}, ${e}, ok${r})`);
  const L: string[] = [];
  for (const r of R) {
    L.push(`  let i${r} = ${lane} + ${r * lanes}u;`);
    if (whole(r)) {
      L.push(`  let x${r} = ${F}(xs[base + i${r}]);`);
    } else {
      L.push(`  let ok${r} = i${r} < ${nvec}u;`);
      L.push(`  let x${r} = select(${F}(0.0), ${F}(xs[base + min(i${r}, ${nvec - 1}u)]), ok${r});`);
    }
  }
  L.push(`  let mean = ${sum(R.map((r) => hsum(w, `x${r}`)).join(" + "))} / ${n}.0;`);
  L.push(`  let var_ = ${sum(R.map((r) => guard(r, hsum(w, `(x${r} - mean) * (x${r} - mean)`), "0.0")).join(" + "))} / ${n}.0;`);
  L.push(`  let rstd = inverseSqrt(var_ + p.eps);`);
  L.push(`  let live = row < p.rows;`);
  for (const r of R) {
    const [wr, br] = held ? [`w${r}`, `b${r}`] : [`${F}(ws[i${r}])`, `${F}(bs[i${r}])`];
    const store = `out[base + i${r}] = ${stype(w, T)}((x${r} - mean) * rstd * ${wr} + ${br});`;
    L.push(`  if (${whole(r) ? "live" : `live && ok${r}`}) { ${store} }`);
  }
  return L.join("\n");
}

/** Weight and bias vectors lane, lane + lanes, … in f32 registers w0…, b0… (an overhanging last one clamped: rowBody does not store it). */
function weightRegisters(s: RowSpec, lanes: number, lane: string): string {
  const nvec = s.n / s.w;
  const F = vtype(s.w);
  const L: string[] = [];
  for (let r = 0; r < Math.ceil(nvec / lanes); r++) {
    const i = (r + 1) * lanes <= nvec ? `${lane} + ${r * lanes}u` : `min(${lane} + ${r * lanes}u, ${nvec - 1}u)`;
    L.push(`  let w${r} = ${F}(ws[${i}]);`, `  let b${r} = ${F}(bs[${i}]);`);
  }
  return L.join("\n");
}

/** The forward row kernels' uniform block and bindings: y, x, weight, bias at T. */
function rowBindings(s: RowSpec): string {
  const S = stype(s.w, s.T);
  return /* wgsl */ `struct P { rows: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${S}>;
@group(0) @binding(2) var<storage, read> xs: array<${S}>;
@group(0) @binding(3) var<storage, read> ws: array<${S}>;
@group(0) @binding(4) var<storage, read> bs: array<${S}>;`;
}

/** Row kernel, one 64-lane workgroup per row of exactly `n` elements (n/w vectors), tree sums. */
function rowWgsl(s: RowSpec): string {
  return /* wgsl */ `${enableF16(s.T)}
${rowBindings(s)}
${TREE_SUM}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  // Uniform per workgroup, so the barriers below stay in uniform control flow.
  let base = min(row, p.rows - 1u) * ${s.n / s.w}u;
${rowBody(s, WG, "lid", (e) => `wg_sum(${e}, lid)`)}
}`;
}

/** Registers (vectors) per lane in the subgroup row kernels: rows up to lanes·32 vectors. */
const SG_REGS = 32;

/**
 * A subgroup forward row kernel's compile-time shape: its RowSpec and
 * RowVariant, and its span: the consecutive rows each subgroup normalises
 * in turn, with weight and bias loaded once into registers for all of them
 * (1: loaded with each row's vectors).
 */
interface RowSgSpec extends RowSpec, RowVariant {
  span: number;
  stream: boolean;
}

/**
 * LayerNorm's variant: a RowVariant and, for the subgroup row kernel, the
 * span (chooseSpan when left out) and the form: `stream` (the default) reads
 * each row twice, once for its statistics and once to normalise it
 * (rowStreamWgsl); `stream: false` holds the row in registers (rowSgWgsl).
 * For the whole-block path, `chunk`: vectors per lane that one stage-1
 * workgroup reduces (BLOCK_CHUNK when left out).
 */
export interface LayerNormVariant extends RowVariant {
  span?: number;
  stream?: boolean;
  chunk?: number;
}

/** Most rows a subgroup walks, and the fewest workgroups it leaves to spread over the device. */
const MAX_SPAN = 4;
const MIN_GROUPS = 64;

/**
 * The span for `rows` rows under `v`: weight and bias loaded once for up to
 * MAX_SPAN rows (on lavapipe they were two of every three loads: 2048×768
 * took 15-20% less time at span 4), while at least MIN_GROUPS workgroups remain.
 */
function chooseSpan(rows: number, v: RowVariant): number {
  return Math.max(1, Math.min(MAX_SPAN, Math.floor(rows / (v.rows * MIN_GROUPS))));
}

/** The variant LayerNorm (forward and backward rows) runs on this device: the forced one, else the device's row variant. */
export function chooseLayerNormVariant(p: DeviceProfile = deviceProfile()): RowVariant {
  return p.force.layerNorm ?? chooseRowVariant(p);
}

/** Whether rows of nvec vectors fit the subgroup row kernel of `v`. */
function sgRowsFit(v: RowVariant, nvec: number): boolean {
  return v.lanes > 0 && Math.ceil(nvec / v.lanes) <= SG_REGS;
}

/**
 * Row kernel with one subgroup of s.lanes lanes per row, s.rows rows per
 * workgroup: sums are subgroupAdd, so there is no workgroup barrier. Back
 * to back on 2048×768 (loaded machine, 8 lanes): 22–40 ms against 136 ms
 * for the 64-lane barrier kernel.
 */
function rowSgWgsl(s: RowSgSpec): string {
  const { lanes: SG, rows: SG_ROWS, span } = s;
  const held = span > 1;
  return /* wgsl */ `${enableF16(s.T)}enable subgroups;
${rowBindings(s)}
@compute @workgroup_size(${SG * SG_ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32, @builtin(local_invocation_index) lid: u32) {
  // Subgroups are consecutive SG-lane slices of the workgroup (lavapipe runs
  // a workgroup as SIMD chunks of SG lanes), so lid / SG names this subgroup.
  let first = ((wid.x + wid.y * nwg.x) * ${SG_ROWS}u + lid / ${SG}u) * ${span}u;
${held ? weightRegisters(s, SG, "sl") : ""}
  for (var k = 0u; k < ${span}u; k++) {
  let row = first + k;
  let base = min(row, p.rows - 1u) * ${s.n / s.w}u;
${rowBody(s, SG, "sl", (e) => `subgroupAdd(${e})`, held)}
  }
}`;
}

/**
 * The streaming subgroup row kernel: per row, one pass over x gives each
 * lane's (count, mean, M2) of its vectors by Welford updates (a vector's own
 * mean and M2 merged by Chan's formula), and the subgroup combines the lanes
 * exactly: mean = Σ nᵢ·meanᵢ / n, M2 = Σ M2ᵢ + nᵢ·(meanᵢ − mean)². A second
 * pass normalises the span's rows together, so each weight and bias vector
 * is loaded once for all of them. Nothing is held across the passes but the
 * statistics: on lavapipe, where a row in registers spills and each load
 * costs about as much from cache as from memory, it took about 27% less CPU
 * time than rowSgWgsl on 8192×768 (12.7 against 17.5 ms at span 4).
 */
function rowStreamWgsl(s: RowSgSpec): string {
  const { n, w, T, lanes: SG, rows: SG_ROWS, span } = s;
  const nvec = n / w;
  const F = vtype(w);
  return /* wgsl */ `${enableF16(T)}enable subgroups;
${rowBindings(s)}
@compute @workgroup_size(${SG * SG_ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32, @builtin(local_invocation_index) lid: u32) {
  // lid / SG names this subgroup, as in rowSgWgsl.
  let first = ((wid.x + wid.y * nwg.x) * ${SG_ROWS}u + lid / ${SG}u) * ${span}u;
  var mean: array<f32, ${span}>;
  var rstd: array<f32, ${span}>;
  for (var k = 0u; k < ${span}u; k++) {
    let base = min(first + k, p.rows - 1u) * ${nvec}u;
    var cnt = 0.0;
    var mu = 0.0;
    var m2 = 0.0;
    for (var i = sl; i < ${nvec}u; i += ${SG}u) {
      let v = ${F}(xs[base + i]);
      let vm = ${hsum(w, "v")} / ${w}.0;
      let dv = v - vm;
      let c = cnt + ${w}.0;
      let delta = vm - mu;
      let f = ${w}.0 / c;
      mu += delta * f;
      m2 += ${hsum(w, "dv * dv")} + delta * delta * cnt * f;
      cnt = c;
    }
    let m = subgroupAdd(cnt * mu) / ${n}.0;
    let dm = mu - m;
    mean[k] = m;
    rstd[k] = inverseSqrt(subgroupAdd(m2 + cnt * dm * dm) / ${n}.0 + p.eps);
  }
  for (var i = sl; i < ${nvec}u; i += ${SG}u) {
    let wv = ${F}(ws[i]);
    let bv = ${F}(bs[i]);
    for (var k = 0u; k < ${span}u; k++) {
      if (first + k < p.rows) {
        let j = (first + k) * ${nvec}u + i;
        out[j] = ${stype(w, T)}((${F}(xs[j]) - mean[k]) * rstd[k] * wv + bv);
      }
    }
  }
}`;
}

/** Stage 1: (count, mean, M2) of one chunk of one row, x at T; the partials are f32. */
function partialWgsl(w: number, T: Precision, chunkVecs: number): string {
  return /* wgsl */ `${enableF16(T)}
struct P { nvec: u32, parts: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> xs: array<${stype(w, T)}>;
${CHAN}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let chunk = wid.x;
  let row = wid.y;
  let lo = chunk * ${WG * chunkVecs}u;
  let hi = min(p.nvec, lo + ${WG * chunkVecs}u);
  var acc = vec3<f32>(0.0);
  for (var i = lo + lid; i < hi; i += ${WG}u) {
    let v = ${vtype(w)}(xs[row * p.nvec + i]);
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

/** Stage 3: elementwise normalise with per-row stats and per-element affine, at T. */
function applyWgsl(w: number, T: Precision): string {
  const F = vtype(w);
  const S = stype(w, T);
  return /* wgsl */ `${enableF16(T)}
struct P { total: u32, nvec: u32, magic: u32, shift: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${S}>;
@group(0) @binding(2) var<storage, read> xs: array<${S}>;
@group(0) @binding(3) var<storage, read> ws: array<${S}>;
@group(0) @binding(4) var<storage, read> bs: array<${S}>;
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>;
${UDIV_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.total) { return; }
  let row = udiv(i, p.magic, p.shift);
  let c = i - row * p.nvec;
  let s = stats[row];
  out[i] = ${S}((${F}(xs[i]) - s.x) * s.y * ${F}(ws[c]) + ${F}(bs[c]));
}`;
}

/**
 * LayerNorm over the trailing dims of x that equal weight.shape (weight and
 * bias share that shape). eps defaults to 1e-5 (PyTorch's default).
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5, variant?: LayerNormVariant): Tensor {
  const op = "layerNorm";
  const T = precisionOf(op, [x, weight, bias]);
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
  const out = Tensor.empty(x.shape, T);
  if (out.size === 0) return out;
  const w = n % 4 === 0 ? 4 : 1;
  const nvec = n / w;
  const prof = deviceProfile(g);
  const v = variant ?? chooseLayerNormVariant(prof);
  checkRowVariant(op, prof, v);
  if (sgRowsFit(v, nvec)) {
    const span = variant?.span ?? chooseSpan(rows, v);
    if (!Number.isInteger(span) || span < 1) fail(op, `span must be a positive integer, got ${span}`);
    const stream = variant?.stream ?? true;
    const spec: RowSgSpec = { n, w, T, lanes: v.lanes, rows: v.rows, span, stream };
    const pipe = variantPipeline("layernorm:rowsg", spec, stream ? rowStreamWgsl : rowSgWgsl);
    const params = new Params().u32(rows).f32(eps);
    g.dispatch(pipe, [wholeBinding(out), wholeBinding(x), wholeBinding(weight), wholeBinding(bias)], params.bytes(), g.grid(Math.ceil(rows / (v.rows * span))));
    return out;
  }
  if (Math.ceil(nvec / WG) <= ROW_REGS) {
    const pipe = variantPipeline("layernorm:row", { n, w, T }, rowWgsl);
    const params = new Params().u32(rows).f32(eps);
    g.dispatch(pipe, [wholeBinding(out), wholeBinding(x), wholeBinding(weight), wholeBinding(bias)], params.bytes(), g.grid(rows));
    return out;
  }
  // Whole-block path: partials, stats, apply.
  const chunk = variant?.chunk ?? BLOCK_CHUNK;
  if (!Number.isInteger(chunk) || chunk < 1) fail(op, `chunk must be a positive integer, got ${chunk}`);
  const parts = Math.ceil(nvec / (WG * chunk));
  if (rows > g.maxWorkgroupsPerDim || parts > g.maxWorkgroupsPerDim) fail(op, `too many rows or chunks: ${shapes}`);
  const partial = Tensor.empty([rows, parts, 4]);
  const stats = Tensor.empty([rows, 2]);
  try {
    const p1 = variantPipeline("layernorm:partial", { w, T, chunk }, (s) => partialWgsl(s.w, s.T, s.chunk));
    g.dispatch(p1, [wholeBinding(partial), wholeBinding(x)], new Params().u32(nvec).u32(parts).bytes(), [parts, rows, 1]);
    const p2 = variantPipeline("layernorm:stats", {}, () => STATS_WGSL);
    g.dispatch(p2, [wholeBinding(stats), wholeBinding(partial)], new Params().u32(parts).f32(eps).bytes(), [rows, 1, 1]);
    const p3 = variantPipeline("layernorm:apply", { w, T }, (s) => applyWgsl(s.w, s.T));
    const total = rows * nvec;
    g.dispatch(
      p3,
      [wholeBinding(out), wholeBinding(x), wholeBinding(weight), wholeBinding(bias), wholeBinding(stats)],
      new Params().u32(total).u32(nvec).divisor(nvec).bytes(),
      g.grid(Math.ceil(total / 256)),
    );
  } finally {
    // Pooled buffers: released now, reused only by later-recorded work.
    partial.dispose();
    stats.dispose();
  }
  return out;
}

// ---------------------------------------------------------------------------
// Backward of LayerNorm over the trailing dims equal to weight.shape, for
// both forms: SegVol's last-dim norm and the
// whole-trailing-block norm. With x̂ = (x − μ)·r, r = 1/sqrt(var + eps),
// g = w·dy and N the normalised size:
//   dx = r · (g − mean(g) − x̂ · mean(g · x̂))      (per row)
//   dweight = Σ_rows dy · x̂,   dbias = Σ_rows dy  (per element of the block)
// μ and r are recomputed from x (cheaper than saving them: one more read of x).
//
// Two paths, as in the forward:
//  - rows (short rows): one subgroup (or one 64-lane workgroup)
//    per row keeps the row's x and dy in registers; μ, r and the two means
//    are exact sums over registers; the kernel writes dx and (μ, r).
//  - blocks (long rows, e.g. 192·16·32·32): Chan partials of x per chunk →
//    (μ, r) per row; partial sums of g and g·x̂ per chunk → per-row sums;
//    then dx elementwise.
// Both then sum dweight / dbias over rows in chunks of rows (partials per
// chunk, merged by a second pass): no atomics, and enough invocations to
// keep both cores busy when there are many short rows.

/** The backward row kernel's compile-time shape: rows of n elements read as vectors of w (f32), and its RowVariant (lanes 0: 64-lane workgroups). */
interface RowBackwardSpec extends RowVariant {
  n: number;
  w: number;
}

/** Largest row (in vectors) for the 64-lane row kernel (8 registers a lane). */
const WG_MAX_VECS = WG * 8;
/** Rows per partial in the dweight/dbias column sums. */
const COL_ROWS = 32;



/**
 * Row kernel for rows of n elements: lanes > 0 = one subgroup per row
 * (`rows` rows per workgroup, subgroupAdd), else one 64-lane workgroup per
 * row (tree sums).
 */
function rowBackwardWgsl(s: RowBackwardSpec): string {
  const { n, w, lanes: SG, rows: SG_ROWS } = s;
  const sg = SG > 0;
  const nvec = n / w;
  const lanes = sg ? SG : WG;
  const regs = Math.ceil(nvec / lanes);
  const T = vtype(w);
  const sum = (e: string) => (sg ? `subgroupAdd(${e})` : `wg_sum(${e}, lid)`);
  const R = Array.from({ length: regs }, (_, r) => r);
  const L: string[] = [];
  for (const r of R) {
    // Lanes past the row's end hold zeros and are excluded from the sums.
    L.push(`  let i${r} = ${sg ? "sl" : "lid"} + ${r * lanes}u;`);
    L.push(`  let ok${r} = i${r} < ${nvec}u;`);
    L.push(`  let j${r} = min(i${r}, ${nvec - 1}u);`);
    L.push(`  let x${r} = select(${T}(0.0), xs[base + j${r}], ok${r});`);
    L.push(`  let g${r} = select(${T}(0.0), gs[base + j${r}] * ws[j${r}], ok${r});`);
  }
  L.push(`  let mean = ${sum(R.map((r) => hsum(w, `x${r}`)).join(" + "))} / ${n}.0;`);
  L.push(`  let var_ = ${sum(R.map((r) => `select(0.0, ${hsum(w, `(x${r} - mean) * (x${r} - mean)`)}, ok${r})`).join(" + "))} / ${n}.0;`);
  L.push(`  let rstd = inverseSqrt(var_ + p.eps);`);
  for (const r of R) L.push(`  let xh${r} = (x${r} - mean) * rstd;`);
  L.push(`  let mg = ${sum(R.map((r) => hsum(w, `g${r}`)).join(" + "))} / ${n}.0;`);
  L.push(`  let mgx = ${sum(R.map((r) => `select(0.0, ${hsum(w, `g${r} * xh${r}`)}, ok${r})`).join(" + "))} / ${n}.0;`);
  L.push(`  if (row >= p.rows) { return; }`);
  for (const r of R) L.push(`  if (ok${r}) { dx[base + i${r}] = rstd * (g${r} - mg - xh${r} * mgx); }`);
  L.push(`  if (${sg ? "sl" : "lid"} == 0u) { stats[row] = vec2<f32>(mean, rstd); }`);
  const rowExpr = sg ? `(wid.x + wid.y * nwg.x) * ${SG_ROWS}u + lid / ${SG}u` : "wid.x + wid.y * nwg.x";
  return /* wgsl */ `${sg ? "enable subgroups;" : ""}
struct P { rows: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> dx: array<${T}>;
@group(0) @binding(2) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> xs: array<${T}>;
@group(0) @binding(4) var<storage, read> ws: array<${T}>;
@group(0) @binding(5) var<storage, read> gs: array<${T}>;
${sg ? "" : TREE_SUM}
@compute @workgroup_size(${sg ? SG * SG_ROWS : WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${sg ? ", @builtin(subgroup_invocation_id) sl: u32" : ""}) {
  // With subgroups, a workgroup runs as SG-lane subgroups in lane order, so lid / SG names this lane's subgroup (row).
  let row = ${rowExpr};
  // Uniform per workgroup (or subgroup), so the sums stay in uniform control flow.
  let base = min(row, p.rows - 1u) * ${nvec}u;
${L.join("\n")}
}`;
}

const PAIR_SUM = /* wgsl */ `
var<workgroup> red2: array<vec2<f32>, ${WG}>;
fn wg_sum2(v: vec2<f32>, lid: u32) -> vec2<f32> {
  red2[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red2[lid] += red2[lid + s]; }
    workgroupBarrier();
  }
  return red2[0];
}`;

/** Block stage 1: (count, mean, M2) of one chunk of one row of x. */
function blockMomentsWgsl(w: number): string {
  return /* wgsl */ `
struct P { nvec: u32, parts: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> xs: array<${vtype(w)}>;
${CHAN}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lo = wid.x * ${WG * CHUNK_VECS}u;
  let hi = min(p.nvec, lo + ${WG * CHUNK_VECS}u);
  var acc = vec3<f32>(0.0);
  for (var i = lo + lid; i < hi; i += ${WG}u) {
    let v = xs[wid.y * p.nvec + i];
    let m = ${hsum(w, "v")} / ${w}.0;
    let d = v - m;
    acc = chan(acc, vec3<f32>(${w}.0, m, ${hsum(w, "d * d")}));
  }
  let r = wg_chan(acc, lid);
  if (lid == 0u) { part[wid.y * p.parts + wid.x] = vec4<f32>(r, 0.0); }
}`;
}

/** Block stage 2: a row's moment partials → (mean, rstd). */
const BLOCK_STATS_WGSL = /* wgsl */ `
struct P { parts: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> part: array<vec4<f32>>;
${CHAN}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var acc = vec3<f32>(0.0);
  for (var i = lid; i < p.parts; i += ${WG}u) { acc = chan(acc, part[wid.x * p.parts + i].xyz); }
  let r = wg_chan(acc, lid);
  if (lid == 0u) { stats[wid.x] = vec2<f32>(r.y, inverseSqrt(r.z / r.x + p.eps)); }
}`;

/** Block stage 3: partial (Σ g, Σ g·x̂) of one chunk of one row. */
function blockSumsWgsl(w: number): string {
  const T = vtype(w);
  return /* wgsl */ `
struct P { nvec: u32, parts: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> part: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> xs: array<${T}>;
@group(0) @binding(3) var<storage, read> ws: array<${T}>;
@group(0) @binding(4) var<storage, read> gs: array<${T}>;
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>;
${PAIR_SUM}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let st = stats[wid.y];
  let lo = wid.x * ${WG * CHUNK_VECS}u;
  let hi = min(p.nvec, lo + ${WG * CHUNK_VECS}u);
  var acc = vec2<f32>(0.0);
  for (var i = lo + lid; i < hi; i += ${WG}u) {
    let e = wid.y * p.nvec + i;
    let g = gs[e] * ws[i];
    acc += vec2<f32>(${hsum(w, "g")}, ${hsum(w, "g * (xs[e] - st.x)")} * st.y);
  }
  let r = wg_sum2(acc, lid);
  if (lid == 0u) { part[wid.y * p.parts + wid.x] = r; }
}`;
}

/** Block stage 4: a row's partial sums → (mean g, mean g·x̂). */
const BLOCK_MEANS_WGSL = /* wgsl */ `
struct P { parts: u32, n: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> means: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> part: array<vec2<f32>>;
${PAIR_SUM}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var acc = vec2<f32>(0.0);
  for (var i = lid; i < p.parts; i += ${WG}u) { acc += part[wid.x * p.parts + i]; }
  let r = wg_sum2(acc, lid);
  if (lid == 0u) { means[wid.x] = r / p.n; }
}`;

/** Block stage 5: dx elementwise. */
function blockDxWgsl(w: number): string {
  const T = vtype(w);
  return /* wgsl */ `
struct P { total: u32, nvec: u32, magic: u32, shift: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> dx: array<${T}>;
@group(0) @binding(2) var<storage, read> xs: array<${T}>;
@group(0) @binding(3) var<storage, read> ws: array<${T}>;
@group(0) @binding(4) var<storage, read> gs: array<${T}>;
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> means: array<vec2<f32>>;
${UDIV_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.total) { return; }
  let row = udiv(i, p.magic, p.shift);
  let c = i - row * p.nvec;
  let st = stats[row];
  let mm = means[row];
  dx[i] = st.y * (gs[i] * ws[c] - mm.x - (xs[i] - st.x) * st.y * mm.y);
}`;
}

/** dweight/dbias stage 1: per column vector and chunk of COL_ROWS rows, (Σ dy·x̂, Σ dy). */
function colPartialWgsl(w: number): string {
  const T = vtype(w);
  return /* wgsl */ `
struct P { rows: u32, nvec: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> part: array<${T}>;
@group(0) @binding(2) var<storage, read> xs: array<${T}>;
@group(0) @binding(3) var<storage, read> gs: array<${T}>;
@group(0) @binding(4) var<storage, read> stats: array<vec2<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.nvec * p.chunks) { return; }
  let k = i / p.nvec;
  let c = i - k * p.nvec;
  let r1 = min(p.rows, (k + 1u) * ${COL_ROWS}u);
  var dw = ${T}(0.0);
  var db = ${T}(0.0);
  for (var r = k * ${COL_ROWS}u; r < r1; r++) {
    let st = stats[r];
    let e = r * p.nvec + c;
    let g = gs[e];
    dw = fma(g, (xs[e] - st.x) * st.y, dw);
    db += g;
  }
  part[(2u * k) * p.nvec + c] = dw;
  part[(2u * k + 1u) * p.nvec + c] = db;
}`;
}

/** dweight/dbias stage 2: sum the chunks' partials. */
function colMergeWgsl(w: number): string {
  const T = vtype(w);
  return /* wgsl */ `
struct P { nvec: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> dw: array<${T}>;
@group(0) @binding(2) var<storage, read_write> db: array<${T}>;
@group(0) @binding(3) var<storage, read> part: array<${T}>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * 256u;
  if (c >= p.nvec) { return; }
  var a = ${T}(0.0);
  var b = ${T}(0.0);
  for (var k = 0u; k < p.chunks; k++) {
    a += part[(2u * k) * p.nvec + c];
    b += part[(2u * k + 1u) * p.nvec + c];
  }
  dw[c] = a;
  db[c] = b;
}`;
}


/**
 * Gradients of `layerNorm(x, weight, bias, eps)` given the output gradient
 * dy (shape of x): dx (shape of x), dweight and dbias (shape of weight).
 * The bias itself is not needed.
 */
export function layerNormBackward(x: Tensor, weight: Tensor, dy: Tensor, eps = 1e-5, variant?: RowVariant): { dx: Tensor; dweight: Tensor; dbias: Tensor } {
  const op = "layerNormBackward";
  checkInputs(op, [x, weight, dy]);
  const shapes = `x ${shapeStr(x.shape)}, weight ${shapeStr(weight.shape)}, dy ${shapeStr(dy.shape)}`;
  if (!sameShape(x.shape, dy.shape)) fail(op, `dy must have the shape of x: ${shapes}`);
  const k = weight.rank;
  if (k === 0 || k > x.rank || !sameShape(x.shape.slice(x.rank - k), weight.shape)) {
    fail(op, `weight shape must equal the trailing dims of x: ${shapes}`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) fail(op, `eps must be a finite non-negative number, got ${eps}`);
  const g = gpu();
  for (const t of [x, dy]) {
    if (t.byteLength > g.maxBindingBytes) fail(op, `tensor ${shapeStr(t.shape)} (${t.byteLength} bytes) exceeds one storage binding (${g.maxBindingBytes} bytes): ${shapes}`);
  }
  const n = numel(weight.shape);
  const rows = numel(x.shape.slice(0, x.rank - k));
  const dx = Tensor.empty(x.shape);
  const dweight = Tensor.empty(weight.shape);
  const dbias = Tensor.empty(weight.shape);
  if (n === 0) return { dx, dweight, dbias };
  if (rows === 0) {
    dweight.write(new Float32Array(n));
    dbias.write(new Float32Array(n));
    return { dx, dweight, dbias };
  }
  const w = n % 4 === 0 ? 4 : 1;
  const nvec = n / w;
  const temps: Tensor[] = [];
  const tmp = (shape: number[]) => {
    const t = Tensor.empty(shape);
    temps.push(t);
    return t;
  };
  try {
    const stats = tmp([rows, 2]);
    const prof = deviceProfile(g);
    const v = variant ?? chooseLayerNormVariant(prof);
    checkRowVariant(op, prof, v);
    const sg = sgRowsFit(v, nvec);
    if (sg || nvec <= WG_MAX_VECS) {
      const spec: RowBackwardSpec = sg ? { n, w, lanes: v.lanes, rows: v.rows } : { n, w, lanes: 0, rows: 1 };
      const pipe = variantPipeline("layernorm_bwd:row", spec, rowBackwardWgsl);
      const groups = sg ? Math.ceil(rows / v.rows) : rows;
      g.dispatch(pipe, [wholeBinding(dx), wholeBinding(stats), wholeBinding(x), wholeBinding(weight), wholeBinding(dy)], new Params().u32(rows).f32(eps).bytes(), g.grid(groups));
    } else {
      const parts = Math.ceil(nvec / (WG * CHUNK_VECS));
      if (rows > g.maxWorkgroupsPerDim || parts > g.maxWorkgroupsPerDim) fail(op, `too many rows or chunks: ${shapes}`);
      const moments = tmp([rows, parts, 4]);
      const p1 = variantPipeline("layernorm_bwd:moments", { w }, (s) => blockMomentsWgsl(s.w));
      g.dispatch(p1, [wholeBinding(moments), wholeBinding(x)], new Params().u32(nvec).u32(parts).bytes(), [parts, rows, 1]);
      const p2 = variantPipeline("layernorm_bwd:stats", {}, () => BLOCK_STATS_WGSL);
      g.dispatch(p2, [wholeBinding(stats), wholeBinding(moments)], new Params().u32(parts).f32(eps).bytes(), [rows, 1, 1]);
      const sums = tmp([rows, parts, 2]);
      const p3 = variantPipeline("layernorm_bwd:sums", { w }, (s) => blockSumsWgsl(s.w));
      g.dispatch(p3, [wholeBinding(sums), wholeBinding(x), wholeBinding(weight), wholeBinding(dy), wholeBinding(stats)], new Params().u32(nvec).u32(parts).bytes(), [parts, rows, 1]);
      const means = tmp([rows, 2]);
      const p4 = variantPipeline("layernorm_bwd:means", {}, () => BLOCK_MEANS_WGSL);
      g.dispatch(p4, [wholeBinding(means), wholeBinding(sums)], new Params().u32(parts).f32(n).bytes(), [rows, 1, 1]);
      const p5 = variantPipeline("layernorm_bwd:dx", { w }, (s) => blockDxWgsl(s.w));
      const total = rows * nvec;
      g.dispatch(
        p5,
        [wholeBinding(dx), wholeBinding(x), wholeBinding(weight), wholeBinding(dy), wholeBinding(stats), wholeBinding(means)],
        new Params().u32(total).u32(nvec).divisor(nvec).bytes(),
        g.grid(Math.ceil(total / 256)),
      );
    }
    // dweight, dbias: column sums over rows in chunks of COL_ROWS.
    const chunks = Math.ceil(rows / COL_ROWS);
    const part = tmp([chunks, 2, n]);
    const c1 = variantPipeline("layernorm_bwd:colpart", { w }, (s) => colPartialWgsl(s.w));
    g.dispatch(c1, [wholeBinding(part), wholeBinding(x), wholeBinding(dy), wholeBinding(stats)], new Params().u32(rows).u32(nvec).u32(chunks).bytes(), g.grid(Math.ceil((chunks * nvec) / 256)));
    const c2 = variantPipeline("layernorm_bwd:colmerge", { w }, (s) => colMergeWgsl(s.w));
    g.dispatch(c2, [wholeBinding(dweight), wholeBinding(dbias), wholeBinding(part)], new Params().u32(nvec).u32(chunks).bytes(), g.grid(Math.ceil(nvec / 256)));
  } catch (e) {
    dx.dispose();
    dweight.dispose();
    dbias.dispose();
    throw e;
  } finally {
    // Pooled buffers: released now, reused only by later-recorded work.
    for (const t of temps) t.dispose();
  }
  return { dx, dweight, dbias };
}

/**
 * LayerNorm as a differentiable op (attrs: eps). Saves x and the weight
 * (mean and rstd are recomputed); one backward computes all three gradients.
 */
export const layerNormOp = defineOp<[Tensor, Tensor, Tensor], { eps: number }>({
  name: "layerNorm",
  forward: ([x, weight, bias], { eps }) => layerNorm(x, weight, bias, eps),
  save: ([x, weight]) => [x, weight],
  backward: ([x, weight], g, { attrs: { eps } }) => {
    const { dx, dweight, dbias } = layerNormBackward(x!, weight!, g, eps);
    return [dx, dweight, dbias];
  },
});
