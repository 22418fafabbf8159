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
//  - all invocations of a workgroup share the same R output rows: lane i <
//    share of each subgroup loads rows i, i+share, … and `subgroupBroadcast`
//    hands every row value to all lanes, so one load feeds `share` lanes
//    (8 on lavapipe, 4 on 4-lane devices: the largest of 4 or 8 that every
//    subgroup of the device holds; any subgroup size works).
//  Per k step a lane does R/share + C loads for R·C FMAs (R=32, C=4, share
//  8: 8 for 128, against 2 per FMA for a naive kernel). Without `subgroups`
//  each lane loads its R row values itself: slower, but portable.
//  - The tile is "rows shared, columns owned"; when the output has few
//    columns and many rows the kernel runs on the transposed problem
//    (outᵀ = op(b)ᵀ · op(a)ᵀ) so that the owned axis is the long one.
//  - Bias and activation are runtime switches (a uniform branch in the
//    epilogue), so one compiled pipeline serves every epilogue.
//  - f16 operands (precision.ts) are storage only: loads widen to f32 (so
//    the subgroup broadcast and every FMA are f32), the sums accumulate in
//    f32, and each output is rounded to f16 once, after the epilogue.
import { gpu } from "../tensor/device.js";
import { BYTES_PER_ELEMENT, Tensor, shapeStr } from "../tensor/tensor.js";
import { ACTIVATIONS, ACTIVATION_WGSL, activationSwitchWgsl, checkActivation, type Activation } from "./activation.js";
import { fail } from "./check.js";
import { unaryBackward } from "./elementwise.js";
import { defineOp } from "./op.js";
import { deviceProfile, laneGroups, tunedVariant, variantName, variantPipeline, type DeviceProfile } from "./profile.js";
import { Params } from "./params.js";
import { enableF16, precisionOf, storageType, toF32, toStorage, type Precision } from "./precision.js";
import { reduce, sumTo } from "./reduce.js";

export interface MatmulOptions {
  /** a is stored [..., K, M] (use its transpose). */
  transA?: boolean;
  /** b is stored [..., N, K] (use its transpose), as PyTorch Linear weights. */
  transB?: boolean;
  /** [N], added before the activation. */
  bias?: Tensor;
  act?: Activation;
  /** Force knobs of the kernel variant (the others are chosen); not part of the op's numbers, only of its speed. */
  variant?: Partial<MatmulChoice>;
}

/**
 * What matmul's variant chooses (the rest of its compile-time shape follows
 * from the call: transA, transB, K % 4). `share` lanes of each subgroup load
 * the shared rows and hand them to the others with subgroupBroadcast (0: no
 * subgroups, every lane loads its rows); R shared rows per workgroup, C
 * owned columns per invocation, WG invocations per workgroup; `swap` runs
 * the transposed problem (rows = the output's N axis).
 */
export interface MatmulChoice {
  share: number;
  R: number;
  C: number;
  WG: number;
  swap: boolean;
}

// Measured on lavapipe (2048x768x768, CPU time): R32 C4 ≈ 1.25x R16 C4 and
// 1.4x R16 C2; R32 C6 and larger spill too much. R32 compiles in ~10 s, so
// small outputs (where R32 also pads more) use R16 or R8. Columns and
// workgroup size follow the output's shape (chooseTile): a fixed 64×4 span
// computed 256 columns for a 12-column output.
/** Outputs with at least this many elements (per batch) use 32-row tiles unless R is fixed. */
const BIG_OUTPUT = 65536;

/** Batch axes the uniform block can describe. */
const MAX_BATCH_RANK = 8;

/** The widest row-sharing group the chooser takes: lanes 0..7 of a subgroup load the shared rows. */
const MAX_SHARE = 8;

/** The row-sharing width for a device: the largest lane group (4 or 8) every subgroup holds; 0 without subgroups. */
export function chooseShare(p: DeviceProfile): number {
  const groups = laneGroups(p, MAX_SHARE);
  return groups[groups.length - 1] ?? 0;
}

