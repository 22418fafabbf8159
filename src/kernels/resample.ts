// 3-D resizing with PyTorch `F.interpolate` semantics (trilinear with either
// align_corners, nearest, nearest-exact) for [D, H, W] or [B, C, D, H, W].
//
// Why the kernel looks like this: on lavapipe every buffer load is expensive,
// so one invocation produces many outputs from few loads. An invocation owns
// one output plane (b, c, d), one "row group" of output rows h that share
// their source rows (same h0/h1, or the same nearest source row), and one
// segment of W. It walks W keeping the last two source columns in registers
// (4 values each: planes d0/d1 × rows h0/h1), so each source value is loaded
// once per invocation, and every loaded column feeds all rows of the group.
// Row groups are computed on the host (small table), splitting long groups
// so that per-row weights fit a private array.
//
// Index arithmetic mimics PyTorch's CPU kernels (float scale `in/out`, or
// `(in-1)/(out-1)` with align_corners; nearest: floor(dst*scale); exact:
// floor((dst+0.5)*scale); both clamped to in-1) so nearest results match
// bit for bit and linear weights to f32 rounding.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { inputSegments, outputChunks, segmentsWgsl, type Segments } from "./binding.js";
import { checkInputs, checkRank, fail } from "./check.js";
import { Params } from "./params.js";

export type ResizeMode = "trilinear" | "nearest" | "nearest-exact";

const MODES: readonly ResizeMode[] = ["trilinear", "nearest", "nearest-exact"];
/** Rows per group (private array length in the kernel). */
const MAXG = 8;
const WG = 64;
/** Aim for at least this many invocations per dispatch (2 cores × SIMD lanes × slack). */
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
    let i0: number;
    let i1: number;
    if (mode === "trilinear") {
      i0 = Math.min(Math.floor(linearSource(o, scale, alignCorners)), inSize - 1);
      i1 = Math.min(i0 + 1, inSize - 1);
    } else {
      i0 = i1 = nearestSource(o, inSize, scale, mode);
    }
    const last = groups[groups.length - 1];
    if (last && last.i0 === i0 && last.count < MAXG) last.count++;
    else groups.push({ first: o, count: 1, i0, i1 });
  }
  return groups;
}

const paramsWgsl = (vec: boolean) => /* wgsl */ `
struct P {
  base: u32, count: u32, planeLo: u32, planes: u32,
  groups: u32, nseg: u32, wseg: u32, inD: u32,
  inH: u32, inW: u32, outD: u32, outH: u32,
  outW: u32, scaleD: f32, scaleW: f32, scaleH: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${vec ? "vec4<f32>" : "f32"}>;
@group(0) @binding(2) var<storage, read> rg: array<vec4<u32>>;
`;

/** Invocation → (plane, row group, W segment); shared prologue of both kernels. */
const PROLOGUE_WGSL = /* wgsl */ `
  let t = gid.x + gid.y * nwg.x * ${WG}u;
  let seg = t % p.nseg;
  let r = t / p.nseg;
  let gi = r % p.groups;
  let plane = p.planeLo + r / p.groups;
  if (plane >= p.planes) { return; }
  let d = plane % p.outD;
  let bc = plane / p.outD;
  let g = rg[gi];
  let ws = seg * p.wseg;
  let we = min(ws + p.wseg, p.outW);
  // First element of each output row of the group, relative to this chunk
  // (chunks hold whole rows; rows of other chunks are skipped).
  var orow: array<u32, ${MAXG}>;
  var live: array<bool, ${MAXG}>;
  for (var m = 0u; m < g.y; m++) {
    let row = (plane * p.outH + g.x + m) * p.outW;
    live[m] = row >= p.base && row < p.base + p.count;
    orow[m] = row - p.base;
  }
  let inPlane = bc * p.inD;
`;

