// 3-D resizing with PyTorch `F.interpolate` semantics (trilinear with either
// align_corners, nearest, nearest-exact) for [D, H, W] or [B, C, D, H, W].
//
// Why the kernel looks like this: on lavapipe every buffer load is expensive,
// so one invocation produces many outputs from few loads. An invocation owns
// one group of output planes and one "row group" of output rows h that share
// their source planes and rows (same d0/d1 and h0/h1, or the same nearest
// source), and one segment of W. Upsampling along W (trilinear), it walks W
// keeping the last two source columns in registers (4 values each: planes
// d0/d1 × rows h0/h1), so each source value is loaded once per invocation;
// elsewhere each output loads its own columns (as one vec2 a source row
// where they are an even column and the next, as when W halves). Every
// column feeds all planes and rows of the groups.
//
// Every source index and weight comes from a host table (groups along D and
// H with their outputs' weights, each output column's source and weight):
// PyTorch's CPU arithmetic (float scale `in/out`, or `(in-1)/(out-1)` with
// align_corners; nearest: floor(dst*scale); exact: floor((dst+0.5)*scale);
// all clamped to in-1), so nearest results match bit for bit and linear
// weights to f32 rounding, and the kernel does no coordinate arithmetic.
//
// An input larger than one storage binding is read through one window per
// dispatch (the source planes of its D groups) where two planes fit one
// binding, else through all its segments.
//
// The forward reads and writes f32 or f16 (precision.ts): source values are
// loaded into f32, blended in f32 and rounded once when stored, so nearest
// modes copy f16 values exactly. The backward is f32 only.
import { gpu } from "../tensor/device.js";
import { Tensor, numel, shapeStr } from "../tensor/tensor.js";
import { inputSegments, inputWindow, layoutOf, outputChunks, segmentsWgsl, type OutputChunk, type SegmentLayout, type Segments } from "./binding.js";
import { deviceProfile, variantName, variantPipeline, type DeviceProfile } from "./profile.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { defineOp } from "./op.js";
import { Params } from "./params.js";
import { enableF16, precisionOf, type Precision } from "./precision.js";
import { vec4Segments } from "./vec4.js";

export type ResizeMode = "trilinear" | "nearest" | "nearest-exact";

const MODES: readonly ResizeMode[] = ["trilinear", "nearest", "nearest-exact"];
/** Rows per group at most: long groups (large upsampling in H) would leave few invocations (and a group's weights fill two table entries). */
const MAXG = 8;
const WG = 64;
/** The backward aims for at least this many invocations per dispatch (2 cores × SIMD lanes × slack). */
const TARGET_THREADS = 4096;

const f32 = Math.fround;

/** PyTorch's source-index scale for one axis (float). */
export function axisScale(inSize: number, outSize: number, mode: ResizeMode, alignCorners: boolean): number {
  if (mode === "trilinear" && alignCorners) return outSize > 1 ? f32((inSize - 1) / (outSize - 1)) : 0;
  return f32(inSize / outSize);
}

/** Nearest / nearest-exact source index of output `dst`, as PyTorch computes it in float. */
export function nearestSource(dst: number, inSize: number, scale: number, mode: "nearest" | "nearest-exact"): number {
  const s = mode === "nearest" ? f32(dst * scale) : f32((dst + 0.5) * scale);
  return Math.min(Math.floor(s), inSize - 1);
}

/** Linear source coordinate of output `dst` (float, clamped at 0 without align_corners). */
export function linearSource(dst: number, scale: number, alignCorners: boolean): number {
  if (alignCorners) return f32(scale * dst);
  const s = f32(scale * (dst + 0.5) - 0.5);
  return s < 0 ? 0 : s;
}

/** The forward's source index of output o along one axis (floor of the coordinate; monotone in o). */
function sourceIndex(o: number, inSize: number, scale: number, mode: ResizeMode, alignCorners: boolean): number {
  if (mode === "trilinear") return Math.min(Math.floor(linearSource(o, scale, alignCorners)), inSize - 1);
  return nearestSource(o, inSize, scale, mode);
}

/**
 * Trilinear: the weight of source index i0 + 1 in output o (the
 * coordinate's fraction, in float as PyTorch computes it).
 */
function lerpWeight(o: number, i0: number, scale: number, alignCorners: boolean): number {
  return f32(linearSource(o, scale, alignCorners) - i0);
}

interface RowGroup {
  first: number;
  count: number;
  i0: number;
  i1: number;
}

/** Output rows grouped by their source row(s); groups are contiguous and at most MAXG long. */
function rowGroups(inSize: number, outSize: number, scale: number, mode: ResizeMode, alignCorners: boolean): RowGroup[] {
  const groups: RowGroup[] = [];
  for (let o = 0; o < outSize; o++) {
    const i0 = sourceIndex(o, inSize, scale, mode, alignCorners);
    const i1 = mode === "trilinear" ? Math.min(i0 + 1, inSize - 1) : i0;
    const last = groups[groups.length - 1];
    if (last && last.i0 === i0 && last.count < MAXG) last.count++;
    else groups.push({ first: o, count: 1, i0, i1 });
  }
  return groups;
}

/**
 * How the forward maps invocations onto outputs. An invocation owns one
 * group of output planes and one group of output rows (outputs that share
 * their source planes and rows: rowGroups along D and along H) and `per`
 * consecutive vectors of `vec` outputs along W. It reads its source columns
 * once and stores every column's blend into all the planes and rows of its
 * groups, so their cost is shared by up to MAXG² outputs. `vec` 4
 * stores four outputs at once (lavapipe pays per access) where W is a
 * multiple of 4 (elsewhere the kernel stores one at a time, whatever the
 * variant says); `per` amortises the walk's start (two source columns
 * loaded before the first output) and the index arithmetic. `vec` picks
 * the WGSL, `per` is a parameter of the dispatch (ResizeSpec).
 */
