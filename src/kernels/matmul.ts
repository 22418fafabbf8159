// Batched matrix multiply with a fused bias + activation epilogue:
//   out[...batch, M, N] = act(op(a) · op(b) + bias)
// where op() optionally transposes the last two axes and the batch axes
// broadcast NumPy-style. A Linear layer is matmul(x, W, { transB: true, bias }).
//
// Why the kernel looks the way it does (measured on Mesa lavapipe, where the
// performance target lives): a storage-buffer load costs ~1.6 CPU cycles per
// lane and component (lavapipe loops over the 8 SIMD lanes with a bounds
// check each), about the same from uniform buffers and textures, and ~1 from
// workgroup memory whose barriers cost thousands of cycles; FMAs, register
// spills and subgroupBroadcast cost an order of magnitude less per value.
// So the kernel minimises loads per FMA:
//  - every invocation owns C output columns (strided by the workgroup size)
//    and loads those columns' operand itself;
//  - all invocations of a workgroup share the same R output rows: lane i of
//    each subgroup loads rows i, i+8, … and `subgroupBroadcast` hands every
//    row value to all lanes, so one load feeds 8 lanes.
//  Per k step a lane does R/8 + C loads for R·C FMAs (R=32, C=4: 8 for 128,
//  against 2 per FMA for a naive kernel). Without `subgroups` (or with
//  subgroups narrower than 8) each lane loads its R row values itself:
//  slower, but portable.
//  - The tile is "rows shared, columns owned"; when the output has few
//    columns and many rows the kernel runs on the transposed problem
//    (outᵀ = op(b)ᵀ · op(a)ᵀ) so that the owned axis is the long one.
//  - Bias and activation are runtime switches (a uniform branch in the
//    epilogue), so one compiled pipeline serves every epilogue.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { ACTIVATIONS, ACTIVATION_WGSL, activationSwitchWgsl, checkActivation, type Activation } from "./activation.js";
import { checkInputs, fail } from "./check.js";
import { unaryBackward } from "./elementwise.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { reduce, sumTo } from "./reduce.js";

export interface MatmulOptions {
  /** a is stored [..., K, M] (use its transpose). */
  transA?: boolean;
  /** b is stored [..., N, K] (use its transpose), as PyTorch Linear weights. */
  transB?: boolean;
  /** [N], added before the activation. */
  bias?: Tensor;
  act?: Activation;
}

/** Kernel shape knobs: exposed for tuning and for tests of the portable path, not part of the op's contract. */
export interface MatmulTuning {
  /** Output rows shared by a workgroup (a multiple of 8); "auto": 32 for large outputs, else 16. */
  rows: number | "auto";
  /** Output columns owned by each invocation; "auto": 1-4, with wg, by the tile cost (chooseTile). */
  cols: number | "auto";
  /** Invocations per workgroup (a multiple of 8); "auto": 8-64 by the tile cost. */
  wg: number | "auto";
  /** "auto": broadcast rows through subgroups when the adapter allows it; false: never. */
  subgroups: "auto" | false;
}

// Measured on lavapipe (2048x768x768, CPU time): R32 C4 ≈ 1.25x R16 C4 and
// 1.4x R16 C2; R32 C6 and larger spill too much. R32 compiles in ~10 s, so
// small outputs (where R32 also pads more) use R16 or R8. Columns and
// workgroup size follow the output's shape (chooseTile): a fixed 64×4 span
// computed 256 columns for a 12-column output.
const DEFAULT_TUNING: MatmulTuning = { rows: "auto", cols: "auto", wg: "auto", subgroups: "auto" };
/** Outputs with at least this many elements (per batch) use 32-row tiles under rows: "auto". */
const BIG_OUTPUT = 65536;
let tuning: MatmulTuning = { ...DEFAULT_TUNING };

/** Overrides kernel knobs (merged into the defaults); returns the previous setting. */
export function setMatmulTuning(t: Partial<MatmulTuning>): MatmulTuning {
  const prev = tuning;
  const next = { ...DEFAULT_TUNING, ...t };
  if (next.rows !== "auto" && (!Number.isInteger(next.rows) || next.rows < 8 || next.rows % 8 !== 0)) {
    throw new Error(`setMatmulTuning: rows ${next.rows} must be "auto" or a positive multiple of 8`);
  }
  if (next.cols !== "auto" && (!Number.isInteger(next.cols) || next.cols < 1)) throw new Error(`setMatmulTuning: cols ${next.cols} must be "auto" or a positive integer`);
  // A multiple of 8, so every subgroup has the lanes 0..7 that load the shared rows.
  if (next.wg !== "auto" && (!Number.isInteger(next.wg) || next.wg < 8 || next.wg > 256 || next.wg % 8 !== 0)) {
    throw new Error(`setMatmulTuning: wg ${next.wg} must be "auto" or a multiple of 8 in 8..256`);
  }
  tuning = next;
  return prev;
}

