// The GEMM core shared by conv3d, convTranspose3d and patchEmbed:
//   C[m, n] = Σ_k A(k, m) · B(k, n)
// where each op supplies WGSL loaders for A and B (a vec4 of 4 consecutive
// m or n at one k, so a loader may be one vec4 load or an im2col gather) and
// the output index of C[m, n] as row_off(m) + col_off(n), which scatters C
// into the op's output layout; bias is added per row or per column.
//
// Why this shape: on lavapipe a buffer load costs ~100 cycles, so the kernel
// is built around few loads per FMA. Each invocation owns 4 columns n (one
// vec4 of B) and TM = 4·TMQ rows m that are the same for the whole
// workgroup. With `subgroups`, lane l loads the vec4 A(k, m0+4l..) and the
// others read it with subgroupBroadcast (a register shuffle), so one k step
// costs 2 loads for 16·TMQ FMAs; without subgroups every lane loads the TMQ
// workgroup-uniform A vectors itself (still cheap: uniform addresses).
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { reduce } from "./reduce.js";
import { inputSegments, outputChunks, segmentsWgsl, type SegmentLayout } from "./binding.js";
import { checkInputs, fail } from "./check.js";
import { cast } from "./layout.js";
import { Params } from "./params.js";
import { enableF16, type Precision } from "./precision.js";
import { deviceProfile, laneGroups, tunedVariant, variantName, variantPipeline, type DeviceProfile } from "./profile.js";

/** Invocations per workgroup, laid out along n. */
const WG = 64;

/**
 * An op's WGSL around the GEMM core. Loaders return f32 whatever the
 * storage precision (the sources' accessors convert); the sizes M, N, K
 * are the uniforms p.GM, p.GN, p.GK, so that a batch size (which only
 * scales M or N, or K for a weight gradient) compiles no new pipeline.
 */
export interface GemmLoaders {
  /** Input storage bindings from 2 (0 is the uniform `p`, 1 the output `out`) and helper functions. */
  decls: string;
  /** Body of `fn load_a(k: u32, m: u32) -> vec4<f32>`: A(k, m..m+3), any finite value where m+i ≥ M. */
  loadA: string;
  /** Body of `fn load_b(k: u32, n: u32) -> vec4<f32>`: B(k, n..n+3), any finite value where n+i ≥ N. */
  loadB: string;
  /**
   * C is stored at out[row_off(m) + col_off(n) - p.base] (the output index is
   * separable, which keeps the unrolled store phase small enough to compile
   * fast): bodies of `fn row_off(m: u32) -> u32` and `fn col_off(n: u32) -> u32`.
   */
  rowOff: string;
  colOff: string;
  /** Bias added per row or per column, if any: body of `fn bias_row(m: u32) -> f32` / `fn bias_col(n: u32) -> f32`. */
  biasRow?: string;
  biasCol?: string;
}

/** What every op's GEMM spec holds: its storage precision and whether it adds a bias. */
export interface GemmSpec {
  dtype: Precision;
  bias: boolean;
}

/**
 * An op's GEMM: `spec` is plain data holding everything its loaders' WGSL
 * depends on (per-sample geometry, source layouts, precision, bias), and
 * `loaders` builds that WGSL from the spec alone (a module-level function,
 * never a closure over the call), so that the spec with the variant keys
 * the pipeline.
 */
export interface GemmOp<S extends GemmSpec> {
  /** The op's name: part of the pipeline key, and named in errors. */
  kernel: string;
  spec: S;
  loaders: (spec: S) => GemmLoaders;
}

export interface Dims {
  M: number;
  N: number;
  K: number;
}

/**
 * The GEMM's variant: TM = 4·tmq rows per workgroup, tmq A vectors per k
 * step; with `subgroups`, lanes 0..tmq-1 of each subgroup load them and
 * broadcast (so tmq may be at most the device's smallest subgroup).
 */
export interface GemmVariant {
  subgroups: boolean;
  tmq: number;
}

/** Throws unless the device runs `v`. */
function checkGemmVariant(v: GemmVariant, p: DeviceProfile): void {
  const ok = Number.isInteger(v.tmq) && v.tmq >= 1 && v.tmq <= 16 && (!v.subgroups || laneGroups(p).includes(v.tmq));
  if (!ok) fail("gemm", `variant ${variantName(v)} does not run on this device (tmq 1-16; with subgroups a power of two from 4 to the smallest subgroup, ${p.subgroups?.min ?? "none"})`);
}

