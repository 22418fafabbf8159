// Fused multi-head attention, flash style: softmax(q·kᵀ·scale)·v computed
// per query with an online softmax (running max and sum) over blocks of
// keys, so the Nq×Nk score matrix never exists in memory.
//
// Layout: q [B, Nq, H*dk], k [B, Nk, H*dk], v [B, Nk, H*dv] with heads
// interleaved in the feature dim (head h owns features h*d .. h*d+d-1), as a
// Linear projection writes them; out [B, Nq, H*dv].
//
// Why this shape of kernel on lavapipe: every buffer load is a per-lane
// gather costing far more than an FMA, so the kernel minimises loads per FMA.
// An invocation keeps `qpl` queries and their output accumulators in
// registers (straight-line code generated per head dim); all lanes walk the
// keys in lockstep. Where the device has subgroups, the lanes of a
// subgroup load each k/v row together and broadcast it (subgroupBroadcast),
// and each broadcast vector feeds qpl queries. One key per online-softmax
// step keeps the code short: LLVM compile time on lavapipe grows steeply with
// straight-line size (and with the number of buffer loads).
//
// f16 q/k/v (precision.ts) are storage only: loads widen to f32, so scores,
// the running max and sum, exp2 and the output accumulators are f32, and
// the output is rounded to f16 once when stored. The backward is f32 only.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { checkRank, fail, sameShape } from "./check.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { enableF16, precisionOf, storageType, toF32, toStorage, type Precision } from "./precision.js";
import { deviceProfile, laneGroups, tunedVariant, variantName, variantPipeline, type AttentionVariant, type DeviceProfile } from "./profile.js";

// WGSL text helpers shared by the forward and backward generators: both
// emit straight-line code per head dim, with registers per owned row, and
// share row loads across `lanes` lanes of a subgroup where the device has
// subgroups of at least that many lanes (lanes 0: each lane loads them).

/** Vector width for a head dim: vec4 when every head row starts 16-byte aligned. */
function width(d: number): 1 | 4 {
  return d % 4 === 0 ? 4 : 1;
}

/** The WGSL type of one vector of width w. */
function vt(w: 1 | 4): string {
  return w === 4 ? "vec4<f32>" : "f32";
}

/** The dot product of two vectors of width w. */
function dotw(w: 1 | 4, a: string, b: string): string {
  return w === 4 ? `dot(${a}, ${b})` : `${a} * ${b}`;
}

/** A balanced sum: shorter dependency chains than a left fold. */
function tree(terms: string[]): string {
  if (terms.length === 1) return terms[0]!;
  const mid = Math.ceil(terms.length / 2);
  return `(${tree(terms.slice(0, mid))} + ${tree(terms.slice(mid))})`;
}

/**
 * Emits `let NAME0 .. NAME{n-1}`: one head row of n vectors from `arr` at
 * `base`, which every lane needs. Without subgroups (SG = 0) each lane loads
 * it all; with them lane l < SG of the subgroup loads vectors l, l+SG, …
 * and broadcasts them (subgroupBroadcast), SG times fewer per-lane loads.
 * Lanes from SG on load too (clamped, unused): any subgroup of at least SG
 * lanes works. `widen` turns a loaded vector into f32 (f16 storage), so
 * the broadcast and all arithmetic are f32.
 */
function sharedLoad(L: (s: string) => void, SG: number, name: string, arr: string, base: string, n: number, widen = (x: string) => x): void {
  if (SG === 0) {
    for (let c = 0; c < n; c++) L(`    let ${name}${c} = ${widen(`${arr}[${base} + ${c}u]`)};`);
    return;
  }
  for (let r = 0; r < Math.ceil(n / SG); r++) L(`    let ${name}l${r} = ${widen(`${arr}[${base} + min(sl + ${r * SG}u, ${n - 1}u)]`)};`);
  for (let c = 0; c < n; c++) L(`    let ${name}${c} = subgroupBroadcast(${name}l${Math.floor(c / SG)}, ${c % SG}u);`);
}