// The output loop over W. `value(w)` sets f0 (and f1) for column w through
// the walk `colW`, whose state is private (per invocation). With vec, W is a
// multiple of 4 and each row store writes four outputs at once (stores cost
// as much as loads on lavapipe).
function storeLoop(vec: boolean, value: (w: string) => string, rowValue: (m: string) => string): string {
  if (!vec) {
    return `for (var w = ws; w < we; w++) {
    ${value("w")}
    for (var m = 0u; m < g.y; m++) {
      if (live[m]) { out[orow[m] + w] = ${rowValue("m")}; }
    }
  }`;
  }
  // One call site of the walk (a loop over the quad): every x_at call site
  // is inlined with its segment switch, and lavapipe's compile time grows
  // with each copy.
  return `for (var w = ws; w < we; w += 4u) {
    var q0: vec4<f32>; var q1: vec4<f32>;
    for (var k = 0u; k < 4u; k++) {
      ${value("w + k")} q0[k] = f0; q1[k] = f1;
    }
    for (var m = 0u; m < g.y; m++) {
      if (live[m]) { out[(orow[m] + w) / 4u] = ${rowValue("m").replaceAll("f0", "q0").replaceAll("f1", "q1")}; }
    }
  }`;
}

function linearWgsl(seg: Segments, alignCorners: boolean, vec: boolean): string {
  const src = (v: string, s: string) => (alignCorners ? `${s} * f32(${v})` : `max(${s} * (f32(${v}) + 0.5) - 0.5, 0.0)`);
  return /* wgsl */ `
${paramsWgsl(vec)}
${segmentsWgsl("x", 3, seg)}
var<private> cur: i32 = -2;
// Source values at columns c (va) and c+1 (vb) of the rows (d0,h0), (d0,h1), (d1,h0), (d1,h1).
var<private> va: array<f32, 4>;
var<private> vb: array<f32, 4>;
var<private> rows: array<u32, 4>;
var<private> ld: f32;
// Output column w blended over W and D: (value at row h0, value at row h1).
fn colW(w: u32) -> vec2<f32> {
  let sw = ${src("w", "p.scaleW")};
  let c = min(u32(sw), p.inW - 1u);
  let lw = sw - f32(c);
  if (i32(c) != cur) {
    let c1 = min(c + 1u, p.inW - 1u);
    // Moving one column right reuses the old right column; loads happen in
    // one loop so that x_at is instantiated once.
    var first = 0u;
    if (i32(c) == cur + 1) { va = vb; first = 4u; }
    for (var j = first; j < 8u; j++) {
      let v = x_at(rows[j & 3u] + select(c, c1, j >= 4u));
      if (j < 4u) { va[j] = v; } else { vb[j - 4u] = v; }
    }
    cur = i32(c);
  }
  let e00 = va[0] + lw * (vb[0] - va[0]);
  let e01 = va[1] + lw * (vb[1] - va[1]);
  let e10 = va[2] + lw * (vb[2] - va[2]);
  let e11 = va[3] + lw * (vb[3] - va[3]);
  return vec2<f32>(e00 + ld * (e10 - e00), e01 + ld * (e11 - e01));
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${PROLOGUE_WGSL}
  let sd = ${src("d", "p.scaleD")};
  let d0 = min(u32(sd), p.inD - 1u);
  let d1 = min(d0 + 1u, p.inD - 1u);
  ld = sd - f32(d0);
  var lh: array<f32, ${MAXG}>;
  for (var m = 0u; m < g.y; m++) {
    lh[m] = ${src("g.x + m", "p.scaleH")} - f32(g.z);
  }
  rows[0] = ((inPlane + d0) * p.inH + g.z) * p.inW;
  rows[1] = ((inPlane + d0) * p.inH + g.w) * p.inW;
  rows[2] = ((inPlane + d1) * p.inH + g.z) * p.inW;
  rows[3] = ((inPlane + d1) * p.inH + g.w) * p.inW;
  var f0: f32; var f1: f32;
  ${storeLoop(vec, (w) => `{ let f = colW(${w}); f0 = f.x; f1 = f.y; }`, (m) => `f0 + lh[${m}] * (f1 - f0)`)}
}`;
}