/** Batch axes the uniform block can describe. */
const MAX_BATCH_RANK = 8;

/** Width of the row-sharing group: lanes 0..7 of a subgroup load the shared rows. */
const SHARE = 8;

/** Whether the adapter's subgroups are wide enough for the broadcast kernel. */
function subgroupsUsable(): boolean {
  return gpu().subgroupMinSize >= SHARE;
}

/**
 * The compile-time shape of one pipeline. The problem is always phrased as
 * "rows × cols": rows are shared by a workgroup, cols owned by invocations.
 * With `swap` the rows are the output's N axis and the cols its M axis.
 * `k4`: K is a multiple of 4, so operands contiguous along K are read as
 * vec4 (fewer index computations and bounds checks) and there is no K tail.
 */
interface Variant {
  transA: boolean;
  transB: boolean;
  swap: boolean;
  sub: boolean;
  k4: boolean;
  R: number;
  C: number;
  WG: number;
}

function variantKey(v: Variant): string {
  return `matmul:${+v.transA}${+v.transB}${+v.swap}${+v.sub}${+v.k4}:${v.R}x${v.C}x${v.WG}`;
}

/** How the kernel reads one operand as a (row-or-col index i, k) matrix. */
interface Operand {
  /** Binding name. */
  buf: string;
  /** WGSL element strides along i and along k. */
  perI: string;
  perK: string;
  /** Batch offset variable and extent of i. */
  off: string;
  dim: string;
  /** Read as vec4 along k (contiguous along k and K % 4 == 0). */
  vec: boolean;
}

/** Logical A is (m, k), logical Bᵀ is (n, k); the stored layout decides the strides. */
function operand(kind: "a" | "b", trans: boolean, k4: boolean): Operand {
  const [perI, perK] =
    kind === "a" ? (trans ? ["1u", "p.M"] : ["p.K", "1u"]) : trans ? ["p.K", "1u"] : ["1u", "p.N"]; // b stored [K, N] unless transB
  return { buf: kind, perI, perK, off: kind === "a" ? "offA" : "offB", dim: kind === "a" ? "p.M" : "p.N", vec: k4 && perK === "1u" };
}

/** The accumulator loop: declarations, one unrolled step of 4 k, and one k (the K % 4 tail). */
function accumulateWgsl(v: Variant, S: Operand, O: Operand): { decl: string[]; body4: string[]; body1: string[] } {
  const { R, C, WG } = v;
  const groups = R / SHARE;
  const decl: string[] = [];
  const body4: string[] = [];
  const body1: string[] = [];

  // Base index of row/col i, clamped into range so every load is valid (the
  // results of clamped rows/cols are never stored); vec4 operands in vec4 units.
  const base = (X: Operand, name: string, i: string) =>
    X.vec ? `let ${name} = (${X.off} + min(${i}, ${X.dim} - 1u) * ${X.perI}) / 4u;` : `let ${name} = ${X.off} + min(${i}, ${X.dim} - 1u) * ${X.perI};`;
  // The 4 values of k..k+3 at a base (k4 counts vec4 steps; kx = k * perK).
  const load4 = (X: Operand, b: string, kx: string, step: string) =>
    X.vec ? `${X.buf}[${b} + k4]` : `vec4<f32>(${X.buf}[${b} + ${kx}], ${X.buf}[${b} + ${kx} + ${step}], ${X.buf}[${b} + ${kx} + 2u * ${step}], ${X.buf}[${b} + ${kx} + 3u * ${step}])`;

  if (v.sub) {
    for (let j = 0; j < groups; j++) decl.push(base(S, `sb${j}`, `r0 + lane + ${SHARE * j}u`));
  } else {
    for (let r = 0; r < R; r++) decl.push(base(S, `sb${r}`, `r0 + ${r}u`));
  }
  for (let c = 0; c < C; c++) decl.push(base(O, `ob${c}`, `c0 + ${c * WG}u`));
  decl.push(`let sk = ${S.perK};`, `let ok = ${O.perK};`);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) decl.push(`var acc${r}_${c} = 0.0;`);

  // Owned values: o{c} = vec4 over the 4 k of the step.
  for (let c = 0; c < C; c++) {
    body4.push(`let o${c} = ${load4(O, `ob${c}`, "ko", "ok")};`);
    body1.push(`let o${c} = ${O.buf}[ob${c} + ko];`);
  }
  // Shared values, then the FMAs row by row (each row's vec4 is live only briefly).
  if (v.sub) {
    for (let j = 0; j < groups; j++) {
      body4.push(`let sv${j} = ${load4(S, `sb${j}`, "ks", "sk")};`);
      body1.push(`let sv${j} = ${S.buf}[sb${j} + ks];`);
    }
  }
  for (let r = 0; r < R; r++) {
    if (v.sub) {
      const src = `sv${Math.floor(r / SHARE)}`;
      body4.push(`let x${r} = subgroupBroadcast(${src}, ${r % SHARE}u);`);
      body1.push(`let x${r} = subgroupBroadcast(${src}, ${r % SHARE}u);`);
    } else {
      body4.push(`let x${r} = ${load4(S, `sb${r}`, "ks", "sk")};`);
      body1.push(`let x${r} = ${S.buf}[sb${r} + ks];`);
    }
    for (let c = 0; c < C; c++) {
      const a = `acc${r}_${c}`;
      body4.push(`${a} = fma(x${r}.w, o${c}.w, fma(x${r}.z, o${c}.z, fma(x${r}.y, o${c}.y, fma(x${r}.x, o${c}.x, ${a}))));`);
      body1.push(`${a} = fma(x${r}, o${c}, ${a});`);
    }
  }
  return { decl, body4, body1 };
}