/** Throws unless the fixed knobs make a kernel this device runs. */
function checkChoice(p: DeviceProfile, f: Partial<MatmulChoice>): void {
  const bad = (what: string) => fail("matmul", `variant ${variantName(f)}: ${what}`);
  const share = f.share ?? chooseShare(p);
  if (share !== 0 && !laneGroups(p).includes(share)) bad(`share ${share} must be 0 or a power of two from 4 to the device's smallest subgroup (${p.subgroups?.min ?? "none"})`);
  if (f.R !== undefined && (!Number.isInteger(f.R) || f.R < 1 || (share > 0 && f.R % share !== 0))) bad(`R ${f.R} must be a positive multiple of share ${share}`);
  if (f.C !== undefined && (!Number.isInteger(f.C) || f.C < 1)) bad(`C ${f.C} must be a positive integer`);
  const maxWg = p.limits.maxInvocationsPerWorkgroup;
  if (f.WG !== undefined && (!Number.isInteger(f.WG) || f.WG < 1 || f.WG > maxWg || (share > 0 && f.WG % share !== 0))) {
    bad(`WG ${f.WG} must be a multiple of share ${share} in 1..${maxWg}`);
  }
}

/**
 * The compile-time shape of one pipeline. The problem is always phrased as
 * "rows × cols": rows are shared by a workgroup, cols owned by invocations.
 * With `swap` the rows are the output's N axis and the cols its M axis.
 * `k4`: K is a multiple of 4, so operands contiguous along K are read as
 * vec4 (fewer index computations and bounds checks) and there is no K tail.
 * `precision`: the storage type of the operands, bias and output.
 */
interface Variant extends MatmulChoice {
  precision: Precision;
  transA: boolean;
  transB: boolean;
  k4: boolean;
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
  const { R, C, WG, share: SHARE } = v;
  // One stored value (or vec4) widened to f32.
  const f32 = (x: string) => toF32(v.precision, x);
  const vec = (x: string) => toF32(v.precision, x, "vec4<f32>");
  const sub = SHARE > 0;
  const groups = sub ? R / SHARE : 0;
  const decl: string[] = [];
  const body4: string[] = [];
  const body1: string[] = [];

  // Base index of row/col i, clamped into range so every load is valid (the
  // results of clamped rows/cols are never stored); vec4 operands in vec4 units.
  const base = (X: Operand, name: string, i: string) =>
    X.vec ? `let ${name} = (${X.off} + min(${i}, ${X.dim} - 1u) * ${X.perI}) / 4u;` : `let ${name} = ${X.off} + min(${i}, ${X.dim} - 1u) * ${X.perI};`;
  // The 4 values of k..k+3 at a base (k4 counts vec4 steps; kx = k * perK).
  const load4 = (X: Operand, b: string, kx: string, step: string) =>
    X.vec
      ? vec(`${X.buf}[${b} + k4]`)
      : `vec4<f32>(${f32(`${X.buf}[${b} + ${kx}]`)}, ${f32(`${X.buf}[${b} + ${kx} + ${step}]`)}, ${f32(`${X.buf}[${b} + ${kx} + 2u * ${step}]`)}, ${f32(`${X.buf}[${b} + ${kx} + 3u * ${step}]`)})`;

  if (sub) {
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
    body1.push(`let o${c} = ${f32(`${O.buf}[ob${c} + ko]`)};`);
  }
  // Shared values, then the FMAs row by row (each row's vec4 is live only briefly).
  if (sub) {
    for (let j = 0; j < groups; j++) {
      body4.push(`let sv${j} = ${load4(S, `sb${j}`, "ks", "sk")};`);
      body1.push(`let sv${j} = ${f32(`${S.buf}[sb${j} + ks]`)};`);
    }
  }
  for (let r = 0; r < R; r++) {
    if (sub) {
      const src = `sv${Math.floor(r / SHARE)}`;
      body4.push(`let x${r} = subgroupBroadcast(${src}, ${r % SHARE}u);`);
      body1.push(`let x${r} = subgroupBroadcast(${src}, ${r % SHARE}u);`);
    } else {
      body4.push(`let x${r} = ${load4(S, `sb${r}`, "ks", "sk")};`);
      body1.push(`let x${r} = ${f32(`${S.buf}[sb${r} + ks]`)};`);
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
      store.push(`if (${row} < ${S.dim} && ${col} < ${O.dim}) { out[offO + (${m}) * p.N + ${n}] = ${toStorage(v.precision, `acc${r}_${c}`)}; }`);
      keep.push(`res[${r * C + c}] = acc${r}_${c};`);
    }
  }
  const [em, en] = mn("row", "col") as [string, string];
  return { store, keep, em, en };
}