export interface AttentionOptions {
  numHeads: number;
  /** Query i sees keys j ≤ i (needs Nq = Nk). */
  causal?: boolean;
  /** Score scale; default headDim^-0.5. */
  scale?: number;
  /** Force a kernel variant (`attentionVariants()` lists this device's); default chooseAttentionVariant. */
  variant?: AttentionVariant;
}

/** Masked scores: finite so that (masked − max) never makes NaN. */
const NEG = "-1.0e30";

interface Spec {
  /** Storage type of q, k, v and the output. */
  precision: Precision;
  dk: number;
  dv: number;
  causal: boolean;
  wg: number;
  /** Queries per invocation. */
  qpl: number;
  /** Share k/v loads across this many lanes of a subgroup (0: none). */
  lanes: number;
}

/**
 * The subgroup width of attention (forward and backward): the forced one,
 * else as many lanes as every subgroup of the device has (8 on lavapipe);
 * 0 without subgroups. A launch of fewer lanes (wg) shares over wg lanes.
 * The tuned winner (of `dims`' bucket at `precision`) comes before that.
 */
export function chooseAttentionVariant(p: DeviceProfile = deviceProfile(), dims?: AttentionTuneDims, precision: Precision = "f32"): AttentionVariant {
  if (p.force.attention) return p.force.attention;
  const tuned = dims && tunedVariant<AttentionVariant>(p, "attention", attentionTuneKey(dims), precision);
  if (tuned) return tuned;
  const groups = laneGroups(p);
  return { lanes: groups[groups.length - 1] ?? 0 };
}

/** What attention's tuned variant depends on: the sequence lengths and the head dims (which shape its code). */
export interface AttentionTuneDims {
  Nq: number;
  Nk: number;
  dk: number;
  dv: number;
}

/** The dimensions attention's tuned table is keyed by (each bucketed by tunedKey). */
export function attentionTuneKey(d: AttentionTuneDims): number[] {
  return [d.Nq, d.Nk, d.dk, d.dv];
}

/** The variants the tuner times for attention: every width this device runs, the heuristic's first. */
export function attentionCandidates(p: DeviceProfile = deviceProfile()): AttentionVariant[] {
  const first = chooseAttentionVariant({ ...p, force: {}, tuned: {} });
  return [first, ...attentionVariants(p).filter((v) => v.lanes !== first.lanes)];
}

/** Every subgroup width attention can run on this device, 0 (no subgroups) included. */
export function attentionVariants(p: DeviceProfile = deviceProfile()): AttentionVariant[] {
  return [{ lanes: 0 }, ...laneGroups(p).map((lanes) => ({ lanes }))];
}

/** The lanes of `v` a launch of `wg` lanes shares loads over; throws unless the device runs `v`. */
function sharedLanes(op: string, v: AttentionVariant, wg: number, p: DeviceProfile): number {
  if (v.lanes !== 0 && !laneGroups(p).includes(v.lanes)) {
    const sizes = p.subgroups ? `${p.subgroups.min}-${p.subgroups.max}` : "none";
    fail(op, `variant ${variantName(v)} does not run on this device (subgroup sizes ${sizes}; lanes must be a power of two from 4 to the smallest)`);
  }
  return Math.min(v.lanes, wg);
}