export interface ResizeVariant {
  vec: 1 | 4;
  per: number;
}

/** Most vectors an invocation writes along W. */
const MAX_PER = 64;
/**
 * Invocations the chooser keeps where the output allows (2 cores × 8 SIMD
 * lanes × slack on lavapipe; a guess elsewhere).
 */
const TARGET_INVOCATIONS = 4096;

/**
 * The chosen variant for an output of `runs` (plane group, row group)
 * pairs of `outW` columns: vec4 stores, and the longest walk (a power of
 * two up to MAX_PER vectors) that leaves TARGET_INVOCATIONS invocations.
 * On lavapipe (2 cores, bench/resample.bench.ts) CPU time falls as walks
 * grow: a walk streams its source row, and starts cost two column loads.
 * Per-call and per-device forcing as for the other kernels.
 */
export function chooseResize(p: DeviceProfile, runs: number, outW: number, forced?: Partial<ResizeVariant>): ResizeVariant {
  const vec = outW % 4 === 0 ? 4 : 1;
  let per = MAX_PER;
  while (per > 1 && runs * Math.ceil(outW / (vec * per)) < TARGET_INVOCATIONS) per /= 2;
  const v = { vec: 4 as const, per, ...p.force.resize, ...forced };
  if ((v.vec !== 1 && v.vec !== 4) || !Number.isInteger(v.per) || v.per < 1 || v.per > MAX_PER) {
    throw new Error(`resize3d: variant ${variantName(v)} is not one (vec 1 or 4, per 1-${MAX_PER})`);
  }
  return v;
}

/**
 * The variants tests run: scalar and vec4 stores, each with one vector an
 * invocation, three (a block that ends inside a row) and MAX_PER (the
 * longest the chooser picks; it picks powers of two in between).
 */
export function resizeVariants(): ResizeVariant[] {
  return [1, 4].flatMap((vec) => [1, 3, MAX_PER].map((per) => ({ vec: vec as 1 | 4, per })));
}

/**
 * What the forward's WGSL depends on: a pipeline key. `vec` is the
 * variant's where W allows it, else 1. The variant's `per` is a parameter
 * of the dispatch: as a WGSL constant, the compiler unrolls the walk up to
 * 64 times (seconds of compiling on lavapipe with a segmented input).
 */
interface ResizeSpec {
  mode: ResizeMode;
  alignCorners: boolean;
  vec: 1 | 4;
  dtype: Precision;
  x: SegmentLayout;
  /**
   * How the kernel reads an output's source columns along W. "walk"
   * (trilinear upsampling along W): neighbouring outputs share columns, so
   * the walk keeps its last two and loads a column once. "each" (nearest,
   * or trilinear with outW ≤ inW): each output loads its own; the walk's
   * test and branch cost more on lavapipe than the loads they save (nearest
   * 32×256² → 400×512² ran 4% faster, trilinear 120×512² → 32×256² 12%).
   * "pairs" (trilinear where every output's two columns are an even column
   * and the next, as when W halves, and the input is one binding): each
   * row's two values are one vec2 load.
   */
  columns: "walk" | "each" | "pairs";
  /** Whether some D group (H group) holds several output planes (rows); where none does, the kernel has no loop over the group. */
  sharedD: boolean;
  sharedH: boolean;
}

/**
 * A mode's part of the kernel: `decl` its column reads along W (module
 * scope), `setup` the source rows, `collect` a vector of columns (in F)
 * from the W table, `plane` the values of plane n of the D group, `row`
 * the value of row m of the H group, stored.
 */
interface ModeWgsl {
  decl: string;
  setup: string;
  collect: string;
  plane: string;
  row: string;
}

/**
 * WGSL reading the W table for the vector of outputs from w (`cs` their
 * source columns and, trilinear, `ls` their weights: vec4s, or scalars
 * with vec 1) and declaring each variable of `parts` as the part (a
 * swizzle, or "" for the value) of colW's result for output w + j in lane
 * j, or, with vec 1, for output w. The four columns of a vec4 are four
 * calls (`unrolled`) or a loop with one call.
 */
function collectWgsl(vec: 1 | 4, unrolled: boolean, trilinear: boolean, parts: Record<string, string>): string {
  const names = Object.keys(parts);
  const args = (j: string) => (trilinear ? `cs${j}, ls${j}` : `cs${j}`);
  if (vec === 1) {
    const read = `let cs = tab[p.colAt + w / 4u][w % 4u];${trilinear ? " let ls = bitcast<f32>(tab[p.wAt + w / 4u][w % 4u]);" : ""}`;
    return `${read}\n    let f = colW(${args("")});\n    ${names.map((n) => `let ${n} = f${parts[n]};`).join(" ")}`;
  }
  const read = `let cs = tab[p.colAt + w / 4u];${trilinear ? " let ls = bitcast<vec4<f32>>(tab[p.wAt + w / 4u]);" : ""}`;
  if (unrolled) {
    const steps = ["x", "y", "z", "w"].map((c, j) => `let f${j} = colW(${args(`.${c}`)});`).join(" ");
    return `${read}\n    ${steps}\n    ${names.map((n) => `let ${n} = vec4<f32>(${[0, 1, 2, 3].map((j) => `f${j}${parts[n]}`).join(", ")});`).join("\n    ")}`;
  }
  return `${read}\n    ${names.map((n) => `var ${n}: vec4<f32>;`).join(" ")}
    for (var j = 0u; j < 4u; j++) { let f = colW(${args("[j]")}); ${names.map((n) => `${n}[j] = f${parts[n]};`).join(" ")} }`;
}