/**
 * The forced variant, else the tuned winner of the GEMM's bucket (given
 * its dims) at `precision`, else subgroups when every subgroup has at
 * least 4 lanes (tmq = min(8, lanes)), else uniform loads.
 */
export function chooseGemmVariant(p: DeviceProfile = deviceProfile(), dims?: Dims, precision: Precision = "f32"): GemmVariant {
  if (p.force.gemm) return p.force.gemm;
  const tuned = dims && tunedVariant<GemmVariant>(p, "gemm", [dims.M, dims.N, dims.K], precision);
  if (tuned) return tuned;
  const groups = laneGroups(p, 8);
  const tmq = groups[groups.length - 1];
  return tmq !== undefined ? { subgroups: true, tmq } : { subgroups: false, tmq: 4 };
}

/** Every variant the chooser can return on this device: uniform loads, and subgroups at each lane group up to 8. */
export function gemmVariants(p: DeviceProfile = deviceProfile()): GemmVariant[] {
  return [{ subgroups: false, tmq: 4 }, ...laneGroups(p, 8).map((tmq) => ({ subgroups: true, tmq }))];
}

/** The variants the tuner times for a GEMM: every one this device runs, the heuristic's first. */
export function gemmCandidates(p: DeviceProfile = deviceProfile()): GemmVariant[] {
  const first = chooseGemmVariant({ ...p, force: {}, tuned: {} });
  return [first, ...gemmVariants(p).filter((v) => JSON.stringify(v) !== JSON.stringify(first))];
}

/**
 * The value keying one GEMM pipeline: the op, its spec, the precision of
 * the buffer the launch writes (f32 partial sums when K is split), the
 * variant. Everything the WGSL depends on, and nothing else.
 */
interface GemmPipelineSpec<S extends GemmSpec> extends GemmVariant {
  op: string;
  spec: S;
  out: Precision;
}

function wgsl(k: GemmLoaders, v: GemmPipelineSpec<GemmSpec>): string {
  const tm = 4 * v.tmq;
  let step = "let bv = load_b(k, n);\n";
  if (v.subgroups) step += `    let av = load_a(k, m0 + 4u * (sl % ${v.tmq}u));\n`;
  let decl = "";
  let store = "";
  for (let q = 0; q < v.tmq; q++) {
    step += v.subgroups ? `    let a${q} = subgroupBroadcast(av, ${q}u);\n` : `    let a${q} = load_a(k, m0 + ${4 * q}u);\n`;
    for (let r = 0; r < 4; r++) {
      const i = 4 * q + r;
      decl += `  var acc${i} = vec4<f32>(0.0);\n`;
      step += `    acc${i} = fma(vec4<f32>(a${q}[${r}]), bv, acc${i});\n`;
      store += `  if (m0 + ${i}u < p.GM) { store_row(row_off(m0 + ${i}u), acc${i}${k.biasRow ? ` + bias_row(m0 + ${i}u)` : ""}${k.biasCol ? " + cb" : ""}, cols, valid, split); }\n`;
    }
  }
  return /* wgsl */ `${enableF16([v.spec.dtype, v.out])}${v.subgroups ? "enable subgroups;" : ""}
// The sizes M, N, K are uniforms (GM, GN, GK); the op's per-sample
// geometry is baked into its loaders (its spec), so their divisions by it
// become multiplications. The k loop runs to a uniform bound (all of K, or
// a split's share): with a constant bound LLVM unrolled it and the GEMM got
// 2-3x slower on lavapipe.
// A split launch (p.split = 1) gives each z a range of k and its own copy of
// the output, [z, count], that the caller sums.
struct P { base: u32, count: u32, kPer: u32, split: u32, GM: u32, GN: u32, GK: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${v.out}>;
${k.decls}
fn load_a(k: u32, m: u32) -> vec4<f32> { ${k.loadA} }
fn load_b(k: u32, n: u32) -> vec4<f32> { ${k.loadB} }
fn row_off(m: u32) -> u32 { ${k.rowOff} }
fn col_off(n: u32) -> u32 { ${k.colOff} }
${k.biasRow ? `fn bias_row(m: u32) -> f32 { ${k.biasRow} }` : ""}
${k.biasCol ? `fn bias_col(n: u32) -> f32 { ${k.biasCol} }` : ""}
// Output chunking: only elements in [p.base, p.base + p.count) are written (u32 wrap-around makes one test).
// Sums are f32; an f16 output is rounded once, here.
fn store_row(r: u32, v: vec4<f32>, cols: vec4<u32>, valid: vec4<bool>, copy: u32) {
  for (var j = 0u; j < 4u; j++) {
    let o = r + cols[j] - p.base;
    if (valid[j] && o < p.count) { out[copy * p.count + o] = ${v.out}(v[j]); }
  }
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32${
    v.subgroups ? ", @builtin(subgroup_invocation_id) sl: u32" : ""
  }) {
  // No early return: every lane takes part in the broadcasts; out-of-range
  // lanes compute on harmless values and skip their stores.
  // Column blocks beyond the per-dimension grid limit continue along z,
  // unless z numbers the splits of K.
  let split = select(0u, wg.z, p.split != 0u);
  let n = ((wg.x + select(wg.z, 0u, p.split != 0u) * nwg.x) * ${WG}u + li) * 4u;
  let m0 = wg.y * ${tm}u;
  let k0 = split * p.kPer;
  let k1 = min(p.GK, k0 + p.kPer);
${decl}
  for (var k = k0; k < k1; k++) {
    ${step}
  }
  let nn = vec4<u32>(n, n + 1u, n + 2u, n + 3u);
  let valid = nn < vec4<u32>(p.GN);
  let nc = min(nn, vec4<u32>(p.GN - 1u));
  let cols = vec4<u32>(col_off(nc.x), col_off(nc.y), col_off(nc.z), col_off(nc.w));
${k.biasCol ? "  let cb = vec4<f32>(bias_col(nc.x), bias_col(nc.y), bias_col(nc.z), bias_col(nc.w));\n" : ""}${store}
}`;
}