function wgsl(v: Variant): string {
  const { R, C, WG } = v;
  const sub = v.share > 0;
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
  const T = storageType(v.precision);

  return /* wgsl */ `${enableF16(v.precision)}${sub ? "enable subgroups;\n" : ""}
struct P {
  M: u32, N: u32, K: u32, K4: u32,
  tilesR: u32, tiles: u32, batchBase: u32, nb: u32,
  act: u32, hasBias: u32, pad0: u32, pad1: u32,
  bshape: array<vec4<u32>, 2>, astr: array<vec4<u32>, 2>, bstr: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read> a: array<${A.vec ? `vec4<${T}>` : T}>;
@group(0) @binding(3) var<storage, read> b: array<${B.vec ? `vec4<${T}>` : T}>;
@group(0) @binding(4) var<storage, read> bias: array<${T}>;
${ACTIVATION_WGSL}
fn epilogue(acc: f32, n: u32) -> f32 {
  var v = acc;
  if (p.hasBias != 0u) { v = v + ${toF32(v.precision, "bias[n]")}; }
  ${activationSwitchWgsl("p.act")}
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>${sub ? ", @builtin(subgroup_invocation_id) sgid: u32" : ""}) {
  let tile = wid.x + wid.y * nwg.x;
  if (tile >= p.tiles) { return; }
  // Consecutive workgroups share a column tile (the owned operand, the big
  // one for Linear weights, stays in cache) and walk down the rows.
  let r0 = (tile % p.tilesR) * ${R}u;
  let c0 = (tile / p.tilesR) * ${WG * C}u + lid.x;
  ${sub ? `let lane = sgid % ${v.share}u;` : ""}
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
      if (row < ${S.dim} && col < ${O.dim}) { out[offO + ${em} * p.N + ${en}] = ${toStorage(v.precision, `epilogue(res[i], ${en})`)}; }
    }
  }
}`;
}

/** Candidates for one knob: the fixed value, else those of `auto` that `ok` allows (else `fallback`). */
function knob<T>(fixed: T | undefined, auto: T[], ok: (x: T) => boolean, fallback: T): T[] {
  if (fixed !== undefined) return [fixed];
  const c = auto.filter(ok);
  return c.length > 0 ? c : [fallback];
}

/** The shared row counts chooseTile searches for an M×N output: 32-row tiles only for big ones. */
function rowCounts(M: number, N: number): number[] {
  return M * N >= BIG_OUTPUT ? [32, 16] : [16, 8];
}

/**
 * The variant of an M×N×K product with `share` lanes sharing rows (0: no
 * subgroups), the knobs of `f` fixed and the others searched, by a cost
 * model of the kernel: every invocation of every tile runs the whole K
 * loop, padded rows and columns included (their loads are clamped, not
 * skipped), and a k-step costs each invocation its loads (R/share + C with
 * the subgroup broadcast, R + C without; a load costs about four FMAs on
 * lavapipe) and R·C FMAs. Candidates are tried from the largest tile down
 * and a smaller one is taken only when it is clearly cheaper, so that
 * shapes that fill a big tile share its pipeline.
 */