/**
 * The stores: row r0+r, col c0+c*WG is output (m, n) by orientation. Plain
 * stores are unrolled; bias/activation run in a loop over a private copy of
 * the accumulators, because inlining the activation code R·C times made
 * lavapipe's shader compile 4x slower.
 */
function storeWgsl(v: Variant, S: Operand, O: Operand): { store: string[]; keep: string[]; em: string; en: string } {
  const { R, C, WG } = v;
  const store: string[] = [];
  const keep: string[] = [];
  const mn = (row: string, col: string) => (v.swap ? [col, row] : [row, col]);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const row = `r0 + ${r}u`;
      const col = `c0 + ${c * WG}u`;
      const [m, n] = mn(row, col);
      store.push(`if (${row} < ${S.dim} && ${col} < ${O.dim}) { out[offO + (${m}) * p.N + ${n}] = acc${r}_${c}; }`);
      keep.push(`res[${r * C + c}] = acc${r}_${c};`);
    }
  }
  const [em, en] = mn("row", "col") as [string, string];
  return { store, keep, em, en };
}

function wgsl(v: Variant): string {
  const { R, C, WG } = v;
  const A = operand("a", v.transA, v.k4);
  const B = operand("b", v.transB, v.k4);
  // Shared operand (rows) and owned operand (cols).
  const [S, O] = v.swap ? [B, A] : [A, B];
  const { decl, body4, body1 } = accumulateWgsl(v, S, O);
  const tail = v.k4
    ? ""
    : `for (var k = p.K4 * 4u; k < p.K; k = k + 1u) {
    ${body1.join("\n    ")}
    ks = ks + sk;
    ko = ko + ok;
  }`;
  const { store, keep, em, en } = storeWgsl(v, S, O);

  return /* wgsl */ `${v.sub ? "enable subgroups;\n" : ""}
struct P {
  M: u32, N: u32, K: u32, K4: u32,
  tilesR: u32, tiles: u32, batchBase: u32, nb: u32,
  act: u32, hasBias: u32, pad0: u32, pad1: u32,
  bshape: array<vec4<u32>, 2>, astr: array<vec4<u32>, 2>, bstr: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<${A.vec ? "vec4<f32>" : "f32"}>;
@group(0) @binding(3) var<storage, read> b: array<${B.vec ? "vec4<f32>" : "f32"}>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
${ACTIVATION_WGSL}
fn epilogue(acc: f32, n: u32) -> f32 {
  var v = acc;
  if (p.hasBias != 0u) { v = v + bias[n]; }
  ${activationSwitchWgsl("p.act")}
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>${v.sub ? ", @builtin(subgroup_invocation_id) sgid: u32" : ""}) {
  let tile = wid.x + wid.y * nwg.x;
  if (tile >= p.tiles) { return; }
  // Consecutive workgroups share a column tile (the owned operand, the big
  // one for Linear weights, stays in cache) and walk down the rows.
  let r0 = (tile % p.tilesR) * ${R}u;
  let c0 = (tile / p.tilesR) * ${WG * C}u + lid.x;
  ${v.sub ? `let lane = sgid % ${SHARE}u;` : ""}
  // Batch offsets: decompose the output batch index over the broadcast shape.
  let batch = p.batchBase + wid.z;
  var rem = batch;
  var offA = 0u;
  var offB = 0u;
  for (var d = i32(p.nb) - 1; d >= 0; d = d - 1) {
    let q = u32(d) / 4u;
    let e = u32(d) % 4u;
    let extent = p.bshape[q][e];
    let coord = rem % extent;
    rem = rem / extent;
    offA = offA + coord * p.astr[q][e];
    offB = offB + coord * p.bstr[q][e];
  }
  let offO = batch * p.M * p.N;
  ${decl.join("\n  ")}
  var ks = 0u;
  var ko = 0u;
  for (var k4 = 0u; k4 < p.K4; k4 = k4 + 1u) {
    ${body4.join("\n    ")}
    ks = ks + 4u * sk;
    ko = ko + 4u * ok;
  }
  ${tail}
  if (p.hasBias == 0u && p.act == 0u) {
    ${store.join("\n    ")}
  } else {
    var res: array<f32, ${R * C}>;
    ${keep.join("\n    ")}
    for (var i = 0u; i < ${R * C}u; i = i + 1u) {
      let row = r0 + i / ${C}u;
      let col = c0 + (i % ${C}u) * ${WG}u;
      if (row < ${S.dim} && col < ${O.dim}) { out[offO + ${em} * p.N + ${en}] = epilogue(res[i], ${en}); }
    }
  }
}`;
}

