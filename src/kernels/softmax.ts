// Softmax along one axis. The tensor is viewed as [outer, L, inner]; one
// subgroup (or, without subgroups of 8, one 64-lane workgroup) owns an
// (outer, inner) row of L elements spaced `inner` apart.
// Lanes keep an online (max, sum of exp) pair over their strided elements,
// the pairs are merged in workgroup memory, then the row is written in a
// second pass: two loads and one store per element, stable for any input.
import { gpu } from "../tensor/device.js";
import { Tensor } from "../tensor/tensor.js";
import { ROWS_WGSL, axisRows, treeReduceWgsl, wholeBinding } from "./axis_rows.js";
import { checkInputs } from "./check.js";
import { Params } from "./params.js";
import { fixedSubgroups } from "./subgroups.js";

const WG = 64;

const SOFTMAX_WGSL = /* wgsl */ `
${ROWS_WGSL}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
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
    acc = merge(acc, vec2<f32>(xs[base + l * p.inner], 1.0));
  }
  red[lid] = acc;
  ${treeReduceWgsl(WG, (a, b) => `merge(${a}, ${b})`)}
  let tot = red[0];
  if (row >= p.rows) { return; }
  let inv = 1.0 / tot.y;
  for (var l = lid; l < p.len; l += ${WG}u) {
    let i = base + l * p.inner;
    out[i] = exp(xs[i] - tot.x) * inv;
  }
}`;

/** Subgroup variant: lanes per row (one subgroup) and rows per workgroup. */
const SG = 8;
const SG_ROWS = 8;

// One subgroup per row, no workgroup barrier (on lavapipe a barrier splits
// the shader into coroutines). Subgroups are consecutive SG-lane slices of
// the workgroup there, so lid / SG names the row within the workgroup.
const SOFTMAX_SG_WGSL = /* wgsl */ `enable subgroups;
${ROWS_WGSL}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@compute @workgroup_size(${SG * SG_ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sl: u32) {
  let row = (wid.x + wid.y * nwg.x) * ${SG_ROWS}u + lid / ${SG}u;
  let base = row_base(min(row, p.rows - 1u));
  var m = -3.4e38;
  var s = 0.0;
  for (var l = sl; l < p.len; l += ${SG}u) {
    let v = xs[base + l * p.inner];
    let mn = max(m, v);
    s = s * exp(m - mn) + exp(v - mn);
    m = mn;
  }
  let mx = subgroupMax(m);
  let inv = 1.0 / subgroupAdd(s * exp(m - mx));
  if (row >= p.rows) { return; }
  for (var l = sl; l < p.len; l += ${SG}u) {
    let i = base + l * p.inner;
    out[i] = exp(xs[i] - mx) * inv;
  }
}`;

/** Softmax along `axis` (default the last). */
export function softmax(x: Tensor, axis = -1): Tensor {
  const op = "softmax";
  checkInputs(op, [x]);
  const { len, inner, rows } = axisRows(op, x, axis);
  const g = gpu();
  const out = Tensor.empty(x.shape);
  if (out.size === 0) return out;
  const sg = fixedSubgroups(SG);
  const pipe = sg ? g.pipeline("softmax:sg", () => SOFTMAX_SG_WGSL) : g.pipeline("softmax", () => SOFTMAX_WGSL);
  const params = new Params().u32(rows).u32(len).u32(inner);
  g.dispatch(pipe, [wholeBinding(out), wholeBinding(x)], params.bytes(), g.grid(sg ? Math.ceil(rows / SG_ROWS) : rows));
  return out;
}