// Trilinear: a column is the four source values of rows (d0,h0), (d0,h1),
// (d1,h0), (d1,h1) as one vec4, and an output's W blend mixes columns c and
// c + 1 with weight lw on c + 1. With "walk" (upsampling along W) the last
// two columns stay in registers: moving one column right keeps the old
// right column, a jump loads both (one call site of column(): lavapipe's
// compile time grows with each inlined x_at). Otherwise each output loads
// its two columns, row by row: the two values of a row one after the other
// (pairW) took 30% less time on lavapipe than the four rows of column c,
// then those of c + 1 (trilinear 120×512² → 32×256²); with "pairs" they
// are one vec2 load (x is an array of vec2). A column blended over W is
// blended over D for each plane of the group (ld), then over H for each
// row (lh).
function linearWgsl(vec: 1 | 4, unrolled: boolean, columns: ResizeSpec["columns"]): ModeWgsl {
  const F = vec === 4 ? "vec4<f32>" : "f32";
  const walk = columns === "walk";
  const pair =
    columns === "pairs"
      ? "fn pairW(r: u32, c: u32, lw: f32) -> f32 {\n  let v = vec2<f32>(x_at((r + c) / 2u));\n  return v.x + lw * (v.y - v.x);\n}\n"
      : "fn pairW(r: u32, c: u32, lw: f32) -> f32 {\n  let a = f32(x_at(r + c));\n  return a + lw * (f32(x_at(r + min(c + 1u, p.inW - 1u))) - a);\n}\n";
  const blend = walk
    ? `if (i32(c) != cur) {
    for (var s = select(0u, 1u, i32(c) == cur + 1); s < 2u; s++) {
      va = vb;
      vb = column(min(c + s, p.inW - 1u));
    }
    cur = i32(c);
  }
  return va + lw * (vb - va);`
    : `return vec4<f32>(pairW(rows.x, c, lw), pairW(rows.y, c, lw), pairW(rows.z, c, lw), pairW(rows.w, c, lw));`;
  const walkDecl = `var<private> cur: i32 = -2;
var<private> va: vec4<f32>;
var<private> vb: vec4<f32>;
fn column(c: u32) -> vec4<f32> {
  return vec4<f32>(f32(x_at(rows.x + c)), f32(x_at(rows.y + c)), f32(x_at(rows.z + c)), f32(x_at(rows.w + c)));
}
`;
  return {
    decl: `var<private> rows: vec4<u32>;
${walk ? walkDecl : pair}fn colW(c: u32, lw: f32) -> vec4<f32> {
  ${blend}
}`,
    setup: `let r0 = (inPlane + dg.z) * p.inH;
  let r1 = (inPlane + dg.w) * p.inH;
  rows = vec4<u32>(r0 + hg.z, r0 + hg.w, r1 + hg.z, r1 + hg.w) * p.inW - p.xBase;`,
    collect: collectWgsl(vec, unrolled, true, { e00: ".x", e01: ".y", e10: ".z", e11: ".w" }),
    plane: `let ld = pick(ldA, ldB, n);
      let q0 = e00 + ld * (e10 - e00);
      let q1 = e01 + ld * (e11 - e01);`,
    row: `${F}(q0 + pick(lhA, lhB, m) * (q1 - q0))`,
  };
}

// Nearest: every plane and row of the groups has the same source row, and
// each output loads its value (as many stores as the groups have rows).
function nearestWgsl(vec: 1 | 4, unrolled: boolean): ModeWgsl {
  return {
    decl: `var<private> row: u32;
fn colW(c: u32) -> f32 {
  return f32(x_at(row + c));
}`,
    setup: `row = ((inPlane + dg.z) * p.inH + hg.z) * p.inW - p.xBase;`,
    collect: collectWgsl(vec, unrolled, false, { q: "" }),
    plane: "",
    row: "q",
  };
}

/**
 * The forward kernel. Invocation → (W block, H group) along x, W block
 * fastest so that a SIMD batch of lanes walks neighbouring columns of the
 * same rows, the D group along y and the batch-channel along z (a grid
 * instead of a flat index: lavapipe divides per lane). Every source index
 * and weight comes from the table (resizeTable), none is computed here.
 * Values are f32 until the store rounds them to T. Chunks hold whole rows;
 * rows of other chunks are skipped (u32 wrap-around makes one test).
 */
