// Softmax along one axis. The tensor is viewed as [outer, L, inner]; one
// subgroup (or, without subgroups, one 64-lane workgroup) owns an
// (outer, inner) row of L elements spaced `inner` apart.
// Lanes keep an online (max, sum of exp) pair over their strided elements,
// the pairs are merged in workgroup memory, then the row is written in a
// second pass: two loads and one store per element, stable for any input.
// Contiguous rows (inner = 1, L a multiple of 4) are read as vec4, folding
// each vector into the pair with one rescale: a quarter of the loads and
// 1.25 exp per element instead of 2 in the first pass.
// A strided axis whose inner size is a multiple of 4 runs the columns
// kernel instead (the variant's `cols`): one invocation owns 4 or 8
// adjacent rows, which lie side by side in memory, and walks L with one
// vec4 load per 4 rows, keeping a (max, sum) pair per row in vec4 lanes:
// no subgroup operations or barriers, a quarter of the loads, and
// neighbouring invocations read neighbouring memory. It converts f16 by
// integer operations (f16bits.ts), cheaper than WGSL's on lavapipe.
// Forward at either precision (precision.ts): x and y f32, or both f16 read
// into f32 registers (the max and the sum of exp are f32) and rounded once
// when y is stored. Backward is f32.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { ROWS_WGSL, axisRows, columnsFor, treeReduceWgsl, wholeBinding } from "./axis_rows.js";
import { checkInputs, fail, sameShape } from "./check.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { F16_BITS_WGSL, loadVec4, storeVec4, vec4Storage } from "./f16bits.js";
import { enableF16, precisionOf, type Precision } from "./precision.js";
import { checkRowVariant, chooseRowVariant, deviceProfile, rowVariants, variantName, variantPipeline, type DeviceProfile, type RowVariant } from "./profile.js";

const WG = 64;

/**
 * Softmax's variant: the row kernel's (RowVariant: lanes, rows) and `cols`,
 * the most adjacent rows an invocation of the columns kernel owns on a
 * strided axis (8: two vectors, loads that can be in flight together), each
 * call taking the largest of 8 and 4 up to it that divides the inner size;
 * 1, or an inner size that is no multiple of 4, runs the row kernel.
 */
export interface SoftmaxVariant extends RowVariant {
  cols: 1 | 4 | 8;
}

/** A softmax kernel's compile-time shape: its row variant, the precision of x and y, and the elements per load (4: len counts vectors). */
interface SoftmaxSpec extends RowVariant {
  T: Precision;
  w: 1 | 4;
}

/**
 * The uniform block, row_base, the bindings y, x at T (as vectors of w),
 * `ld(i)`, element or vector i in f32, and `fold(a, v)`, a lane's running
 * (max, sum of exp(x − max)) with v folded in.
 */
function softmaxBindings(s: SoftmaxSpec): string {
  const S = s.w === 4 ? `vec4<${s.T}>` : s.T;
  const F = s.w === 4 ? "vec4<f32>" : "f32";
  const vmax = s.w === 4 ? "max(max(v.x, v.y), max(v.z, v.w))" : "v";
  const vsum = s.w === 4 ? "dot(exp(v - m), vec4<f32>(1.0))" : "exp(v - m)";
  return `${ROWS_WGSL}
@group(0) @binding(1) var<storage, read_write> out: array<${S}>;
@group(0) @binding(2) var<storage, read> xs: array<${S}>;
fn ld(i: u32) -> ${F} { return ${F}(xs[i]); }
fn fold(a: vec2<f32>, v: ${F}) -> vec2<f32> {
  let m = max(a.x, ${vmax});
  return vec2<f32>(m, a.y * exp(a.x - m) + ${vsum});
}`;
}

/** The portable kernel: one 64-lane workgroup per row, the lanes' (max, sum) pairs merged in workgroup memory. */
function softmaxWgsl(s: SoftmaxSpec): string {
  const T = s.w === 4 ? `vec4<${s.T}>` : s.T;
  return /* wgsl */ `${enableF16(s.T)}
${softmaxBindings(s)}
var<workgroup> red: array<vec2<f32>, ${WG}>;
// Merge two (max, sum of exp(x − max)) pairs.
fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let base = row_base(min(row, p.rows - 1u));
  // Lanes with no element hold (-3.4e38, 0): merging them changes nothing.
  var acc = vec2<f32>(-3.4e38, 0.0);
  for (var l = lid; l < p.len; l += ${WG}u) {
    acc = fold(acc, ld(base + l * p.inner));
  }
  red[lid] = acc;
  ${treeReduceWgsl(WG, (a, b) => `merge(${a}, ${b})`)}
  let tot = red[0];
  if (row >= p.rows) { return; }
  let inv = 1.0 / tot.y;
  for (var l = lid; l < p.len; l += ${WG}u) {
    let i = base + l * p.inner;
    out[i] = ${T}(exp(ld(i) - tot.x) * inv);
  }
}`;
}