export function chooseTile(M: number, N: number, K: number, share: number, f: Partial<MatmulChoice> = {}): MatmulChoice {
  const fits = (x: number) => share === 0 || x % share === 0;
  const Rs = knob(f.R, rowCounts(M, N), fits, Math.max(share, 8));
  const WGs = knob(f.WG, [64, 32, 16, 8], fits, Math.max(share, 8));
  const Cs = knob(f.C, [4, 3, 2, 1], () => true, 1);
  const swaps = knob(f.swap, [false, true], () => true, false);
  const steps = Math.ceil(Math.max(K, 1) / 4);
  let best: (MatmulChoice & { cost: number }) | null = null;
  for (const R of Rs) {
    for (const WG of WGs) {
      for (const C of Cs) {
        for (const swap of swaps) {
          const [rows, cols] = swap ? [N, M] : [M, N];
          const tiles = Math.ceil(rows / R) * Math.ceil(cols / (WG * C));
          const loads = share > 0 ? R / share + C : R + C;
          const cost = tiles * WG * (steps * (4 * loads + R * C) + R * C);
          if (!best || cost < 0.95 * best.cost) best = { share, R, C, WG, swap, cost };
        }
      }
    }
  }
  const { R, C, WG, swap } = best!;
  return { share, R, C, WG, swap };
}

/**
 * The variant matmul runs for an M×N×K product: the knobs fixed by
 * `fixed` (the call's `variant`) or by the profile's `force.matmul`, the
 * others chosen: the tuned winner of the shape's bucket at the call's
 * `precision` when nothing is fixed, else share by chooseShare and the
 * tile by chooseTile.
 */
export function chooseMatmulVariant(M: number, N: number, K: number, fixed: Partial<MatmulChoice> = {}, p: DeviceProfile = deviceProfile(), precision: Precision = "f32"): MatmulChoice {
  const f = { ...p.force.matmul, ...fixed };
  checkChoice(p, f);
  const tuned = Object.keys(f).length === 0 ? tunedVariant<MatmulChoice>(p, "matmul", [M, N, K], precision) : undefined;
  return tuned ?? chooseTile(M, N, K, f.share ?? chooseShare(p), f);
}

/**
 * The variants the tuner times for an M×N×K product on this device: the
 * heuristic's choice first, then its tile at every other row-sharing width
 * (0 included), at the other row count chooseTile considers for the
 * output, and in the other orientation. A handful, not chooseTile's whole
 * search: each pipeline takes seconds to compile on lavapipe.
 */
export function matmulCandidates(M: number, N: number, K: number, p: DeviceProfile = deviceProfile()): MatmulChoice[] {
  const share = chooseShare(p);
  const heuristic = chooseTile(M, N, K, share);
  const out = [heuristic, ...[...laneGroups(p, MAX_SHARE), 0].map((s) => chooseTile(M, N, K, s))];
  for (const R of rowCounts(M, N).filter((r) => share === 0 || r % share === 0)) out.push(chooseTile(M, N, K, share, { R }));
  out.push(chooseTile(M, N, K, share, { swap: !heuristic.swap }));
  return out.filter((c, i) => out.findIndex((o) => JSON.stringify(o) === JSON.stringify(c)) === i);
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
 * broadcast. Returns [...batch, M, N] = act(a·b + bias). a, b and bias are
 * all f32 or all f16 (precision.ts); the output has their dtype.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const op = "matmul";
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const act = checkActivation(op, opts.act ?? "none");
  const precision = precisionOf(op, [a, b, opts.bias]);
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
  const outBytes = nBatch * M * N * BYTES_PER_ELEMENT[precision];
  for (const [name, bytes, shape] of [["a", a.byteLength, a.shape], ["b", b.byteLength, b.shape], ["output", outBytes, outShape]] as const) {
    if (bytes > g.maxBindingBytes) {
      fail(op, `${name} ${shapeStr(shape)} is ${bytes} bytes, more than one storage binding allows (${g.maxBindingBytes}); split the batch`);
    }
  }
  const out = Tensor.empty(outShape, precision);
  if (out.size === 0) return out;

  const choice = chooseMatmulVariant(M, N, K, opts.variant, deviceProfile(g), precision);
  const { swap, R, C, WG } = choice;
  const pipe = variantPipeline("matmul", { precision, transA, transB, k4: K % 4 === 0, ...choice } satisfies Variant, wgsl);

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