/** A tile: orientation, shared rows, owned columns per invocation, invocations per workgroup. */
export interface MatmulTile {
  swap: boolean;
  R: number;
  C: number;
  WG: number;
}

/**
 * The tile of an M×N×K product under `t` (its fixed knobs kept, its "auto"
 * ones searched), by a cost model of the kernel: every invocation of every
 * tile runs the whole K loop, padded rows and columns included (their loads
 * are clamped, not skipped), and a k-step costs each invocation its loads
 * (R/8 + C with the subgroup broadcast, R + C without; a load costs about
 * four FMAs on lavapipe) and R·C FMAs. Candidates are tried from the
 * largest tile down and a smaller one is taken only when it is clearly
 * cheaper, so that shapes that fill a big tile share its pipeline.
 */
export function chooseTile(M: number, N: number, K: number, sub: boolean, t: MatmulTuning = tuning): MatmulTile {
  const big = M * N >= BIG_OUTPUT;
  const Rs = t.rows !== "auto" ? [t.rows] : big ? [32, 16] : [16, 8];
  const WGs = t.wg !== "auto" ? [t.wg] : [64, 32, 16, 8];
  const Cs = t.cols !== "auto" ? [t.cols] : [4, 3, 2, 1];
  const steps = Math.ceil(Math.max(K, 1) / 4);
  let best: (MatmulTile & { cost: number }) | null = null;
  for (const R of Rs) {
    for (const WG of WGs) {
      for (const C of Cs) {
        for (const swap of [false, true]) {
          const [rows, cols] = swap ? [N, M] : [M, N];
          const tiles = Math.ceil(rows / R) * Math.ceil(cols / (WG * C));
          const loads = sub ? R / SHARE + C : R + C;
          const cost = tiles * WG * (steps * (4 * loads + R * C) + R * C);
          if (!best || cost < 0.95 * best.cost) best = { swap, R, C, WG, cost };
        }
      }
    }
  }
  const { swap, R, C, WG } = best!;
  return { swap, R, C, WG };
}