function resizeWgsl(s: ResizeSpec): string {
  const { vec, dtype: T } = s;
  // Unrolled, a vec4's four walk steps ran 15-25% faster on lavapipe (SegVol's
  // logits), but with a segmented input each inlined x_at is a switch over
  // the segments: compiling took seconds, and the loop ran faster.
  const unrolled = s.x.count === 1;
  const mode = s.mode === "trilinear" ? linearWgsl(vec, unrolled, s.columns) : nearestWgsl(vec, unrolled);
  // A group of one output is a block with a constant index: no loop.
  const planes = s.sharedD ? "for (var n = 0u; n < dg.y; n++) {" : "{\n      let n = 0u;";
  const rows = s.sharedH ? "for (var m = 0u; m < hg.y; m++) {" : "{\n        let m = 0u;";
  // Trilinear groups carry their outputs' weights: two entries after each
  // group, held in registers (a table read per stored row cost lavapipe
  // 20% of the logits upsampling).
  const G = s.mode === "trilinear" ? 3 : 1;
  const weights = (v: string, at: string) => (G === 3 ? `\n  let ${v}A = bitcast<vec4<f32>>(tab[${at} + 1u]);\n  let ${v}B = bitcast<vec4<f32>>(tab[${at} + 2u]);` : "");
  const V = vec === 4 ? `vec4<${T}>` : T;
  return /* wgsl */ `${enableF16(T)}
struct P {
  base: u32, count: u32, lanes: u32, nblk: u32,
  per: u32, hgroups: u32, dLo: u32, bcLo: u32,
  inD: u32, inH: u32, inW: u32, outD: u32,
  outH: u32, outW: u32, colAt: u32, wAt: u32,
  xBase: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${V}>;
@group(0) @binding(2) var<storage, read> tab: array<vec4<u32>>;
${segmentsWgsl("x", 3, s.x, s.columns === "pairs" ? `vec2<${T}>` : T)}
${G === 3 ? "// Weight i (0-7) of a group's pair of weight entries.\nfn pick(a: vec4<f32>, b: vec4<f32>, i: u32) -> f32 { return select(b, a, i < 4u)[i % 4u]; }" : ""}
${mode.decl}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // x: (H group, W block) pairs, one division; y: D group; z: batch-channel.
  let t = gid.x;
  if (t >= p.lanes) { return; }
  let hgi = t / p.nblk;
  let blk = t - hgi * p.nblk;
  let hg = tab[${G}u * hgi];${weights("lh", `${G}u * hgi`)}
  let di = ${G}u * (p.hgroups + p.dLo + gid.y);
  let dg = tab[di];${weights("ld", "di")}
  let bc = p.bcLo + gid.z;
  let inPlane = bc * p.inD;
  ${mode.setup}
  for (var k = 0u; k < p.per; k++) {
    let w = (blk * p.per + k) * ${vec}u;
    if (w >= p.outW) { break; }
    ${mode.collect}
    ${planes}
      ${mode.plane}
      // Element (plane, first row of the H group, w), relative to the chunk.
      let o0 = ((bc * p.outD + dg.x + n) * p.outH + hg.x) * p.outW + w - p.base;
      ${rows}
        let o = o0 + m * p.outW;
        if (o < p.count) { out[o / ${vec}u] = ${V}(${mode.row}); }
      }
    }
  }
}`;
}

/**
 * The forward's table, as vec4<u32> entries, and where its parts start:
 * the H groups, then the D groups (each first output, count, source i0,
 * i1, and for trilinear two more entries: the weights of its outputs, f32
 * bits); from entry colAt each output column's source column, four an
 * entry, and for trilinear from entry wAt their weights. Indices and
 * weights are PyTorch's float arithmetic on the host (sourceIndex,
 * lerpWeight): the kernel computes no coordinate, whatever the GPU
 * contracts, and reads four columns' indices and weights in two loads.
 */
interface ResizeTable {
  tensor: Tensor;
  colAt: number;
  wAt: number;
  /** Whether every output's source columns are an even column and the next, in rows of even length (ResizeSpec.columns "pairs"). */
  pairs: boolean;
}

function resizeTable(
  hgroups: readonly RowGroup[],
  dgroups: readonly RowGroup[],
  [inD, inH, inW]: readonly number[],
  [outD, outH, outW]: readonly number[],
  mode: ResizeMode,
  alignCorners: boolean,
): ResizeTable {
  const trilinear = mode === "trilinear";
  const G = trilinear ? 3 : 1;
  const wEntries = Math.ceil(outW! / 4);
  const colAt = G * (hgroups.length + dgroups.length);
  const wAt = colAt + wEntries;
  const words = new Uint32Array(4 * (wAt + (trilinear ? wEntries : 0)));
  const weights = new Float32Array(words.buffer);
  // Each axis' groups, the index of its first group, and its sizes.
  const axes: [readonly RowGroup[], number, number, number][] = [
    [hgroups, 0, inH!, outH!],
    [dgroups, hgroups.length, inD!, outD!],
  ];
  for (const [groups, first, inSize, outSize] of axes) {
    const scale = axisScale(inSize, outSize, mode, alignCorners);
    groups.forEach((r, i) => {
      const at = 4 * G * (first + i);
      words.set([r.first, r.count, r.i0, r.i1], at);
      if (trilinear) for (let m = 0; m < r.count; m++) weights[at + 4 + m] = lerpWeight(r.first + m, r.i0, scale, alignCorners);
    });
  }
  const scaleW = axisScale(inW!, outW!, mode, alignCorners);
  let pairs = inW! % 2 === 0;
  for (let w = 0; w < outW!; w++) {
    const c = sourceIndex(w, inW!, scaleW, mode, alignCorners);
    words[4 * colAt + w] = c;
    if (trilinear) weights[4 * wAt + w] = lerpWeight(w, c, scaleW, alignCorners);
    // Rows of even length start on a pair, and an even c is at most inW − 2.
    pairs &&= c % 2 === 0;
  }
  return { tensor: Tensor.from(words, [words.length / 4, 4], "u32"), colAt, wAt, pairs };
}

/**
 * One dispatch: batch-channels [bcLo, bcHi) and D groups [dLo, dHi) (the
 * kernel skips rows outside its output chunk), reading the input through
 * `x` with element `base` of the input at element 0 of the bindings.
 */
interface DispatchRange {
  bcLo: number;
  bcHi: number;
  dLo: number;
  dHi: number;
  x: GPUBufferBinding[];
  base: number;
}