// One subgroup of v.lanes lanes per row, v.rows rows per workgroup, no
// workgroup barrier (on lavapipe a barrier splits the shader into
// coroutines). With several rows a workgroup, subgroups are consecutive
// lanes-slices of it (as on lavapipe), so lid / lanes names the row.
function softmaxSgWgsl(v: SoftmaxSpec): string {
  const { lanes, rows } = v;
  const T = v.w === 4 ? `vec4<${v.T}>` : v.T;
  return /* wgsl */ `${enableF16(v.T)}enable subgroups;
${softmaxBindings(v)}
@compute @workgroup_size(${lanes * rows})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sl: u32) {
  let row = (wid.x + wid.y * nwg.x) * ${rows}u + lid / ${lanes}u;
  let base = row_base(min(row, p.rows - 1u));
  // (max, sum of exp): a lane with no element holds (-3.4e38, 0), which changes nothing.
  var acc = vec2<f32>(-3.4e38, 0.0);
  for (var l = sl; l < p.len; l += ${lanes}u) {
    acc = fold(acc, ld(base + l * p.inner));
  }
  let mx = subgroupMax(acc.x);
  let inv = 1.0 / subgroupAdd(acc.y * exp(acc.x - mx));
  if (row >= p.rows) { return; }
  for (var l = sl; l < p.len; l += ${lanes}u) {
    let i = base + l * p.inner;
    out[i] = ${T}(exp(ld(i) - mx) * inv);
  }
}`;
}

/** The columns kernel's compile-time shape: the precision of x and y, and the vec4s an invocation owns. */
interface ColumnsSpec {
  T: Precision;
  vecs: number;
}

/**
 * One invocation per group of s.vecs·4 adjacent rows (rows = groups,
 * inner = groups per outer index): a (max, sum of exp) pair per row in the
 * lanes of one vec4 per vector, folded online over the axis, then the
 * row's outputs in a second pass.
 */
function softmaxColumnsWgsl(s: ColumnsSpec): string {
  const V = s.vecs;
  const each = (f: (j: number) => string, sep = "\n    ") => Array.from({ length: V }, (_, j) => f(j)).join(sep);
  const at = (j: number) => `idx${j ? ` + ${j}u` : ""}`;
  return /* wgsl */ `${ROWS_WGSL}
${F16_BITS_WGSL}
@group(0) @binding(1) var<storage, read_write> out: array<${vec4Storage(s.T)}>;
@group(0) @binding(2) var<storage, read> xs: array<${vec4Storage(s.T)}>;
fn ld(i: u32) -> vec4<f32> { return ${loadVec4(s.T, "xs[i]")}; }
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * ${WG}u;
  if (c >= p.rows) { return; }
  let stride = p.inner * ${V}u;
  let first = row_base(c) * ${V}u;
  // (max, sum of exp(x − max)) of each row, in the lanes of m and s.
  ${each((j) => `var m${j} = vec4<f32>(-3.4e38); var s${j} = vec4<f32>(0.0);`, "\n  ")}
  var idx = first;
  for (var l = 0u; l < p.len; l++) {
    ${each((j) => `let v${j} = ld(${at(j)}); let n${j} = max(m${j}, v${j}); s${j} = s${j} * exp(m${j} - n${j}) + exp(v${j} - n${j}); m${j} = n${j};`)}
    idx += stride;
  }
  ${each((j) => `let r${j} = 1.0 / s${j};`, "\n  ")}
  idx = first;
  for (var l = 0u; l < p.len; l++) {
    ${each((j) => `out[${at(j)}] = ${storeVec4(s.T, `exp(ld(${at(j)}) - m${j}) * r${j}`)};`)}
    idx += stride;
  }
}`;
}

/** The variant softmax runs on this device: the forced knobs (`force.softmax`), else the device's row variant (profile.ts) and 8 columns. */
export function chooseSoftmaxVariant(p: DeviceProfile = deviceProfile()): SoftmaxVariant {
  return { ...chooseRowVariant(p), cols: 8, ...p.force.softmax };
}

/** Every variant this device runs: each row variant (`rowVariants`), with strided axes in columns of 8 and 4 and without. */
export function softmaxVariants(p: DeviceProfile): SoftmaxVariant[] {
  return rowVariants(p).flatMap((v) => ([8, 4, 1] as const).map((cols) => ({ ...v, cols })));
}

/**
 * Softmax along `axis` (default the last). `variant` forces knobs of the
 * variant (`softmaxVariants(deviceProfile())` lists those this device runs;
 * those left out are chosen).
 */
