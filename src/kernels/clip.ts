// Gradient clipping's kernels (src/train/clip.ts is the host side): the
// global L2 norm of a list of tensors, and scaling them in place by
// min(maxNorm / (norm + 1e-6), 1) computed on the GPU from that norm.
//  1. over batches of tensors (binding-sized chunks of them, several per
//     dispatch: multi_tensor.ts), each workgroup writes the sum of squares
//     of its block into its own slot of one shared partials buffer;
//  2. one workgroup sums all partials and writes the norm;
//  3. over the same kind of batches, a kernel scales the tensors in place
//     by the coefficient it computes from the norm.
// No float atomics and no host round trip.
import { gpu } from "../tensor/device.js";
import { Tensor } from "../tensor/tensor.js";
import { elementwiseMainWgsl, multiBatches, switchWgsl, tableFields, tableParams, tableWgsl } from "./multi_tensor.js";
import { Params } from "./params.js";
import { variantPipeline } from "./profile.js";
import { LANES_WGSL, vec4Chunks } from "./vec4.js";

const WG = 256;
/** vec4 loads per invocation in pass 1: a block is WG·4·PER elements. */
const PER = 16;
const BLOCK = WG * 4 * PER;

/** Pass 1 over `size` gradients at once (multi_tensor.ts): each workgroup's sum of squares into partials[base + workgroup]. */
function partialsWgsl(size: number): string {
  const decl = Array.from({ length: size }, (_, j) => `@group(0) @binding(${2 + j}) var<storage, read> g${j}: array<vec4<f32>>;`).join("\n");
  return /* wgsl */ `
struct P { total: u32, base: u32, pad0: u32, pad1: u32, ${tableFields(size)} }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
${decl}
${LANES_WGSL}
${tableWgsl(size)}
var<workgroup> sh: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = wid.x + wid.y * nwg.x;
  // Grids split over two dimensions can overshoot: spare workgroups add nothing and write nothing.
  let j = item_of(w);
  let n = select(0u, count_of(j), w < p.total);
  let block = w - start_of(j);
  var acc = 0.0;
  for (var k = 0u; k < ${PER}u; k++) {
    let i = block * ${WG * PER}u + k * ${WG}u + t;
    if (i * 4u < n) {
      var v = vec4<f32>(0.0);
      ${switchWgsl(size, (j) => `v = g${j}[i];`)}
      v = select(vec4<f32>(0.0), v, lanes(n, i));
      acc += dot(v, v);
    }
  }
  sh[t] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { sh[t] += sh[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u && w < p.total) { partials[p.base + w] = sh[0]; }
}`;
}

const TOTAL_WGSL = /* wgsl */ `
struct P { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> norm: array<f32>;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
var<workgroup> sh: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32) {
  var acc = 0.0;
  for (var i = t; i < p.n; i += ${WG}u) { acc += partials[i]; }
  sh[t] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { sh[t] += sh[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) { norm[0] = sqrt(sh[0]); }
}`;

/** Pass 3 over `size` gradients at once: each scaled in place by the coefficient computed from the norm. */
function scaleWgsl(size: number): string {
  const decl = Array.from({ length: size }, (_, j) => `@group(0) @binding(${2 + j}) var<storage, read_write> g${j}: array<vec4<f32>>;`).join("\n");
  return /* wgsl */ `
struct P { total: u32, max_norm: f32, pad0: u32, pad1: u32, ${tableFields(size)} }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
${decl}
${LANES_WGSL}
${tableWgsl(size)}
${elementwiseMainWgsl(
    WG,
    size,
    (j) => `let v = g${j}[i]; g${j}[i] = select(v, v * coef, live);`,
    "let coef = min(p.max_norm / (norm[0] + 1e-6), 1.0);\n  let live = lanes(n, i);",
  )}`;
}

/** The L2 norm of all of `tensors` (f32, checked by the caller) together, as a scalar tensor [] on the GPU. */
export function l2Norm(tensors: readonly Tensor[]): Tensor {
  const g = gpu();
  g.checkAlive("gradNorm");
  const chunks = tensors.flatMap((t) => (t.size === 0 ? [] : vec4Chunks([t])));
  const slots = chunks.map((c) => Math.ceil(c.count / BLOCK));
  const total = slots.reduce((a, b) => a + b, 0);
  const norm = Tensor.empty([]);
  if (total === 0) {
    norm.write(new Float32Array([0]));
    return norm;
  }
  const partials = Tensor.empty([total]);
  let base = 0;
  for (const b of multiBatches(chunks, g.maxStorageBindings - 1, (c) => Math.ceil(c.count / BLOCK))) {
    const size = b.items.length;
    const pipe = variantPipeline("train:clip:partials", { size }, (s) => partialsWgsl(s.size));
    const params = tableParams(new Params().u32(b.workgroups).u32(base).u32(0).u32(0), b.items.map((c) => c.count), b.starts);
    g.dispatch(pipe, [{ buffer: partials.buffer, offset: 0, size: Math.max(4, total * 4) }, ...b.items.map((c) => c.bindings[0]!)], params.bytes(), g.grid(b.workgroups));
    base += b.workgroups;
  }
  const pTotal = variantPipeline("train:clip:total", {}, () => TOTAL_WGSL);
  g.dispatch(pTotal, [{ buffer: norm.buffer, offset: 0, size: 4 }, { buffer: partials.buffer, offset: 0, size: total * 4 }], new Params().u32(total).u32(0).u32(0).u32(0).bytes(), [1, 1, 1]);
  partials.dispose();
  return norm;
}

/** Scales `tensors` in place by min(maxNorm / (norm[0] + 1e-6), 1), `norm` a scalar tensor on the GPU. */
export function scaleToNorm(tensors: readonly Tensor[], norm: Tensor, maxNorm: number): void {
  const g = gpu();
  const chunks = tensors.flatMap((t) => (t.size === 0 ? [] : vec4Chunks([t])));
  for (const b of multiBatches(chunks, g.maxStorageBindings - 1, (c) => Math.ceil(c.count / 4 / WG))) {
    const size = b.items.length;
    const pipe = variantPipeline("train:clip:scale", { size }, (s) => scaleWgsl(s.size));
    const params = tableParams(new Params().u32(b.workgroups).f32(maxNorm).u32(0).u32(0), b.items.map((c) => c.count), b.starts);
    g.dispatch(pipe, [{ buffer: norm.buffer, offset: 0, size: 4 }, ...b.items.map((c) => c.bindings[0]!)], params.bytes(), g.grid(b.workgroups));
  }
}