/** The D groups [dLo, dHi) with output planes in [lo, hi) of one batch-channel. */
function groupsIn(dgroups: readonly RowGroup[], lo: number, hi: number): { dLo: number; dHi: number } {
  let dLo = 0;
  let dHi = dgroups.length;
  while (dgroups[dLo]!.first + dgroups[dLo]!.count <= lo) dLo++;
  while (dgroups[dHi - 1]!.first >= hi) dHi--;
  return { dLo, dHi };
}

/**
 * The dispatches of an output chunk over a segmented input: the chunk's
 * batch-channels and, where that is one, its D groups with planes in the
 * chunk (all D groups otherwise).
 */
function segmentedRanges(c: OutputChunk, planeSize: number, outD: number, dgroups: readonly RowGroup[], seg: Segments): DispatchRange[] {
  const planeLo = Math.floor(c.start / planeSize);
  const planeHi = Math.ceil((c.start + c.count) / planeSize);
  const bcLo = Math.floor(planeLo / outD);
  const bcHi = Math.ceil(planeHi / outD);
  const { dLo, dHi } = bcHi - bcLo === 1 ? groupsIn(dgroups, planeLo - bcLo * outD, planeHi - bcLo * outD) : { dLo: 0, dHi: dgroups.length };
  return [{ bcLo, bcHi, dLo, dHi, x: seg.bindings, base: 0 }];
}

/**
 * The dispatches of an output chunk of a resize whose input exceeds one
 * binding, each reading one window of the input: per batch-channel, runs
 * of the D groups with planes in the chunk whose source planes fit one
 * binding. Null where one group's two source planes do not fit (the caller
 * binds every segment instead).
 */
function windowedRanges(c: OutputChunk, x: Tensor, outPlane: number, inPlane: number, inD: number, outD: number, dgroups: readonly RowGroup[]): DispatchRange[] | null {
  const planeLo = Math.floor(c.start / outPlane);
  const planeHi = Math.ceil((c.start + c.count) / outPlane);
  const ranges: DispatchRange[] = [];
  for (let bc = Math.floor(planeLo / outD); bc * outD < planeHi; bc++) {
    const { dLo, dHi } = groupsIn(dgroups, Math.max(planeLo - bc * outD, 0), Math.min(planeHi - bc * outD, outD));
    const start = (i: number) => (bc * inD + dgroups[i]!.i0) * inPlane;
    const end = (i: number) => (bc * inD + dgroups[i]!.i1 + 1) * inPlane;
    for (let lo = dLo; lo < dHi; ) {
      let window = inputWindow(x, start(lo), end(lo));
      if (!window) return null;
      // Widen the window group by group while it still fits one binding.
      let hi = lo + 1;
      for (; hi < dHi; hi++) {
        const wider = inputWindow(x, start(lo), end(hi));
        if (!wider) break;
        window = wider;
      }
      ranges.push({ bcLo: bc, bcHi: bc + 1, dLo: lo, dHi: hi, x: [window.binding], base: window.base });
      lo = hi;
    }
  }
  return ranges;
}

/**
 * How each output chunk's dispatches read the input: one binding where it
 * fits one; through windows where its D groups' source planes fit them (no
 * switch over segments in the kernel: trilinear 400×512² → 32×256² took 45
 * ms through 4 segments on lavapipe, and an input of more segments than
 * the adapter binds still resizes); else through all its segments.
 */
function inputRanges(
  op: string,
  x: Tensor,
  chunks: readonly OutputChunk[],
  [inD, inH, inW]: readonly number[],
  [outD, outH, outW]: readonly number[],
  dgroups: readonly RowGroup[],
): { ranges: DispatchRange[][]; layout: SegmentLayout } {
  const outPlane = outH! * outW!;
  if (x.byteLength > gpu().maxBindingBytes) {
    const windowed = chunks.map((c) => windowedRanges(c, x, outPlane, inH! * inW!, inD!, outD!, dgroups));
    if (windowed.every((r) => r !== null)) return { ranges: windowed as DispatchRange[][], layout: { count: 1, shift: 0 } };
  }
  const seg = inputSegments(op, x);
  return { ranges: chunks.map((c) => segmentedRanges(c, outPlane, outD!, dgroups, seg)), layout: layoutOf(seg) };
}

/**
 * Resizes the three trailing spatial axes of a [D,H,W] or [B,C,D,H,W] f32
 * or f16 tensor (the result has its dtype); `variant` forces knobs of the
 * kernel's variant.
 */