function attentionWgsl(s: Spec): string {
  const wk = width(s.dk);
  const wv = width(s.dv);
  const nk = s.dk / wk; // vectors per q/k head row
  const nv = s.dv / wv; // vectors per v/out head row
  const widenK = (x: string) => toF32(s.precision, x, vt(wk));
  const widenV = (x: string) => toF32(s.precision, x, vt(wv));
  const lines: string[] = [];
  const L = (x: string) => lines.push(x);
  const rows = Array.from({ length: s.qpl }, (_, r) => r);

  // Straight-line code generated per head dim: registers stay registers (an
  // indexed private array becomes an if-ladder on lavapipe). One key per
  // step keeps the code small: LLVM compile time on lavapipe grows steeply
  // with straight-line size. Each loaded k/v vector serves qpl queries.
  for (const r of rows) {
    L(`  let qi${r} = min(qstart + lid + ${r * s.wg}u, p.nq - 1u);`);
    L(`  let qb${r} = ((b * p.nq + qi${r}) * p.hh + h) * ${nk}u;`);
    for (let c = 0; c < nk; c++) L(`  let q${r}_${c} = ${widenK(`qs[qb${r} + ${c}u]`)} * p.scale_log2;`);
    for (let c = 0; c < nv; c++) L(`  var o${r}_${c} = ${vt(wv)}(0.0);`);
    L(`  var m${r} = ${NEG};`);
    L(`  var l${r} = 0.0;`);
  }
  L(`  for (var j = 0u; j < kend; j++) {`);
  L(`    let kb = (kbase + j * p.hh) * ${nk}u;`);
  // With subgroups the lanes of a subgroup load each k/v row together (sharedLoad).
  sharedLoad(L, s.lanes, "k", "ks", "kb", nk, widenK);
  for (const r of rows) {
    const terms: string[] = [];
    for (let c = 0; c < nk; c++) terms.push(dotw(wk, `q${r}_${c}`, `k${c}`));
    L(`    let s${r} = ${s.causal ? `select(${NEG}, ${tree(terms)}, j <= qi${r})` : tree(terms)};`);
    L(`    let mn${r} = max(m${r}, s${r});`);
    L(`    let a${r} = exp2(m${r} - mn${r});`);
    L(`    let e${r} = exp2(s${r} - mn${r});`);
    L(`    m${r} = mn${r};`);
    L(`    l${r} = fma(l${r}, a${r}, e${r});`);
  }
  L(`    let vb = (kbase + j * p.hh) * ${nv}u;`);
  sharedLoad(L, s.lanes, "v", "vs", "vb", nv, widenV);
  for (let c = 0; c < nv; c++) {
    for (const r of rows) L(`    o${r}_${c} = fma(${vt(wv)}(e${r}), v${c}, o${r}_${c} * a${r});`);
  }
  L(`  }`);
  for (const r of rows) {
    L(`  if (qstart + lid + ${r * s.wg}u < p.nq) {`);
    L(`    let ob = ((b * p.nq + qi${r}) * p.hh + h) * ${nv}u;`);
    L(`    let inv = 1.0 / l${r};`);
    for (let c = 0; c < nv; c++) L(`    out[ob + ${c}u] = ${toStorage(s.precision, `o${r}_${c} * inv`, vt(wv))};`);
    L(`  }`);
  }

  const sg = s.lanes > 0;
  const [tk, tv] = [storageType(s.precision, vt(wk)), storageType(s.precision, vt(wv))];
  return /* wgsl */ `${enableF16(s.precision)}${sg ? "enable subgroups;" : ""}
struct P { b: u32, nq: u32, nk: u32, hh: u32, scale_log2: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${tv}>;
@group(0) @binding(2) var<storage, read> qs: array<${tk}>;
@group(0) @binding(3) var<storage, read> ks: array<${tk}>;
@group(0) @binding(4) var<storage, read> vs: array<${tv}>;
@compute @workgroup_size(${s.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32${sg ? ", @builtin(subgroup_invocation_id) sl: u32" : ""}) {
  let h = wid.y;
  let b = wid.z;
  // Lanes own queries qstart + lid + r*wg. Lanes past Nq compute on a
  // clamped query and skip the store, so the key loop stays workgroup-uniform.
  let qstart = wid.x * ${s.wg * s.qpl}u;
  let kbase = b * p.nk * p.hh + h;
  ${s.causal ? `let kend = min(p.nk, qstart + ${s.wg * s.qpl}u);` : "let kend = p.nk;"}
${lines.join("\n")}
}`;
}

/**
 * Launch shape for Nq queries. Few pipeline variants (each costs seconds of
 * LLVM time on lavapipe): 8 or 16 lanes for a handful of queries (CLIP's
 * causal text, SegVol's ~10 prompt tokens), else 32 lanes, with 2 queries per lane
 * once there are enough queries to fill the workgroups. Measured on
 * 12×1024×1024×64 (subgroup variant, loaded machine): 1, 2, 3, 4 queries per
 * lane gave 4.7, 17, 7.5, 7.3 GFLOP/s — beyond 2 the registers spill.
 */
