// Backward of softmax along one axis (src/kernels/softmax.ts) from its
// output y: dx = y · (dy − Σ_axis dy·y). Same layout as the forward: the
// tensor is viewed as [outer, L, inner] and each workgroup owns one
// (outer, inner) row of L elements spaced `inner` apart; lanes sum their
// strided dy·y, the sums meet in workgroup memory, and a second pass writes
// dx (four loads and one store per element, as vec4 on contiguous rows).
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { ROWS_WGSL, axisRows, treeReduceWgsl, wholeBinding } from "./axis_rows.js";
import { checkInputs, fail, sameShape } from "./check.js";
import { Params } from "./params.js";

const WG = 64;

/**
 * w = 4: contiguous rows (inner = 1, len % 4 = 0) read as vec4, a quarter of
 * the loads; `len` and `inner` are then counted in vectors.
 */
function wgsl(w: 1 | 4): string {
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
  const w = inner === 1 && len % 4 === 0 ? 4 : 1;
  const pipe = g.pipeline(`softmax_bwd:${w}`, () => wgsl(w));
  const params = new Params().u32(rows).u32(len / w).u32(inner);
  g.dispatch(pipe, [wholeBinding(dx), wholeBinding(y), wholeBinding(dy)], params.bytes(), g.grid(rows));
  return dx;
}