export function resize3d(x: Tensor, size: readonly [number, number, number], mode: ResizeMode, alignCorners = false, variant?: Partial<ResizeVariant>): Tensor {
  const op = `resize3d(${mode})`;
  if (!MODES.includes(mode)) fail("resize3d", `unknown mode "${String(mode)}" (expected ${MODES.join(", ")})`);
  const dtype = precisionOf(op, [x]);
  checkRank(op, x, [3, 5]);
  if (!Array.isArray(size) || size.length !== 3 || size.some((s) => !Number.isInteger(s) || s < 1)) {
    fail(op, `size must be three positive integers, got [${String(size)}] for input ${shapeStr(x.shape)}`);
  }
  if (alignCorners && mode !== "trilinear") fail(op, `align_corners only applies to trilinear (input ${shapeStr(x.shape)})`);
  const [inD, inH, inW] = x.shape.slice(-3) as [number, number, number];
  if (inD < 1 || inH < 1 || inW < 1) fail(op, `cannot resize an empty input ${shapeStr(x.shape)} to ${shapeStr(size)}`);
  const [outD, outH, outW] = size;
  const outShape = [...x.shape.slice(0, -3), outD, outH, outW];
  const bcount = x.shape.slice(0, -3).reduce((a, b) => a * b, 1);
  const hgroups = rowGroups(inH, outH, axisScale(inH, outH, mode, alignCorners), mode, alignCorners);
  const dgroups = rowGroups(inD, outD, axisScale(inD, outD, mode, alignCorners), mode, alignCorners);
  const v = chooseResize(deviceProfile(), bcount * dgroups.length * hgroups.length, outW, variant);
  // vec4 stores need rows that start on a whole vec4.
  const vec = outW % 4 === 0 ? v.vec : 1;
  const nblk = Math.ceil(outW / (vec * v.per));
  const lanes = nblk * hgroups.length;
  const xGroups = Math.ceil(lanes / WG);
  const maxDim = gpu().maxWorkgroupsPerDim;
  if (xGroups > maxDim || dgroups.length > maxDim || bcount > maxDim) {
    fail(op, `output ${shapeStr(outShape)} needs a grid of ${xGroups}x${dgroups.length}x${bcount} workgroups; this adapter allows ${maxDim} a dimension`);
  }
  const out = Tensor.empty(outShape, dtype);
  if (out.size === 0) return out;

  const g = gpu();
  const chunks = outputChunks(out, outW);
  let input: ReturnType<typeof inputRanges>;
  try {
    input = inputRanges(op, x, chunks, [inD, inH, inW], size, dgroups);
  } catch (e) {
    out.dispose();
    throw e;
  }
  const { ranges, layout } = input;
  const table = resizeTable(hgroups, dgroups, [inD, inH, inW], size, mode, alignCorners);
  const spec: ResizeSpec = {
    mode,
    alignCorners,
    vec,
    dtype,
    x: layout,
    columns: mode !== "trilinear" ? "each" : outW > inW ? "walk" : layout.count === 1 && table.pairs ? "pairs" : "each",
    sharedD: dgroups.some((r) => r.count > 1),
    sharedH: hgroups.some((r) => r.count > 1),
  };
  const pipe = variantPipeline("resize3d", spec, resizeWgsl);
  chunks.forEach((c, i) => {
    for (const r of ranges[i]!) {
      const params = new Params()
        .u32(c.start).u32(c.count).u32(lanes).u32(nblk)
        .u32(v.per).u32(hgroups.length).u32(r.dLo).u32(r.bcLo)
        .u32(inD).u32(inH).u32(inW).u32(outD)
        .u32(outH).u32(outW).u32(table.colAt).u32(table.wAt)
        .u32(r.base);
      g.dispatch(pipe, [c.binding, { buffer: table.tensor.buffer }, ...r.x], params.bytes(), [xGroups, r.dHi - r.dLo, r.bcHi - r.bcLo]);
    }
  });
  // The table's buffer is referenced by the recorded dispatches; the pool
  // only recycles it for later commands, which run after these.
  table.tensor.dispose();
  return out;
}

// ---------------------------------------------------------------------------
// Backward of resize3d: trilinear (either align_corners),
// nearest and nearest-exact, without float atomics.
//
// The forward is separable: out = R_D ⊗ R_H ⊗ R_W applied to x, where each
// R is a [out, in] interpolation matrix with at most two non-zeros per row.
// So dx = R_Dᵀ ⊗ R_Hᵀ ⊗ R_Wᵀ applied to dy, one axis at a time. Each pass is
// a gather: input index i along the axis sums the outputs o that sample it,
//   dx_axis[.., i, ..] = Σ_{o ∈ [lo_i, hi_i)} r(o, i) · g[.., o, ..],
// where the source index of o is monotone in o, so the outputs touching i
// form one contiguous range (and a run of inputs, one contiguous run of
// outputs, which the kernel walks once). The ranges come from a small host
// table; the weights are recomputed in the kernel with PyTorch's f32
// formulas, as the forward's table holds them (to f32 rounding where the
// GPU contracts them to an fma). Each range is widened by one output on
// both sides and the kernel's taps decide: if the GPU rounds a source
// coordinate differently from the host, the walk still sees every output.
//
// Passes run in the order that minimises the work (the axis that shrinks
// the most first); axes whose size is unchanged are the identity and are
// skipped.

/** Shortest input segment per invocation (except at a line's end): the walk shares each loaded output between neighbouring inputs. */
const MIN_SEG = 8;

/** The taps of output o along one axis, as the forward computes them (WGSL). */
function tapsWgsl(mode: ResizeMode, alignCorners: boolean): string {
  if (mode === "trilinear") {
    const src = alignCorners ? "p.scale * f32(o)" : "max(p.scale * (f32(o) + 0.5) - 0.5, 0.0)";
    return /* wgsl */ `
// out = x[i0] + l·(x[i1] − x[i0]): weight 1 − l on i0 and l on i1 (both on i0 when they coincide).
fn taps(o: u32) -> Taps {
  let s = ${src};
  let i0 = min(u32(s), p.Lin - 1u);
  let l = s - f32(i0);
  return Taps(i0, min(i0 + 1u, p.Lin - 1u), 1.0 - l, l);
}`;
  }
  const src = mode === "nearest" ? "floor(f32(o) * p.scale)" : "floor((f32(o) + 0.5) * p.scale)";
  return /* wgsl */ `
fn taps(o: u32) -> Taps {
  let i0 = min(u32(${src}), p.Lin - 1u);
  return Taps(i0, i0, 1.0, 0.0);
}`;
}