function launchShape(nq: number): { wg: number; qpl: number } {
  if (nq <= 16) return { wg: nq <= 8 ? 8 : 16, qpl: 1 };
  return { wg: 32, qpl: nq > 64 ? 2 : 1 };
}

/** The sizes of an attention call, checked (shared with its backward). */
export interface AttentionDims {
  B: number;
  Nq: number;
  Nk: number;
  H: number;
  dk: number;
  dv: number;
  scale: number;
  /** The operands' shapes, for error messages. */
  shapes: string;
}

/**
 * Checks q [B, Nq, H*dk], k [B, Nk, H*dk], v [B, Nk, H*dv] and the options
 * for `op`; `extra` tensors (the backward's out and dOut) join the shapes
 * named in its errors.
 */
export function attentionDims(op: string, q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions, extra: Record<string, Tensor> = {}): AttentionDims {
  checkRank(op, q, 3, "q");
  checkRank(op, k, 3, "k");
  checkRank(op, v, 3, "v");
  const shapes = Object.entries({ q, k, v, ...extra }).map(([name, t]) => `${name} ${shapeStr(t.shape)}`).join(", ");
  const H = opts.numHeads;
  if (!Number.isInteger(H) || H < 1) fail(op, `numHeads must be a positive integer, got ${H} (${shapes})`);
  const [B, Nq, Fq] = q.shape as [number, number, number];
  const [Bk, Nk, Fk] = k.shape as [number, number, number];
  const [Bv, Nv, Fv] = v.shape as [number, number, number];
  if (Bk !== B || Bv !== B) fail(op, `batch sizes differ: ${shapes}`);
  if (Nv !== Nk) fail(op, `k and v have different lengths (Nk ${Nk} vs ${Nv}): ${shapes}`);
  if (Fk !== Fq) fail(op, `q and k feature sizes differ (${Fq} vs ${Fk}): ${shapes}`);
  if (Fq % H !== 0 || Fv % H !== 0) fail(op, `${H} heads do not divide the feature sizes: ${shapes}`);
  if (opts.causal && Nq !== Nk) fail(op, `causal attention needs Nq = Nk, got Nq ${Nq}, Nk ${Nk}: ${shapes}`);
  if (Nk === 0 && Nq > 0) fail(op, `no keys to attend to: ${shapes}`);
  const dk = Fq / H;
  const dv = Fv / H;
  if (dk === 0 || dv === 0) fail(op, `empty head dim: ${shapes}`);
  const scale = opts.scale ?? 1 / Math.sqrt(dk);
  if (!Number.isFinite(scale)) fail(op, `scale must be finite, got ${scale}`);
  return { B, Nq, Nk, H, dk, dv, scale, shapes };
}