function nearestWgsl(seg: Segments, exact: boolean, vec: boolean): string {
  const src = (v: string, s: string) => (exact ? `u32(floor((f32(${v}) + 0.5) * ${s}))` : `u32(floor(f32(${v}) * ${s}))`);
  return /* wgsl */ `
${paramsWgsl(vec)}
${segmentsWgsl("x", 3, seg)}
var<private> cur: u32 = 0xffffffffu;
var<private> v: f32;
var<private> row: u32;
fn colW(w: u32) -> f32 {
  let c = min(${src("w", "p.scaleW")}, p.inW - 1u);
  if (c != cur) { v = x_at(row + c); cur = c; }
  return v;
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${PROLOGUE_WGSL}
  let sd = min(${src("d", "p.scaleD")}, p.inD - 1u);
  row = ((inPlane + sd) * p.inH + g.z) * p.inW;
  // Every row of a nearest group has the same source row: one load, many stores.
  var f0: f32; var f1: f32;
  ${storeLoop(vec, (w) => `f0 = colW(${w});`, () => `f0`)}
}`;
}

/** Resizes the three trailing spatial axes of a [D,H,W] or [B,C,D,H,W] f32 tensor. */
export function resize3d(x: Tensor, size: readonly [number, number, number], mode: ResizeMode, alignCorners = false): Tensor {
  const op = `resize3d(${mode})`;
  if (!MODES.includes(mode)) fail("resize3d", `unknown mode "${String(mode)}" (expected ${MODES.join(", ")})`);
  checkInputs(op, [x]);
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
  const out = Tensor.empty(outShape);
  if (out.size === 0) return out;

  const scaleD = axisScale(inD, outD, mode, alignCorners);
  const scaleH = axisScale(inH, outH, mode, alignCorners);
  const scaleW = axisScale(inW, outW, mode, alignCorners);
  const groups = rowGroups(inH, outH, scaleH, mode, alignCorners);

  const g = gpu();
  const seg = inputSegments(op, x);
  const vec = outW % 4 === 0;
  const key = `resize3d:${mode}:${alignCorners}:${vec}:${seg.key}`;
  const pipe = g.pipeline(key, () =>
    mode === "trilinear" ? linearWgsl(seg, alignCorners, vec) : nearestWgsl(seg, mode === "nearest-exact", vec),
  );
  const table = new Uint32Array(groups.length * 4);
  groups.forEach((r, i) => table.set([r.first, r.count, r.i0, r.i1], i * 4));
  const tableT = Tensor.from(table, [groups.length, 4], "u32");

  const planes = bcount * outD;
  const perPlane = groups.length;
  for (const c of outputChunks(out, outW)) {
    // Planes touched by this chunk's rows; invocations cover only those.
    const rowLo = c.start / outW;
    const rowHi = (c.start + c.count) / outW;
    const planeLo = Math.floor(rowLo / outH);
    const planeHi = Math.min(planes, Math.ceil(rowHi / outH));
    const nPlanes = planeHi - planeLo;
    const nseg = Math.max(1, Math.min(Math.ceil(outW / 16), Math.ceil(TARGET_THREADS / (nPlanes * perPlane))));
    // W segments of whole quads on the vec4 path.
    const wseg = vec ? Math.ceil(outW / nseg / 4) * 4 : Math.ceil(outW / nseg);
    const params = new Params()
      .u32(c.start).u32(c.count).u32(planeLo).u32(planeHi)
      .u32(perPlane).u32(nseg).u32(wseg).u32(inD)
      .u32(inH).u32(inW).u32(outD).u32(outH)
      .u32(outW).f32(scaleD).f32(scaleW).f32(scaleH);
    const threads = nPlanes * perPlane * nseg;
    g.dispatch(pipe, [c.binding, { buffer: tableT.buffer }, ...seg.bindings], params.bytes(), g.grid(Math.ceil(threads / WG)));
  }
  // The table's buffer is referenced by the recorded dispatches; the pool
  // only recycles it for later commands, which run after these.
  tableT.dispose();
  return out;
}