// One invocation owns a segment [iS, iE) of inputs along the axis for
// LINES consecutive (outer a, inner c) lines (line l: a = aLo + l / inner,
// c = l % inner), and walks the outputs that touch it once each: every dy
// value is loaded once per segment (not once per input it feeds), and the
// tap weights and the walk's tests are shared by the lines (one line an
// invocation spent most of its time on them on lavapipe). Source indices
// are monotone in o, so the two accumulators a0 (input cur) and a1 (cur +
// 1), one lane per line, suffice: once the walk's i0 passes cur, input cur
// is complete. Lines past the last repeat the last one (the same loads and
// the same stores).
// With `vec` 4 (inner a multiple of 4) the four lines are four neighbouring
// elements, loaded and stored as one vec4.
const LINES = 4;
const LANES = ["x", "y", "z", "w"] as const;

function passWgsl(mode: ResizeMode, alignCorners: boolean, seg: SegmentLayout, vec: 1 | 4): string {
  const each = (f: (c: string) => string) => LANES.map(f).join("\n  ");
  const store = vec === 4 ? "if (k.x < p.count) { out[k.x / 4u] = v; }" : each((c) => `if (k.${c} < p.count) { out[k.${c}] = v.${c}; }`);
  const load = vec === 4 ? "g_at(idx.x / 4u)" : "vec4<f32>(g_at(idx.x), g_at(idx.y), g_at(idx.z), g_at(idx.w))";
  return /* wgsl */ `
struct P { base: u32, count: u32, aLo: u32, threads: u32, inner: u32, Lout: u32, Lin: u32, segLen: u32, groups: u32, lines: u32, scale: f32 }
struct Taps { i0: u32, i1: u32, w0: f32, w1: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${vec === 4 ? "vec4<f32>" : "f32"}>;
@group(0) @binding(2) var<storage, read> ranges: array<vec2<u32>>;
${segmentsWgsl("g", 3, seg, vec === 4 ? "vec4<f32>" : "f32")}
${tapsWgsl(mode, alignCorners)}
// Each line's first element of the result.
var<private> obase: vec4<u32>;
// Output chunking: only elements in [p.base, p.base + p.count) are written (u32 wrap-around makes one test).
fn store(i: u32, v: vec4<f32>) {
  let k = obase + vec4<u32>(i * p.inner - p.base);
  ${store}
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${WG}u;
  if (t >= p.threads) { return; }
  let l0 = (t % p.groups) * ${LINES}u;
  let sg = t / p.groups;
  let iS = sg * p.segLen;
  let iE = min(iS + p.segLen, p.Lin);
  let lo = ranges[iS].x;
  let hi = ranges[iE - 1u].y;
  let l = min(vec4<u32>(l0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.lines - 1u));
  let a = vec4<u32>(p.aLo) + l / vec4<u32>(p.inner);
  let c = l % vec4<u32>(p.inner);
  obase = a * p.Lin * p.inner + c;
  var idx = (a * p.Lout + lo) * p.inner + c;
  var cur = iS;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  for (var o = lo; o < hi; o++) {
    let q = taps(o);
    while (cur < q.i0 && cur < iE) {
      store(cur, a0);
      a0 = a1;
      a1 = vec4<f32>(0.0);
      cur++;
    }
    if (cur == iE) { break; }
    // Now q.i0 <= cur and q.i1 <= cur + 1; taps before the segment are dropped.
    let v = ${load};
    if (q.i0 == cur) { a0 = fma(vec4<f32>(q.w0), v, a0); }
    if (q.i1 == cur) { a0 = fma(vec4<f32>(q.w1), v, a0); } else if (q.i1 == cur + 1u) { a1 = fma(vec4<f32>(q.w1), v, a1); }
    idx += vec4<u32>(p.inner);
  }
  for (; cur < iE; cur++) {
    store(cur, a0);
    a0 = a1;
    a1 = vec4<f32>(0.0);
  }
}`;
}

/**
 * For each input index i, the outputs [lo, hi) whose weight on i may be
 * non-zero: source index in [i−1, i] (trilinear: o blends i0 and i0+1) or
 * equal to i (nearest), widened by one on each side.
 */
function rangeTable(inSize: number, outSize: number, scale: number, mode: ResizeMode, alignCorners: boolean): Uint32Array {
  const src = Array.from({ length: outSize }, (_, o) => sourceIndex(o, inSize, scale, mode, alignCorners));
  const reach = mode === "trilinear" ? 1 : 0;
  const table = new Uint32Array(2 * inSize);
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < inSize; i++) {
    while (lo < outSize && src[lo]! < i - reach) lo++;
    if (hi < lo) hi = lo;
    while (hi < outSize && src[hi]! <= i) hi++;
    table[2 * i] = Math.max(0, lo - 1);
    table[2 * i + 1] = Math.min(outSize, hi + 1);
  }
  return table;
}

interface Pass {
  /** Axis 0..2 of the spatial dims. */
  axis: number;
  inSize: number;
  outSize: number;
}

/** Pass order with the least work: cost of a pass ≈ result elements × (terms per element + overhead). */
function planPasses(inDims: readonly number[], outDims: readonly number[]): Pass[] {
  const axes = [0, 1, 2].filter((a) => inDims[a] !== outDims[a]);
  const orders: number[][] = [[]];
  for (let k = 0; k < axes.length; k++) {
    const next: number[][] = [];
    for (const o of orders) for (const a of axes) if (!o.includes(a)) next.push([...o, a]);
    orders.splice(0, orders.length, ...next);
  }
  let best: number[] = [];
  let bestCost = Infinity;
  for (const order of orders) {
    const dims = [...outDims];
    let cost = 0;
    for (const a of order) {
      const terms = outDims[a]! / inDims[a]! + 3;
      dims[a] = inDims[a]!;
      cost += numel(dims) * terms;
    }
    if (cost < bestCost) {
      bestCost = cost;
      best = order;
    }
  }
  return best.map((a) => ({ axis: a, inSize: inDims[a]!, outSize: outDims[a]! }));
}

