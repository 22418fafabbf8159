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
// keys in lockstep. Where the device has subgroups of 8 lanes, the lanes of a
// subgroup load each k/v row together and broadcast it (subgroupBroadcast),
// and each broadcast vector feeds qpl queries. One key per online-softmax
// step keeps the code short: LLVM compile time on lavapipe grows steeply with
// straight-line size (and with the number of buffer loads).
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { Params } from "./params.js";
import { dotw, SG, sharedLoad, tree, vt, width } from "./attention_wgsl.js";
import { fixedSubgroups } from "./subgroups.js";

export interface AttentionOptions {
  numHeads: number;
  /** Query i sees keys j ≤ i (needs Nq = Nk). */
  causal?: boolean;
  /** Score scale; default headDim^-0.5. */
  scale?: number;
}

/** Masked scores: finite so that (masked − max) never makes NaN. */
const NEG = "-1.0e30";

interface Spec {
  dk: number;
  dv: number;
  causal: boolean;
  wg: number;
  /** Queries per invocation. */
  qpl: number;
  /** Share k/v loads across a subgroup of SG lanes. */
  sg: boolean;
}


function attentionWgsl(s: Spec): string {
  const wk = width(s.dk);
  const wv = width(s.dv);
  const nk = s.dk / wk; // vectors per q/k head row
  const nv = s.dv / wv; // vectors per v/out head row
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
    for (let c = 0; c < nk; c++) L(`  let q${r}_${c} = qs[qb${r} + ${c}u] * p.scale_log2;`);
    for (let c = 0; c < nv; c++) L(`  var o${r}_${c} = ${vt(wv)}(0.0);`);
    L(`  var m${r} = ${NEG};`);
    L(`  var l${r} = 0.0;`);
  }
  L(`  for (var j = 0u; j < kend; j++) {`);
  L(`    let kb = (kbase + j * p.hh) * ${nk}u;`);
  // With subgroups the lanes of a subgroup load each k/v row together (sharedLoad).
  sharedLoad(L, s.sg, "k", "ks", "kb", nk);
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
  sharedLoad(L, s.sg, "v", "vs", "vb", nv);
  for (let c = 0; c < nv; c++) {
    for (const r of rows) L(`    o${r}_${c} = fma(${vt(wv)}(e${r}), v${c}, o${r}_${c} * a${r});`);
  }
  L(`  }`);
  for (const r of rows) {
    L(`  if (qstart + lid + ${r * s.wg}u < p.nq) {`);
    L(`    let ob = ((b * p.nq + qi${r}) * p.hh + h) * ${nv}u;`);
    L(`    let inv = 1.0 / l${r};`);
    for (let c = 0; c < nv; c++) L(`    out[ob + ${c}u] = o${r}_${c} * inv;`);
    L(`  }`);
  }

  return /* wgsl */ `${s.sg ? "enable subgroups;" : ""}
struct P { b: u32, nq: u32, nk: u32, hh: u32, scale_log2: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${vt(wv)}>;
@group(0) @binding(2) var<storage, read> qs: array<${vt(wk)}>;
@group(0) @binding(3) var<storage, read> ks: array<${vt(wk)}>;
@group(0) @binding(4) var<storage, read> vs: array<${vt(wv)}>;
@compute @workgroup_size(${s.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32${s.sg ? ", @builtin(subgroup_invocation_id) sl: u32" : ""}) {
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
 * v [B, Nk, H*dv] → [B, Nq, H*dv].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  const op = "attention";
  checkInputs(op, [q, k, v]);
  const { B, Nq, Nk, H, dk, dv, scale, shapes } = attentionDims(op, q, k, v, opts);
  const Fv = H * dv;
  const g = gpu();
  for (const t of [q, k, v]) {
    if (t.byteLength > g.maxBindingBytes) {
      fail(op, `tensor ${shapeStr(t.shape)} exceeds one storage binding (${g.maxBindingBytes} bytes): ${shapes}`);
    }
  }
  const out = Tensor.empty([B, Nq, Fv]);
  if (out.size === 0) return out;
  if (out.byteLength > g.maxBindingBytes) fail(op, `output [${B}, ${Nq}, ${Fv}] exceeds one storage binding`);
  const spec: Spec = { dk, dv, causal: !!opts.causal, ...launchShape(Nq), sg: fixedSubgroups(SG) };
  const pipe = g.pipeline(`attention:${dk}:${dv}:${spec.causal}:${spec.wg}:${spec.qpl}:${spec.sg}`, () => attentionWgsl(spec));
  const params = new Params().u32(B).u32(Nq).u32(Nk).u32(H).f32(scale * Math.LOG2E);
  const bind = (t: Tensor): GPUBufferBinding => ({ buffer: t.buffer, offset: 0, size: Math.max(16, t.byteLength) });
  const groups = Math.ceil(Nq / (spec.wg * spec.qpl));
  if (groups > g.maxWorkgroupsPerDim || H > g.maxWorkgroupsPerDim || B > g.maxWorkgroupsPerDim) {
    fail(op, `too many workgroups for ${shapes}`);
  }
  g.dispatch(pipe, [bind(out), bind(q), bind(k), bind(v)], params.bytes(), [groups, H, B]);
  return out;
}