export function softmax(x: Tensor, axis = -1, variant?: Partial<SoftmaxVariant>): Tensor {
  const op = "softmax";
  const T = precisionOf(op, [x]);
  const { len, inner, rows } = axisRows(op, x, axis);
  const g = gpu();
  const out = Tensor.empty(x.shape, T);
  if (out.size === 0) return out;
  const prof = deviceProfile(g);
  const v = { ...chooseSoftmaxVariant(prof), ...variant };
  if (![1, 4, 8].includes(v.cols)) fail(op, `variant ${variantName(v)}: cols must be 1, 4 or 8`);
  checkRowVariant(op, prof, { lanes: v.lanes, rows: v.rows });
  const cols = columnsFor(v.cols, inner);
  if (cols > 0) {
    const pipe = variantPipeline("softmax_columns", { T, vecs: cols / 4 }, softmaxColumnsWgsl);
    const groups = rows / cols;
    const params = new Params().u32(groups).u32(len).u32(inner / cols);
    g.dispatch(pipe, [wholeBinding(out), wholeBinding(x)], params.bytes(), g.grid(Math.ceil(groups / WG)));
    return out;
  }
  const w = inner === 1 && len % 4 === 0 ? 4 : 1;
  const spec: SoftmaxSpec = { lanes: v.lanes, rows: v.rows, T, w };
  const pipe = variantPipeline("softmax", spec, (s) => (s.lanes > 0 ? softmaxSgWgsl(s) : softmaxWgsl(s)));
  const params = new Params().u32(rows).u32(len / w).u32(inner);
  g.dispatch(pipe, [wholeBinding(out), wholeBinding(x)], params.bytes(), g.grid(v.lanes > 0 ? Math.ceil(rows / v.rows) : rows));
  return out;
}

// ---------------------------------------------------------------------------
// Backward of softmax along one axis from its output y: dx = y · (dy − Σ_axis dy·y). Same layout as the forward: the
// tensor is viewed as [outer, L, inner] and each workgroup owns one
// (outer, inner) row of L elements spaced `inner` apart; lanes sum their
// strided dy·y, the sums meet in workgroup memory, and a second pass writes
// dx (four loads and one store per element, as vec4 on contiguous rows).

/**
 * w = 4: contiguous rows (inner = 1, len % 4 = 0) read as vec4, a quarter of
 * the loads; `len` and `inner` are then counted in vectors.
 */
function softmaxBackwardWgsl(w: 1 | 4): string {
  const T = w === 4 ? "vec4<f32>" : "f32";
  const dot = w === 4 ? "dot(ys[i], gs[i])" : "ys[i] * gs[i]";
  return /* wgsl */ `
${ROWS_WGSL}
@group(0) @binding(1) var<storage, read_write> dx: array<${T}>;
@group(0) @binding(2) var<storage, read> ys: array<${T}>;
@group(0) @binding(3) var<storage, read> gs: array<${T}>;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let base = row_base(min(row, p.rows - 1u));
  var acc = 0.0;
  for (var l = lid; l < p.len; l += ${WG}u) {
    let i = base + l * p.inner;
    acc += ${dot};
  }
  red[lid] = acc;
  ${treeReduceWgsl(WG, (a, b) => `${a} + ${b}`)}
  let dot_ = red[0];
  if (row >= p.rows) { return; }
  for (var l = lid; l < p.len; l += ${WG}u) {
    let i = base + l * p.inner;
    dx[i] = ys[i] * (gs[i] - dot_);
  }
}`;
}

/** Gradient of `softmax(x, axis)` w.r.t. x, from its output y and the output gradient dy. */
export function softmaxBackward(y: Tensor, dy: Tensor, axis = -1): Tensor {
  const op = "softmaxBackward";
  checkInputs(op, [y, dy]);
  if (!sameShape(y.shape, dy.shape)) fail(op, `y ${shapeStr(y.shape)} and dy ${shapeStr(dy.shape)} differ in shape`);
  const { len, inner, rows } = axisRows(op, y, axis, "y");
  const g = gpu();
  const dx = Tensor.empty(y.shape);
  if (dx.size === 0) return dx;
  const w: 1 | 4 = inner === 1 && len % 4 === 0 ? 4 : 1;
  const pipe = variantPipeline("softmax_bwd", { w }, (s) => softmaxBackwardWgsl(s.w));
  const params = new Params().u32(rows).u32(len / w).u32(inner);
  g.dispatch(pipe, [wholeBinding(dx), wholeBinding(y), wholeBinding(dy)], params.bytes(), g.grid(rows));
  return dx;
}

/** Softmax along `axis` as a differentiable op; saves its output y. */
export const softmaxOp = defineOp<[Tensor], { axis: number }>({
  name: "softmax",
  forward: ([x], { axis }) => softmax(x, axis),
  save: (_x, out) => [out],
  backward: ([y], g, { attrs: { axis } }) => [softmaxBackward(y!, g, axis)],
});