/** One gather pass along `pass.axis` of g [lead, d0, d1, d2] (spatial dims `dims`). */
function runPass(op: string, g: Tensor, lead: number, dims: readonly number[], pass: Pass, mode: ResizeMode, alignCorners: boolean): Tensor {
  const gp = gpu();
  const resDims = dims.map((d, a) => (a === pass.axis ? pass.inSize : d));
  const out = Tensor.empty([lead, ...resDims]);
  const inner = numel(dims.slice(pass.axis + 1));
  const outer = lead * numel(dims.slice(0, pass.axis));
  const Lin = pass.inSize;
  const scale = axisScale(Lin, pass.outSize, mode, alignCorners);
  const table = Tensor.from(rangeTable(Lin, pass.outSize, scale, mode, alignCorners), [Lin, 2], "u32");
  // Four lines an invocation are four neighbouring elements where inner is a multiple of 4.
  const vec: 1 | 4 = inner % 4 === 0 ? 4 : 1;
  const seg = vec === 4 ? vec4Segments(op, g) : inputSegments(op, g);
  const pipe = variantPipeline("resize3dBackward", { mode, alignCorners, g: layoutOf(seg), vec }, (s) => passWgsl(s.mode, s.alignCorners, s.g, s.vec));
  const lineLen = Lin * inner;
  for (const c of outputChunks(out, vec)) {
    // Lines (outer index a) that this chunk touches; segments split lines when there are too few of them.
    const aLo = Math.floor(c.start / lineLen);
    const aHi = Math.min(outer, Math.ceil((c.start + c.count) / lineLen));
    const lines = (aHi - aLo) * inner;
    const groups = Math.ceil(lines / LINES);
    const nseg = Math.min(Math.ceil(Lin / MIN_SEG), Math.max(1, Math.ceil(TARGET_THREADS / groups)));
    const segLen = Math.ceil(Lin / nseg);
    const nsegs = Math.ceil(Lin / segLen);
    const threads = groups * nsegs;
    const params = new Params()
      .u32(c.start).u32(c.count).u32(aLo).u32(threads)
      .u32(inner).u32(pass.outSize).u32(Lin).u32(segLen)
      .u32(groups).u32(lines).f32(scale);
    gp.dispatch(pipe, [c.binding, { buffer: table.buffer, offset: 0, size: table.byteLength }, ...seg.bindings], params.bytes(), gp.grid(Math.ceil(threads / WG)));
  }
  // Recorded dispatches hold the buffer; the pool reuses it only for later commands.
  table.dispose();
  return out;
}

/**
 * dL/dx of y = resize3d(x, size, mode, alignCorners) given dy = dL/dy
 * ([…lead, outD, outH, outW]); `inputShape` is x's shape ([D, H, W] or
 * [B, C, D, H, W], same leading axes as dy); f32 only.
 */
export function resize3dBackward(dy: Tensor, inputShape: readonly number[], mode: ResizeMode, alignCorners = false): Tensor {
  const op = `resize3dBackward(${mode})`;
  if (!MODES.includes(mode)) fail("resize3dBackward", `unknown mode "${String(mode)}" (expected ${MODES.join(", ")})`);
  checkInputs(op, [dy]);
  checkRank(op, dy, [3, 5], "dy");
  if (alignCorners && mode !== "trilinear") fail(op, `align_corners only applies to trilinear (dy ${shapeStr(dy.shape)})`);
  const rank = dy.rank;
  if (
    !Array.isArray(inputShape) ||
    inputShape.length !== rank ||
    inputShape.some((d, a) => !Number.isInteger(d) || d < 1 || (a < rank - 3 && d !== dy.shape[a]))
  ) {
    fail(op, `input shape ${JSON.stringify(inputShape)} must be positive integers with dy's rank and leading axes (dy ${shapeStr(dy.shape)})`);
  }
  if (dy.size === 0) fail(op, `empty dy ${shapeStr(dy.shape)}`);
  gpu().checkAlive(op);
  const inDims = inputShape.slice(-3);
  const outDims = dy.shape.slice(-3);
  const lead = numel(dy.shape.slice(0, -3));
  const passes = planPasses(inDims, outDims);
  if (passes.length === 0) {
    // Same size: the forward is the identity.
    const copy = Tensor.empty(inputShape);
    gpu().copy(dy.buffer, 0, copy.buffer, 0, Math.ceil(dy.byteLength / 4) * 4);
    return copy;
  }
  let g = dy;
  const dims = [...outDims];
  for (const pass of passes) {
    const next = runPass(op, g, lead, dims, pass, mode, alignCorners);
    if (g !== dy) g.dispose();
    g = next;
    dims[pass.axis] = pass.inSize;
  }
  const out = g.reshape(inputShape);
  g.dispose();
  return out;
}

export interface ResizeAttrs {
  size: readonly [number, number, number];
  mode: ResizeMode;
  alignCorners: boolean;
}

/** resize3d as a differentiable op: its backward needs only the input's shape. */
export const resize3dOp = defineOp<[Tensor], ResizeAttrs>({
  name: ({ mode }) => `resize3d(${mode})`,
  forward: ([x], { size, mode, alignCorners }) => resize3d(x, size, mode, alignCorners),
  backward: (_saved, g, { attrs: { mode, alignCorners }, shapes: [s] }) => [resize3dBackward(g, s!, mode, alignCorners)],
});