/**
 * Multi-head scaled dot-product attention. q [B, Nq, H*dk], k [B, Nk, H*dk],
 * v [B, Nk, H*dv] → [B, Nq, H*dv]. q, k and v are all f32 or all f16
 * (precision.ts); the output has their dtype.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  const op = "attention";
  const precision = precisionOf(op, [q, k, v]);
  const { B, Nq, Nk, H, dk, dv, scale, shapes } = attentionDims(op, q, k, v, opts);
  const Fv = H * dv;
  const g = gpu();
  for (const t of [q, k, v]) {
    if (t.byteLength > g.maxBindingBytes) {
      fail(op, `tensor ${shapeStr(t.shape)} exceeds one storage binding (${g.maxBindingBytes} bytes): ${shapes}`);
    }
  }
  const out = Tensor.empty([B, Nq, Fv], precision);
  if (out.size === 0) return out;
  if (out.byteLength > g.maxBindingBytes) fail(op, `output [${B}, ${Nq}, ${Fv}] exceeds one storage binding`);
  const shape = launchShape(Nq);
  const lanes = sharedLanes(op, opts.variant ?? chooseAttentionVariant(deviceProfile(g), { Nq, Nk, dk, dv }, precision), shape.wg, deviceProfile(g));
  const pipe = variantPipeline("attention", { precision, dk, dv, causal: !!opts.causal, ...shape, lanes } satisfies Spec, attentionWgsl);
  const params = new Params().u32(B).u32(Nq).u32(Nk).u32(H).f32(scale * Math.LOG2E);
  const bind = (t: Tensor): GPUBufferBinding => ({ buffer: t.buffer, offset: 0, size: Math.max(16, t.byteLength) });
  const groups = Math.ceil(Nq / (shape.wg * shape.qpl));
  if (groups > g.maxWorkgroupsPerDim || H > g.maxWorkgroupsPerDim || B > g.maxWorkgroupsPerDim) {
    fail(op, `too many workgroups for ${shapes}`);
  }
  g.dispatch(pipe, [bind(out), bind(q), bind(k), bind(v)], params.bytes(), [groups, H, B]);
  return out;
}

// ---------------------------------------------------------------------------
// Backward of fused multi-head attention, flash style: the Nq×Nk score matrix never exists in memory. Scores are
// recomputed from q and k, and the probabilities from the per-query
// logsumexp, in two kernels that each own their outputs (no float atomics):
//
//  1. query pass (lanes own queries): a first walk over the keys computes
//     the logsumexp (online max and sum, as the forward does); D = rowsum(dO∘O);
//     a second walk accumulates dq = scale · Σ_j p_ij (dO_i·v_j − D_i) k_j.
//     The kernel also writes (lse, D) per query for pass 2.
//  2. key pass (lanes own keys): one walk over the queries accumulates
//     dv_j = Σ_i p_ij dO_i and dk_j = scale · Σ_i p_ij (dO_i·v_j − D_i) q_i.
//
// Scores are kept in log2 units (one operand pre-scaled by scale·log2 e) so
// p = exp2(s − lse₂), as in the forward. Both kernels follow the forward's
// lavapipe design: straight-line code per head dim with registers per owned
// row, all lanes walking the other side's rows in lockstep, and, where the
// device has subgroups, each row loaded once per subgroup and shared by
// subgroupBroadcast. Lanes past the end work on a clamped row and skip the
// store, so loops stay workgroup-uniform.

interface BackwardSpec {
  dk: number;
  dv: number;
  causal: boolean;
  wg: number;
  /** Owned rows (queries in pass 1, keys in pass 2) per invocation. */
  rpl: number;
  /** Share loads across this many lanes of a subgroup (0: none). */
  lanes: number;
}

function header(s: BackwardSpec, outs: string[], ins: string[]): string {
  const all = [...outs.map((o) => `var<storage, read_write> ${o}`), ...ins.map((i) => `var<storage, read> ${i}`)];
  return `${s.lanes > 0 ? "enable subgroups;" : ""}
struct P { b: u32, nq: u32, nk: u32, hh: u32, scale_log2: f32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
${all.map((d, i) => `@group(0) @binding(${i + 1}) ${d};`).join("\n")}
@compute @workgroup_size(${s.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32${s.lanes > 0 ? ", @builtin(subgroup_invocation_id) sl: u32" : ""}) {
  let h = wid.y;
  let b = wid.z;`;
}