/** Workgroups a GEMM should launch at least, split along K if its output is small; on lavapipe 2 would do, a GPU wants more. */
const MIN_WORKGROUPS = 32;
/** Most K splits (their partial outputs are summed by one reduction). */
const MAX_SPLITS = 8;
/** Fewest k steps per split. */
const MIN_SPLIT_K = 1024;

/**
 * K splits for a GEMM of `workgroups` tiles: a weight gradient's small
 * output over a long K (every voxel of the batch) launched one workgroup
 * that walked all of K alone. Only where the partial outputs can simply be
 * added (no bias, and the GEMM writes every element of `out` (M·N of them)
 * in one binding-sized chunk, as can the splits' copies).
 */
export function gemmSplits(dims: Dims, workgroups: number, bias: boolean, out: Tensor, chunks: number): number {
  if (bias || chunks !== 1 || dims.M * dims.N !== out.size) return 1;
  return Math.max(1, Math.min(MAX_SPLITS, Math.ceil(MIN_WORKGROUPS / workgroups), Math.floor(dims.K / MIN_SPLIT_K)));
}

/**
 * Records the GEMM into `out` (one dispatch per binding-sized chunk of out;
 * each chunk recomputes the GEMM and keeps its own elements, which only
 * happens for outputs over maxBindingBytes). `inputs` are storage
 * bindings 2, 3, …. A small output over a long K is computed as partial
 * sums over splits of K (gemmSplits) in one launch, then summed: the same
 * products, added in a different order (in f32; an f16 output is rounded
 * once after the sum).
 */
export function dispatchGemm<S extends GemmSpec>(op: GemmOp<S>, out: Tensor, dims: Dims, inputs: GPUBufferBinding[]): void {
  const g = gpu();
  const v = chooseGemmVariant(deviceProfile(g), dims, op.spec.dtype);
  checkGemmVariant(v, deviceProfile(g));
  const tm = 4 * v.tmq;
  const pipe = (outDtype: Precision) => {
    const value: GemmPipelineSpec<S> = { op: op.kernel, spec: op.spec, out: outDtype, subgroups: v.subgroups, tmq: v.tmq };
    return variantPipeline("gemm", value, (s) => wgsl(op.loaders(s.spec), s));
  };
  const blocks = Math.ceil(dims.N / (4 * WG));
  const gx = Math.min(blocks, g.maxWorkgroupsPerDim);
  const gz = Math.ceil(blocks / gx);
  const gy = Math.ceil(dims.M / tm);
  if (gy > g.maxWorkgroupsPerDim || gz > g.maxWorkgroupsPerDim) {
    fail(op.kernel, `GEMM ${dims.M}x${dims.N} needs a ${blocks}x${gy} grid, beyond this adapter's limit of ${g.maxWorkgroupsPerDim} per dimension`);
  }
  const chunks = outputChunks(out);
  let splits = gz === 1 ? gemmSplits(dims, gx * gy, op.spec.bias, out, chunks.length) : 1;
  // The splits' f32 outputs share one binding.
  while (splits > 1 && splits * 4 * out.size > g.maxBindingBytes) splits--;
  const params = (base: number, count: number, kPer: number, split: number) =>
    new Params().u32(base).u32(count).u32(kPer).u32(split).u32(dims.M).u32(dims.N).u32(dims.K).bytes();
  if (splits === 1) {
    const p = pipe(op.spec.dtype);
    for (const ch of chunks) g.dispatch(p, [ch.binding, ...inputs], params(ch.start, ch.count, dims.K, 0), [gx, gy, gz]);
    return;
  }
  // One launch: z = the split, each writing its partial output; then their sum.
  const partials = Tensor.empty([splits, out.size]);
  const binding = { buffer: partials.buffer, offset: 0, size: partials.byteLength };
  g.dispatch(pipe("f32"), [binding, ...inputs], params(0, out.size, Math.ceil(dims.K / splits), 1), [gx, gy, splits]);
  const sum = reduce("sum", partials, 0);
  const result = out.dtype === "f32" ? sum : cast(sum, out.dtype as Precision);
  g.copy(result.buffer, 0, out.buffer, 0, ceil4(out.byteLength));
  // Recorded commands keep the buffers; the pool hands them out only to later ones.
  partials.dispose();
  sum.dispose();
  result.dispose();
}