/** NumPy broadcast of two batch shapes; throws naming both operands. */
function broadcastBatch(a: readonly number[], b: readonly number[], aShape: readonly number[], bShape: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      fail("matmul", `batch dims of a ${shapeStr(aShape)} and b ${shapeStr(bShape)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Element strides of an operand's batch axes seen from the output batch shape (0 on broadcast axes). */
function batchStrides(batch: readonly number[], outBatch: readonly number[], matrixSize: number): number[] {
  const rank = outBatch.length;
  const strides = new Array<number>(rank).fill(0);
  let s = matrixSize;
  for (let i = rank - 1; i >= 0; i--) {
    const d = batch[batch.length - rank + i] ?? 1;
    strides[i] = d === 1 ? 0 : s;
    s *= d;
  }
  return strides;
}

/** Pads a batch-axis vector to the uniform block's fixed length. */
function pad(v: readonly number[], fill: number): number[] {
  const out = [...v];
  while (out.length < MAX_BATCH_RANK) out.push(fill);
  return out;
}

/**
 * Multiplies the last two axes of a and b: a [...batchA, M, K] (or [..., K, M]
 * with transA), b [...batchB, K, N] (or [..., N, K] with transB); batch axes
 * broadcast. Returns [...batch, M, N] = act(a·b + bias).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const op = "matmul";
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const act = checkActivation(op, opts.act ?? "none");
  checkInputs(op, opts.bias ? [a, b, opts.bias] : [a, b]);
  if (a.rank < 2 || b.rank < 2) {
    fail(op, `a ${shapeStr(a.shape)} and b ${shapeStr(b.shape)} must both have rank ≥ 2`);
  }
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [M, Ka] = transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transB ? [bc, br] : [br, bc];
  if (Ka !== Kb) {
    const la = transA ? "a (transA)" : "a";
    const lb = transB ? "b (transB)" : "b";
    fail(op, `inner dimensions differ: ${la} ${shapeStr(a.shape)} has K=${Ka}, ${lb} ${shapeStr(b.shape)} has K=${Kb}`);
  }
  const K = Ka;
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = broadcastBatch(batchA, batchB, a.shape, b.shape);
  if (batch.length > MAX_BATCH_RANK) fail(op, `${batch.length} batch axes exceed the supported ${MAX_BATCH_RANK}`);
  if (opts.bias && !(opts.bias.rank === 1 && opts.bias.shape[0] === N)) {
    fail(op, `bias ${shapeStr(opts.bias.shape)} must have shape [${N}] for output columns N=${N} (a ${shapeStr(a.shape)}, b ${shapeStr(b.shape)})`);
  }
  const g = gpu();
  g.checkAlive(op);
  const nBatch = batch.reduce((x, y) => x * y, 1);
  const outShape = [...batch, M, N];
  const outBytes = nBatch * M * N * 4;
  for (const [name, bytes, shape] of [["a", a.byteLength, a.shape], ["b", b.byteLength, b.shape], ["output", outBytes, outShape]] as const) {
    if (bytes > g.maxBindingBytes) {
      fail(op, `${name} ${shapeStr(shape)} is ${bytes} bytes, more than one storage binding allows (${g.maxBindingBytes}); split the batch`);
    }
  }
  const out = Tensor.empty(outShape);
  if (out.size === 0) return out;

  const sub = tuning.subgroups === "auto" && subgroupsUsable();
  const { swap, R, C, WG } = chooseTile(M, N, K, sub, tuning);
  const v: Variant = { transA, transB, swap, sub, k4: K % 4 === 0, R, C, WG };
  const pipe = g.pipeline(variantKey(v), () => wgsl(v));

  const [rowsDim, colsDim] = swap ? [N, M] : [M, N];
  const tilesR = Math.ceil(rowsDim / R);
  const tiles = tilesR * Math.ceil(colsDim / (WG * C));
  const grid = g.grid(tiles);
  const stridesA = batchStrides(batchA, batch, M * K);
  const stridesB = batchStrides(batchB, batch, K * N);
  const bias = opts.bias ?? a; // any read-only buffer fills the unused binding
  // At least 16 bytes: a vec4 binding's minimum, even when K = 0 leaves it empty (pooled buffers hold ≥ 256).
  const bindings: GPUBufferBinding[] = [out, a, b, bias].map((x) => ({ buffer: x.buffer, offset: 0, size: Math.max(16, Math.ceil(x.byteLength / 4) * 4) }));
  const maxZ = g.maxWorkgroupsPerDim;
  for (let base = 0; base < nBatch; base += maxZ) {
    const count = Math.min(maxZ, nBatch - base);
    const params = new Params()
      .u32(M).u32(N).u32(K).u32(Math.floor(K / 4))
      .u32(tilesR).u32(tiles).u32(base).u32(batch.length)
      .u32(ACTIVATIONS.indexOf(act)).u32(opts.bias ? 1 : 0).u32(0).u32(0);
    for (const d of pad(batch, 1)) params.u32(d);
    for (const s of pad(stridesA, 0)) params.u32(s);
    for (const s of pad(stridesB, 0)) params.u32(s);
    g.dispatch(pipe, bindings, params.bytes(), [grid[0], grid[1], count]);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The differentiable ops: matmul and linear.

/** Gradients of op(A)·op(B) w.r.t. the stored A and B (same batch as G). */
function matmulGrads(A: Tensor, B: Tensor, G: Tensor, tA: boolean, tB: boolean, wantA: boolean, wantB: boolean): [Tensor | null, Tensor | null] {
  // dop(A) = G·op(B)ᵀ, dop(B) = op(A)ᵀ·G; a transposed operand gets the transpose.
  let dA: Tensor | null = null;
  let dB: Tensor | null = null;
  if (wantA) {
    dA = !tA ? matmul(G, B, { transB: !tB }) : matmul(B, G, { transA: tB, transB: true });
  }
  if (wantB) {
    dB = !tB ? matmul(A, G, { transA: !tA }) : matmul(G, A, { transA: true, transB: tA });
  }
  return [dA, dB];
}

export interface MatmulAttrs {
  transA: boolean;
  transB: boolean;
}

/** a [..., M, K] · b [..., K, N] (either stored transposed), batch axes broadcast; saves a for db, b for da. */
export const matmulOp = defineOp<[Tensor, Tensor], MatmulAttrs>({
  name: "matmul",
  forward: ([a, b], { transA, transB }) => matmul(a, b, { transA, transB }),
  save: ([a, b], _out, { wants: [ga, gb] }) => [gb ? a : null, ga ? b : null],
  backward: ([av, bv], g, { attrs: { transA: tA, transB: tB }, wants: [ga, gb], shapes }) => {
    const aShape = shapes[0]!;
    const bShape = shapes[1]!;
    // A rank-2 b against a batched, untransposed a (a Linear layer): fold
    // the batch into M so dB is one product, not a batch summed afterwards.
    if (bShape.length === 2 && aShape.length > 2 && !tA) {
      const K = aShape[aShape.length - 1]!;
      const a2 = av?.reshape([-1, K]) ?? null;
      const g2 = g.reshape([-1, g.shape[g.rank - 1]!]);
      const [dA, dB] = matmulGrads(a2 ?? g2, bv ?? g2, g2, false, tB, ga!, gb!);
      return [dA ? dA.reshape(aShape) : null, dB];
    }
    const [dA, dB] = matmulGrads(av ?? g, bv ?? g, g, tA, tB, ga!, gb!);
    return [dA ? sumTo(dA, aShape) : null, dB ? sumTo(dB, bShape) : null];
  },
});

export interface LinearAttrs {
  act: Activation;
  /** With an activation: recompute the pre-activation in backward from the saved x, w and bias. */
  recompute: boolean;
}

/**
 * act(x · wᵀ + b), x [..., K], w [N, K], bias [N] or absent: one matmul with
 * its epilogue. Its backward needs the pre-activation: with `recompute` it is
 * recomputed; otherwise record x·wᵀ + b (act "none") and the activation as
 * two ops, so the activation's node saves it.
 */
export const linearOp = defineOp<[Tensor, Tensor, Tensor | null], LinearAttrs>({
  name: "linear",
  forward: ([x, w, b], { act }) => matmul(x, w, { transB: true, bias: b ?? undefined, act }),
  save: ([x, w, b], _out, { attrs, wants: [gx, gw] }) => {
    const rc = attrs.act !== "none" && attrs.recompute;
    return [gw || rc ? x : null, gx || rc ? w : null, rc ? b : null];
  },
  backward: ([xv, wv, bv], g, { attrs: { act }, wants: [gx, gw, gb], shapes }) => {
    const xShape = shapes[0]!;
    const K = xShape[xShape.length - 1]!;
    let gz = g;
    if (act !== "none") gz = unaryBackward(act, matmul(xv!, wv!, { transB: true, bias: bv ?? undefined }), g);
    const g2 = gz.reshape([-1, gz.shape[gz.rank - 1]!]);
    const dx = gx ? matmul(g2, wv!).reshape(xShape) : null;
    const dw = gw ? matmul(g2, xv!.reshape([-1, K]), { transA: true }) : null;
    const db = gb ? reduce("sum", g2, 0) : null;
    return [dx, dw, db];
  },
});