/** Pass 1: lanes own queries; writes dq and (lse₂, D) per (b, query, head). */
function queryPassWgsl(s: BackwardSpec): string {
  const wk = width(s.dk);
  const wv = width(s.dv);
  const nk = s.dk / wk;
  const nv = s.dv / wv;
  const rows = Array.from({ length: s.rpl }, (_, r) => r);
  const lines: string[] = [];
  const L = (x: string) => lines.push(x);
  L(`  let qstart = wid.x * ${s.wg * s.rpl}u;`);
  L(`  let kbase = b * p.nk * p.hh + h;`);
  L(s.causal ? `  let kend = min(p.nk, qstart + ${s.wg * s.rpl}u);` : "  let kend = p.nk;");
  for (const r of rows) {
    L(`  let qi${r} = min(qstart + lid + ${r * s.wg}u, p.nq - 1u);`);
    L(`  let row${r} = (b * p.nq + qi${r}) * p.hh + h;`);
    for (let c = 0; c < nk; c++) L(`  let q${r}_${c} = qs[row${r} * ${nk}u + ${c}u] * p.scale_log2;`);
    const dterms: string[] = [];
    for (let c = 0; c < nv; c++) {
      L(`  let g${r}_${c} = gs[row${r} * ${nv}u + ${c}u];`);
      dterms.push(dotw(wv, `g${r}_${c}`, `os[row${r} * ${nv}u + ${c}u]`));
    }
    L(`  let d${r} = ${tree(dterms)};`);
    L(`  var m${r} = ${NEG};`);
    L(`  var l${r} = 0.0;`);
  }
  const score = (r: number) => {
    const terms: string[] = [];
    for (let c = 0; c < nk; c++) terms.push(dotw(wk, `q${r}_${c}`, `k${c}`));
    return s.causal ? `select(${NEG}, ${tree(terms)}, j <= qi${r})` : tree(terms);
  };
  // Walk 1: logsumexp (log2 units) of each query's scores.
  L(`  for (var j = 0u; j < kend; j++) {`);
  L(`    let kb = (kbase + j * p.hh) * ${nk}u;`);
  sharedLoad(L, s.lanes, "k", "ks", "kb", nk);
  for (const r of rows) {
    L(`    let s${r} = ${score(r)};`);
    L(`    let mn${r} = max(m${r}, s${r});`);
    L(`    l${r} = fma(l${r}, exp2(m${r} - mn${r}), exp2(s${r} - mn${r}));`);
    L(`    m${r} = mn${r};`);
  }
  L(`  }`);
  for (const r of rows) {
    L(`  let lse${r} = m${r} + log2(l${r});`);
    for (let c = 0; c < nk; c++) L(`  var dq${r}_${c} = ${vt(wk)}(0.0);`);
  }
  // Walk 2: dq += p·(dO·v − D)·k.
  L(`  for (var j = 0u; j < kend; j++) {`);
  L(`    let kb = (kbase + j * p.hh) * ${nk}u;`);
  L(`    let vb = (kbase + j * p.hh) * ${nv}u;`);
  sharedLoad(L, s.lanes, "k", "ks", "kb", nk);
  sharedLoad(L, s.lanes, "v", "vs", "vb", nv);
  for (const r of rows) {
    const dp: string[] = [];
    for (let c = 0; c < nv; c++) dp.push(dotw(wv, `g${r}_${c}`, `v${c}`));
    L(`    let ds${r} = exp2(${score(r)} - lse${r}) * (${tree(dp)} - d${r});`);
  }
  for (let c = 0; c < nk; c++) {
    for (const r of rows) L(`    dq${r}_${c} = fma(${vt(wk)}(ds${r}), k${c}, dq${r}_${c});`);
  }
  L(`  }`);
  for (const r of rows) {
    L(`  if (qstart + lid + ${r * s.wg}u < p.nq) {`);
    for (let c = 0; c < nk; c++) L(`    dq[row${r} * ${nk}u + ${c}u] = dq${r}_${c} * p.scale;`);
    L(`    stats[row${r}] = vec2<f32>(lse${r}, d${r});`);
    L(`  }`);
  }
  const h = header(s, [`dq: array<${vt(wk)}>`, "stats: array<vec2<f32>>"], [
    `qs: array<${vt(wk)}>`,
    `ks: array<${vt(wk)}>`,
    `vs: array<${vt(wv)}>`,
    `os: array<${vt(wv)}>`,
    `gs: array<${vt(wv)}>`,
  ]);
  return `${h}\n${lines.join("\n")}\n}`;
}

