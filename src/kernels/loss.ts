// The SegVol training loss of one prompt set (spec §7) as one fused GPU
// operation returning the loss and its gradient:
//   L = mean_b [1 − 2·Σpt / (Σp + Σt + 1)] + mean_all BCEWithLogits(x, t)
// with p = sigmoid(x), t = the label with −1 counted as 0 (upstream's
// BinaryDiceLoss and BCELoss: dice per batch item, smooth 1, mean over the
// batch; BCE averaged over every voxel), and
//   ∂L/∂x = (1/B)·(−2)(t·U − I)/U² · p(1 − p) + (p − t)/(B·M)
// per item b, I = Σpt, U = Σp + Σt + 1, M = voxels per item.
//
// Three dispatches, no float atomics:
//  1. partials: each workgroup sums (Σpt, Σp, Σt, Σbce) over a block of one
//     batch item into its own slot;
//  2. summary: one workgroup reduces each item's partials into per-item sums
//     and combines the items into the loss;
//  3. gradient: elementwise, from the per-item sums.
// The gradient is returned rather than accumulated, so the op can sit in an
// autograd tape as a custom node (backward: grad × upstream scalar).
// Inputs of any size are read through segments; the gradient is written per chunk.
import { inputSegments, layoutOf, outputChunks, segmentsWgsl, type SegmentLayout } from "./binding.js";
import { variantPipeline } from "./profile.js";
import { checkInputs, fail } from "./check.js";
import { Params } from "./params.js";
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";

const WG = 256;
/** Elements per invocation in pass 1 (a block is WG·PER elements of one item). */
const PER = 16;
const BLOCK = WG * PER;

export interface SegLoss {
  /** Dice + BCE, shape []. */
  loss: Tensor;
  /** [dice, bce], shape [2]. */
  terms: Tensor;
  /** ∂loss/∂logits, shaped like the logits. */
  grad: Tensor;
}

// Stable forms: sigmoid without overflow, BCE = max(x,0) − x·t + log1p(e^−|x|).
const MATH_WGSL = /* wgsl */ `
fn sigm(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
// log(1 + z) for z in [0, 1], accurate for tiny z (log(u) corrected by the rounding of u = 1 + z).
fn log1p_small(z: f32) -> f32 {
  let u = 1.0 + z;
  if (u == 1.0) { return z; }
  return log(u) * (z / (u - 1.0));
}
fn label_target(y: f32) -> f32 { return select(y, 0.0, y == -1.0); }
`;

function partialsWgsl(sx: SegmentLayout, sy: SegmentLayout): string {
  return /* wgsl */ `
struct P { m: u32, nblk: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> partials: array<vec4<f32>>;
${segmentsWgsl("x", 2, sx)}
${segmentsWgsl("y", 2 + sx.count, sy)}
${MATH_WGSL}
var<workgroup> sh: array<vec4<f32>, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  // x: block within the item, y: batch item.
  let blk = wid.x;
  let b = wid.y;
  let start = blk * ${BLOCK}u;
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < ${PER}u; k++) {
    let j = start + k * ${WG}u + t;
    if (j < p.m) {
      let i = b * p.m + j;
      let xv = x_at(i);
      let tv = label_target(y_at(i));
      let pv = sigm(xv);
      let bce = max(xv, 0.0) - xv * tv + log1p_small(exp(-abs(xv)));
      acc += vec4<f32>(pv * tv, pv, tv, bce);
    }
  }
  sh[t] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { sh[t] += sh[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) { partials[b * p.nblk + blk] = sh[0]; }
}`;
}

const SUMMARY_WGSL = /* wgsl */ `
struct P { batch: u32, nblk: u32, inv_n: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> terms: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> partials: array<vec4<f32>>;
var<workgroup> sh: array<vec4<f32>, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32) {
  var dice = 0.0;
  var bce = 0.0;
  for (var b = 0u; b < p.batch; b++) {
    var acc = vec4<f32>(0.0);
    for (var k = t; k < p.nblk; k += ${WG}u) { acc += partials[b * p.nblk + k]; }
    sh[t] = acc;
    workgroupBarrier();
    for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
      if (t < s) { sh[t] += sh[t + s]; }
      workgroupBarrier();
    }
    let r = sh[0];
    dice += 1.0 - 2.0 * r.x / (r.y + r.z + 1.0);
    bce += r.w;
    if (t == 0u) { stats[b] = r; }
    workgroupBarrier();
  }
  if (t == 0u) {
    let d = dice / f32(p.batch);
    let c = bce * p.inv_n;
    terms[0] = d;
    terms[1] = c;
    loss[0] = d + c;
  }
}`;

