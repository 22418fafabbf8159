// The optimisers' fused update kernels (src/train/optim.ts is the host
// side: state, step counts, checks). Each reads and writes a parameter and
// its state in place, one vec4 at a time, following torch.optim (1.13,
// single-tensor path) operation by operation:
//  AdamW  p ← p·(1 − lr·wd); m ← lerp(m, g, 1 − β1); v ← β2·v + (1 − β2)·g²;
//         p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
//  SGD    d ← g + wd·p; b ← d (first step) or μ·b + (1 − dampening)·d;
//         d ← d + μ·b (Nesterov) or b; p ← p − lr·d
import { gpu } from "../tensor/device.js";
import type { Tensor } from "../tensor/tensor.js";
import { elementwiseMainWgsl, multiBatches, tableFields, tableParams, tableWgsl } from "./multi_tensor.js";
import { Params } from "./params.js";
import { variantPipeline } from "./profile.js";
import { LANES_WGSL, vec4Chunks, type Vec4Chunk } from "./vec4.js";

const WG = 64;

/**
 * AdamW over `size` tensors in one dispatch (multi_tensor.ts): slot j binds
 * param, exp_avg, exp_avg_sq and grad at 1 + 4j .. 4 + 4j. All of a batch
 * share one step count, so one set of hyperparameters.
 */
function adamwWgsl(size: number): string {
  const slot = (j: number) => /* wgsl */ `
@group(0) @binding(${1 + 4 * j}) var<storage, read_write> param${j}: array<vec4<f32>>;
@group(0) @binding(${2 + 4 * j}) var<storage, read_write> m1_${j}: array<vec4<f32>>;
@group(0) @binding(${3 + 4 * j}) var<storage, read_write> m2_${j}: array<vec4<f32>>;
@group(0) @binding(${4 + 4 * j}) var<storage, read> grad${j}: array<vec4<f32>>;
fn update${j}(i: u32, n: u32) {
  let live = lanes(n, i);
  let g = grad${j}[i];
  let x0 = param${j}[i];
  let m0 = m1_${j}[i];
  let v0 = m2_${j}[i];
  let r = adamw(x0, m0, v0, g);
  param${j}[i] = select(x0, r[0], live);
  m1_${j}[i] = select(m0, r[1], live);
  m2_${j}[i] = select(v0, r[2], live);
}`;
  return /* wgsl */ `
struct P { total: u32, decay: f32, w: f32, beta2: f32, omb2: f32, step_size: f32, bc2_sqrt: f32, eps: f32, ${tableFields(size)} }
@group(0) @binding(0) var<uniform> p: P;
${LANES_WGSL}
${tableWgsl(size)}
// One AdamW update: the new (param, exp_avg, exp_avg_sq).
fn adamw(x0: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, g: vec4<f32>) -> array<vec4<f32>, 3> {
  let x = x0 * p.decay;
  // torch.lerp's two formulas (weight below / above one half).
  var m: vec4<f32>;
  if (p.w < 0.5) { m = m0 + p.w * (g - m0); } else { m = g - (g - m0) * (1.0 - p.w); }
  let v = v0 * p.beta2 + p.omb2 * g * g;
  let denom = sqrt(v) / p.bc2_sqrt + p.eps;
  return array<vec4<f32>, 3>(x - p.step_size * m / denom, m, v);
}
${Array.from({ length: size }, (_, j) => slot(j)).join("\n")}
${elementwiseMainWgsl(WG, size, (j) => `update${j}(i, n);`)}`;
}

/** AdamW's hyperparameters for one step; bc1, bc2: the bias corrections 1 − β^t (in double precision). */
export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  bc1: number;
  bc2: number;
}

/** One AdamW step over chunks binding [param, exp_avg, exp_avg_sq, grad] each (vec4Chunks), all at the same step count. */
export function adamwUpdate(chunks: readonly Vec4Chunk[], h: AdamWHyper): void {
  const g = gpu();
  const { bc1, bc2 } = h;
  for (const b of multiBatches(chunks, g.maxStorageBindings / 4, (c) => Math.ceil(c.count / 4 / WG))) {
    const size = b.items.length;
    const pipe = variantPipeline("train:adamw", { size }, (s) => adamwWgsl(s.size));
    const params = new Params()
      .u32(b.workgroups)
      .f32(1 - h.lr * h.weightDecay)
      .f32(1 - h.beta1)
      .f32(h.beta2)
      .f32(1 - h.beta2)
      .f32(h.lr / bc1)
      .f32(Math.sqrt(bc2))
      .f32(h.eps);
    tableParams(params, b.items.map((c) => c.count), b.starts);
    g.dispatch(pipe, b.items.flatMap((c) => c.bindings), params.bytes(), g.grid(b.workgroups));
  }
}

function sgdWgsl(momentum: boolean): string {
  const bindings = momentum
    ? `@group(0) @binding(2) var<storage, read_write> buf: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad: array<vec4<f32>>;`
    : `@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;`;
  const body = momentum
    ? `let b0 = buf[i];
  var b = d;
  if (p.first == 0u) { b = b0 * p.mu + p.omd * d; }
  buf[i] = select(b0, b, live);
  if (p.nesterov != 0u) { d = d + p.mu * b; } else { d = b; }`
    : "";
  return /* wgsl */ `
struct P { n: u32, lr: f32, wd: f32, mu: f32, omd: f32, first: u32, nesterov: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
${bindings}
${LANES_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i * 4u >= p.n) { return; }
  let live = lanes(p.n, i);
  let x0 = param[i];
  var d = grad[i] + p.wd * x0;
  ${body}
  param[i] = select(x0, x0 - p.lr * d, live);
}`;
}

export interface SgdHyper {
  lr: number;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** The momentum buffer's first step (it starts as a copy of d). */
  first: boolean;
}

/** One SGD step: tensors are [param, grad], or [param, momentum_buffer, grad] with momentum ≠ 0. */
export function sgdUpdate(tensors: readonly Tensor[], h: SgdHyper): void {
  const g = gpu();
  const withMomentum = h.momentum !== 0;
  const pipe = variantPipeline("train:sgd", { withMomentum }, (s) => sgdWgsl(s.withMomentum));
  for (const c of vec4Chunks(tensors)) {
    const params = new Params()
      .u32(c.count)
      .f32(h.lr)
      .f32(h.weightDecay)
      .f32(h.momentum)
      .f32(1 - h.dampening)
      .u32(h.first ? 1 : 0)
      .u32(h.nesterov ? 1 : 0)
      .u32(0);
    g.dispatch(pipe, c.bindings, params.bytes(), g.grid(Math.ceil(c.count / 4 / WG)));
  }
}