/** Pass 2: lanes own keys; writes dk and dv. */
function keyPassWgsl(s: BackwardSpec): string {
  const wk = width(s.dk);
  const wv = width(s.dv);
  const nk = s.dk / wk;
  const nv = s.dv / wv;
  const rows = Array.from({ length: s.rpl }, (_, r) => r);
  const lines: string[] = [];
  const L = (x: string) => lines.push(x);
  L(`  let kstart = wid.x * ${s.wg * s.rpl}u;`);
  L(`  let qbase = b * p.nq * p.hh + h;`);
  // Causal: key j is seen by queries i ≥ j, so the walk starts at the workgroup's first key.
  L(s.causal ? "  let qbegin = kstart;" : "  let qbegin = 0u;");
  for (const r of rows) {
    L(`  let kj${r} = min(kstart + lid + ${r * s.wg}u, p.nk - 1u);`);
    L(`  let row${r} = (b * p.nk + kj${r}) * p.hh + h;`);
    for (let c = 0; c < nk; c++) L(`  let k${r}_${c} = ks[row${r} * ${nk}u + ${c}u] * p.scale_log2;`);
    for (let c = 0; c < nv; c++) L(`  let v${r}_${c} = vs[row${r} * ${nv}u + ${c}u];`);
    for (let c = 0; c < nk; c++) L(`  var dk${r}_${c} = ${vt(wk)}(0.0);`);
    for (let c = 0; c < nv; c++) L(`  var dv${r}_${c} = ${vt(wv)}(0.0);`);
  }
  L(`  for (var i = qbegin; i < p.nq; i++) {`);
  L(`    let qrow = qbase + i * p.hh;`);
  L(`    let st = stats[qrow];`);
  sharedLoad(L, s.lanes, "q", "qs", `qrow * ${nk}u`, nk);
  sharedLoad(L, s.lanes, "g", "gs", `qrow * ${nv}u`, nv);
  for (const r of rows) {
    const terms: string[] = [];
    for (let c = 0; c < nk; c++) terms.push(dotw(wk, `k${r}_${c}`, `q${c}`));
    const sc = s.causal ? `select(${NEG}, ${tree(terms)}, i >= kj${r})` : tree(terms);
    L(`    let p${r} = exp2(${sc} - st.x);`);
    const dp: string[] = [];
    for (let c = 0; c < nv; c++) dp.push(dotw(wv, `g${c}`, `v${r}_${c}`));
    L(`    let ds${r} = p${r} * (${tree(dp)} - st.y);`);
  }
  for (let c = 0; c < nv; c++) for (const r of rows) L(`    dv${r}_${c} = fma(${vt(wv)}(p${r}), g${c}, dv${r}_${c});`);
  for (let c = 0; c < nk; c++) for (const r of rows) L(`    dk${r}_${c} = fma(${vt(wk)}(ds${r}), q${c}, dk${r}_${c});`);
  L(`  }`);
  for (const r of rows) {
    L(`  if (kstart + lid + ${r * s.wg}u < p.nk) {`);
    for (let c = 0; c < nk; c++) L(`    dk[row${r} * ${nk}u + ${c}u] = dk${r}_${c} * p.scale;`);
    for (let c = 0; c < nv; c++) L(`    dv[row${r} * ${nv}u + ${c}u] = dv${r}_${c};`);
    L(`  }`);
  }
  const h = header(s, [`dk: array<${vt(wk)}>`, `dv: array<${vt(wv)}>`], [
    `qs: array<${vt(wk)}>`,
    `ks: array<${vt(wk)}>`,
    `vs: array<${vt(wv)}>`,
    `gs: array<${vt(wv)}>`,
    "stats: array<vec2<f32>>",
  ]);
  return `${h}\n${lines.join("\n")}\n}`;
}

/**
 * Lanes and owned rows per lane for n owned rows: 8 or 16 lanes for a
 * handful (prompt tokens), else 32 lanes with one row each. More rows per
 * lane would share each loaded vector further, but the backward already
 * keeps three head rows per owned row in registers (q, dO, dq or k, v plus
 * dk, dv), and LLVM on lavapipe spills beyond that.
 */
function backwardLaunchShape(n: number): { wg: number; rpl: number } {
  if (n <= 16) return { wg: n <= 8 ? 8 : 16, rpl: 1 };
  return { wg: 32, rpl: 1 };
}

/**
 * Gradients of `attention(q, k, v, opts)` w.r.t. q, k and v given its
 * output `out` and the output gradient `dOut` (same shape as out). f32
 * only: training runs in f32.
 */