function gradWgsl(sx: SegmentLayout, sy: SegmentLayout): string {
  return /* wgsl */ `
struct P { n: u32, base: u32, m: u32, pad: u32, inv_b: f32, inv_n: f32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<vec4<f32>>;
${segmentsWgsl("x", 3, sx)}
${segmentsWgsl("y", 3 + sx.count, sy)}
${MATH_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let g = p.base + i;
  let r = stats[g / p.m];
  let u = r.y + r.z + 1.0;
  let xv = x_at(g);
  let tv = label_target(y_at(g));
  let pv = sigm(xv);
  let ddice = -2.0 * (tv * u - r.x) / (u * u) * p.inv_b;
  out[i] = ddice * pv * (1.0 - pv) + (pv - tv) * p.inv_n;
}`;
}

export interface SegLossOptions {
  /**
   * Weight of the BCE term (default 1, the spec's loss). Training from
   * scratch can lower it: BCE alone first drives every logit to background,
   * where Dice's gradient (∝ p(1 − p)) is too weak to bring the organ back.
   */
  bceWeight?: number;
}

/**
 * Dice (smooth 1) + bceWeight × BCE-with-logits of `logits` against `labels`
 * (same shape, batch first, e.g. [B, 1, D, H, W]; label −1 counts as 0).
 * Returns the loss, its two terms (the BCE one weighted) and ∂loss/∂logits;
 * the caller owns all three.
 */
export function diceBceLoss(logits: Tensor, labels: Tensor, opts: SegLossOptions = {}): SegLoss {
  const op = "diceBceLoss";
  checkInputs(op, [logits, labels]);
  if (logits.rank < 2) fail(op, `logits must be [B, ...] with at least one axis after the batch, got ${shapeStr(logits.shape)}`);
  if (labels.rank !== logits.rank || labels.shape.some((d, a) => d !== logits.shape[a])) {
    fail(op, `labels ${shapeStr(labels.shape)} must have the logits' shape ${shapeStr(logits.shape)}`);
  }
  const B = logits.shape[0]!;
  const M = logits.size / Math.max(1, B);
  if (B === 0 || M === 0) fail(op, `logits ${shapeStr(logits.shape)} are empty`);
  const g = gpu();
  g.checkAlive(op);
  const sx = inputSegments(op, logits);
  const sy = inputSegments(op, labels);
  const need = 3 + sx.bindings.length + sy.bindings.length;
  if (need > g.maxStorageBindings) {
    fail(op, `logits ${shapeStr(logits.shape)} are too large: logits and labels need ${need} storage bindings, this adapter allows ${g.maxStorageBindings}`);
  }
  const nblk = Math.ceil(M / BLOCK);
  if (nblk > g.maxWorkgroupsPerDim || B > g.maxWorkgroupsPerDim) fail(op, `logits ${shapeStr(logits.shape)}: too many blocks per batch item`);
  const bceWeight = opts.bceWeight ?? 1;
  if (!(Number.isFinite(bceWeight) && bceWeight >= 0)) fail(op, `bceWeight must be a finite number ≥ 0, got ${bceWeight}`);
  // The BCE mean's 1/(B·M), times its weight: used by the summary and the gradient alike.
  const inv = bceWeight / (B * M);

  const partials = Tensor.empty([B * nblk, 4]);
  const layouts = { x: layoutOf(sx), y: layoutOf(sy) };
  const pPart = variantPipeline("train:loss:partials", layouts, (s) => partialsWgsl(s.x, s.y));
  g.dispatch(pPart, [{ buffer: partials.buffer }, ...sx.bindings, ...sy.bindings], new Params().u32(M).u32(nblk).u32(0).u32(0).bytes(), [nblk, B, 1]);

  const loss = Tensor.empty([]);
  const terms = Tensor.empty([2]);
  const stats = Tensor.empty([B, 4]);
  const pSum = variantPipeline("train:loss:summary", {}, () => SUMMARY_WGSL);
  g.dispatch(
    pSum,
    [{ buffer: loss.buffer }, { buffer: terms.buffer }, { buffer: stats.buffer }, { buffer: partials.buffer }],
    new Params().u32(B).u32(nblk).f32(inv).u32(0).bytes(),
    [1, 1, 1],
  );

  const grad = Tensor.empty(logits.shape);
  const pGrad = variantPipeline("train:loss:grad", layouts, (s) => gradWgsl(s.x, s.y));
  for (const c of outputChunks(grad)) {
    const params = new Params().u32(c.count).u32(c.start).u32(M).u32(0).f32(1 / B).f32(inv).u32(0).u32(0);
    g.dispatch(pGrad, [c.binding, { buffer: stats.buffer }, ...sx.bindings, ...sy.bindings], params.bytes(), g.grid(Math.ceil(c.count / WG)));
  }
  partials.dispose();
  stats.dispose();
  return { loss, terms, grad };
}
