// Backward of fused multi-head attention (src/kernels/attention.ts), flash
// style: the Nq×Nk score matrix never exists in memory. Scores are
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
// device has subgroups of 8, each row loaded once per subgroup and shared by
// subgroupBroadcast. Lanes past the end work on a clamped row and skip the
// store, so loops stay workgroup-uniform.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { attentionDims, type AttentionOptions } from "./attention.js";
import { checkInputs, fail, sameShape } from "./check.js";
import { Params } from "./params.js";
import { dotw, SG, sharedLoad, tree, vt, width } from "./attention_wgsl.js";
import { fixedSubgroups } from "./subgroups.js";

/** Masked scores: finite, so (masked − lse) never makes NaN; exp2 of it is 0. */
const NEG = "-1.0e30";

interface Spec {
  dk: number;
  dv: number;
  causal: boolean;
  wg: number;
  /** Owned rows (queries in pass 1, keys in pass 2) per invocation. */
  rpl: number;
  sg: boolean;
}

function header(s: Spec, outs: string[], ins: string[]): string {
  const all = [...outs.map((o) => `var<storage, read_write> ${o}`), ...ins.map((i) => `var<storage, read> ${i}`)];
  return `${s.sg ? "enable subgroups;" : ""}
struct P { b: u32, nq: u32, nk: u32, hh: u32, scale_log2: f32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
${all.map((d, i) => `@group(0) @binding(${i + 1}) ${d};`).join("\n")}
@compute @workgroup_size(${s.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32${s.sg ? ", @builtin(subgroup_invocation_id) sl: u32" : ""}) {
  let h = wid.y;
  let b = wid.z;`;
}

/** Pass 1: lanes own queries; writes dq and (lse₂, D) per (b, query, head). */
function queryPassWgsl(s: Spec): string {
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
  sharedLoad(L, s.sg, "k", "ks", "kb", nk);
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
  sharedLoad(L, s.sg, "k", "ks", "kb", nk);
  sharedLoad(L, s.sg, "v", "vs", "vb", nv);
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
function keyPassWgsl(s: Spec): string {
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
  sharedLoad(L, s.sg, "q", "qs", `qrow * ${nk}u`, nk);
  sharedLoad(L, s.sg, "g", "gs", `qrow * ${nv}u`, nv);
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
function launchShape(n: number): { wg: number; rpl: number } {
  if (n <= 16) return { wg: n <= 8 ? 8 : 16, rpl: 1 };
  return { wg: 32, rpl: 1 };
}

/**
 * Gradients of `attention(q, k, v, opts)` w.r.t. q, k and v given its
 * output `out` and the output gradient `dOut` (same shape as out).
 */
export function attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, dOut: Tensor, opts: AttentionOptions): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const op = "attentionBackward";
  checkInputs(op, [q, k, v, out, dOut]);
  const { B, Nq, Nk, H, dk, dv, scale, shapes } = attentionDims(op, q, k, v, opts, { out, dOut });
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
  const sg = fixedSubgroups(SG);
  const causal = !!opts.causal;
  const params = new Params().u32(B).u32(Nq).u32(Nk).u32(H).f32(scale * Math.LOG2E).f32(scale).bytes();
  const bind = (t: Tensor): GPUBufferBinding => ({ buffer: t.buffer, offset: 0, size: Math.max(16, t.byteLength) });
  const stats = Tensor.empty([B, Nq, H, 2]);
  try {
    const sq: Spec = { dk, dv, causal, sg, ...launchShape(Nq) };
    const gq = Math.ceil(Nq / (sq.wg * sq.rpl));
    if (gq > g.maxWorkgroupsPerDim) fail(op, `too many query workgroups for ${shapes}`);
    const p1 = g.pipeline(`attention_bwd_q:${dk}:${dv}:${causal}:${sq.wg}:${sq.rpl}:${sg}`, () => queryPassWgsl(sq));
    g.dispatch(p1, [bind(dq), bind(stats), bind(q), bind(k), bind(v), bind(out), bind(dOut)], params, [gq, H, B]);
    const sk: Spec = { dk, dv, causal, sg, ...launchShape(Nk) };
    const gk = Math.ceil(Nk / (sk.wg * sk.rpl));
    if (gk > g.maxWorkgroupsPerDim) fail(op, `too many key workgroups for ${shapes}`);
    const p2 = g.pipeline(`attention_bwd_kv:${dk}:${dv}:${causal}:${sk.wg}:${sk.rpl}:${sg}`, () => keyPassWgsl(sk));
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