export function attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, dOut: Tensor, opts: AttentionOptions): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const op = "attentionBackward";
  const precision = precisionOf(op, [q, k, v, out, dOut]);
  const { B, Nq, Nk, H, dk, dv, scale, shapes } = attentionDims(op, q, k, v, opts, { out, dOut });
  if (precision !== "f32") fail(op, `f16 tensors have no backward (training runs in f32): cast q, k, v, out and dOut to f32 (${shapes})`);
  if (!sameShape(out.shape, [B, Nq, H * dv]) || !sameShape(dOut.shape, [B, Nq, H * dv])) {
    fail(op, `out and dOut must be [${B}, ${Nq}, ${H * dv}]: ${shapes}`);
  }
  const g = gpu();
  for (const t of [q, k, v, out, dOut]) {
    if (t.byteLength > g.maxBindingBytes) fail(op, `tensor ${shapeStr(t.shape)} exceeds one storage binding (${g.maxBindingBytes} bytes): ${shapes}`);
  }
  if (B > g.maxWorkgroupsPerDim || H > g.maxWorkgroupsPerDim) fail(op, `too many workgroups for ${shapes}`);
  const dq = Tensor.empty(q.shape);
  const dkT = Tensor.empty(k.shape);
  const dvT = Tensor.empty(v.shape);
  if (Nq === 0 || Nk === 0) {
    // No query sees a key: all gradients are zero.
    for (const t of [dq, dkT, dvT]) if (t.size > 0) t.write(new Float32Array(t.size));
    return { dq, dk: dkT, dv: dvT };
  }
  const variant = opts.variant ?? chooseAttentionVariant(deviceProfile(g));
  const causal = !!opts.causal;
  const params = new Params().u32(B).u32(Nq).u32(Nk).u32(H).f32(scale * Math.LOG2E).f32(scale).bytes();
  const bind = (t: Tensor): GPUBufferBinding => ({ buffer: t.buffer, offset: 0, size: Math.max(16, t.byteLength) });
  const stats = Tensor.empty([B, Nq, H, 2]);
  try {
    const lq = backwardLaunchShape(Nq);
    const sq: BackwardSpec = { dk, dv, causal, ...lq, lanes: sharedLanes(op, variant, lq.wg, deviceProfile(g)) };
    const gq = Math.ceil(Nq / (sq.wg * sq.rpl));
    if (gq > g.maxWorkgroupsPerDim) fail(op, `too many query workgroups for ${shapes}`);
    const p1 = variantPipeline("attention_bwd_q", sq, queryPassWgsl);
    g.dispatch(p1, [bind(dq), bind(stats), bind(q), bind(k), bind(v), bind(out), bind(dOut)], params, [gq, H, B]);
    const lk = backwardLaunchShape(Nk);
    const sk: BackwardSpec = { dk, dv, causal, ...lk, lanes: sharedLanes(op, variant, lk.wg, deviceProfile(g)) };
    const gk = Math.ceil(Nk / (sk.wg * sk.rpl));
    if (gk > g.maxWorkgroupsPerDim) fail(op, `too many key workgroups for ${shapes}`);
    const p2 = variantPipeline("attention_bwd_kv", sk, keyPassWgsl);
    g.dispatch(p2, [bind(dkT), bind(dvT), bind(q), bind(k), bind(v), bind(dOut), bind(stats)], params, [gk, H, B]);
  } catch (e) {
    dq.dispose();
    dkT.dispose();
    dvT.dispose();
    throw e;
  } finally {
    stats.dispose();
  }
  return { dq, dk: dkT, dv: dvT };
}

/**
 * Attention as a differentiable op. Saves q, k, v and the output (the
 * backward recomputes scores and the logsumexp from them; nothing of size
 * Nq×Nk is kept); one backward computes all three gradients.
 */
export const attentionOp = defineOp<[Tensor, Tensor, Tensor], AttentionOptions>({
  name: "attention",
  forward: ([q, k, v], opts) => attention(q, k, v, opts),
  save: ([q, k, v], out) => [q, k, v, out],
  backward: ([q, k, v, out], g, { attrs }) => {
    const { dq, dk, dv } = attentionBackward(q!, k!, v!, out!, g, attrs);
    return [dq, dk, dv];
  },
});