/**
 * How a loader's tensor is bound: one `array<vec4<T>>` binding (`vec4`,
 * when it fits a binding and its size is a multiple of 4), else scalar
 * segments. A value of the op's spec.
 */
export type SourceLayout = { vec4: true } | ({ vec4: false } & SegmentLayout);

export interface Source {
  layout: SourceLayout;
  bindings: GPUBufferBinding[];
}

/** Binds `t` for a loader: as vec4s where `wantVec4` and possible, else as segments. */
export function source(op: string, t: Tensor, wantVec4: boolean): Source {
  if (wantVec4 && t.byteLength <= gpu().maxBindingBytes && t.size % 4 === 0) {
    return { layout: { vec4: true }, bindings: [{ buffer: t.buffer, offset: 0, size: t.byteLength }] };
  }
  const seg = inputSegments(op, t);
  return { layout: { vec4: false, count: seg.count, shift: seg.shift }, bindings: seg.bindings };
}

/** Bytes rounded up to a binding's multiple of 4 (an odd-sized f16 tensor; pool buffers are at least that large). */
function ceil4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

/** A whole tensor as one binding (a bias). */
export function wholeBinding(t: Tensor): GPUBufferBinding {
  return { buffer: t.buffer, offset: 0, size: Math.max(4, ceil4(t.byteLength)) };
}

/** Storage bindings a source takes. */
function bindingCount(l: SourceLayout): number {
  return l.vec4 ? 1 : l.count;
}

/**
 * WGSL for sources stored in precision `T`, bound in order from binding 2,
 * then (with `bias`) `bias: array<T>` after them. Each source NAME gets
 * `NAME_at(i) -> f32` and, when vec4, `NAME4(i) -> vec4<f32>` reading
 * elements i..i+3 (i a multiple of 4): loaders compute in f32 whatever the
 * storage.
 */
export function sourcesWgsl(T: Precision, sources: readonly (readonly [string, SourceLayout])[], bias = false): string {
  let first = 2;
  let code = "";
  for (const [name, l] of sources) {
    if (l.vec4) {
      code += `@group(0) @binding(${first}) var<storage, read> ${name}v: array<vec4<${T}>>;
fn ${name}4(i: u32) -> vec4<f32> { return vec4<f32>(${name}v[i >> 2u]); }
fn ${name}_at(i: u32) -> f32 { return f32(${name}v[i >> 2u][i & 3u]); }\n`;
    } else {
      code += segmentsWgsl(`${name}_${T}`, first, l, T) + `fn ${name}_at(i: u32) -> f32 { return f32(${name}_${T}_at(i)); }\n`;
    }
    first += bindingCount(l);
  }
  if (bias) code += `@group(0) @binding(${first}) var<storage, read> bias: array<${T}>;\n`;
  return code;
}

/**
 * The checks every conv backward starts with: its tensors alive, in f32
 * (the gradients are f32 only: an f16 forward's tensors must be cast to
 * f32 first), on a live device.
 */
export function beginBackward(op: string, tensors: readonly Tensor[]): void {
  const half = tensors.find((t) => t.dtype === "f16");
  if (half) fail(op, `gradients are computed in f32 only, got an f16 tensor ${shapeStr(half.shape)}: cast to f32 first`);
  checkInputs(op, tensors);
  gpu().checkAlive(op);
}
