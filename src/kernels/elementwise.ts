// Elementwise kernels: unary maps (activations, exp, threshold, clamp,
// affine) and binary ops with NumPy broadcasting, their backward kernels and
// their differentiable ops. Outputs of any size are written in binding-sized
// chunks; inputs are read through segments.
//
// UNARY_OPS is the one table of unary maps: each entry's forward and
// derivative as WGSL expressions, the WGSL functions they call, and whether
// matmul's epilogue can fuse it (activation.ts: the activations). The unary
// kernel, its backward kernel, the matmul epilogue and the ops on Vars
// (unaryOps) are all generated from it. BINARY_OPS does the same for the
// binary ops: WGSL expression and gradients (binaryOps).
//
// Forward kernels run in f32 or f16 storage (precision.ts): values are
// loaded into f32, the expression is evaluated in f32 and the result is
// rounded once when stored. Backward kernels are f32 only.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { inputSegments, layoutOf, segmentsWgsl, type SegmentLayout, type Segments } from "./binding.js";
import { deviceProfile, variantName, variantPipeline, type DeviceProfile } from "./profile.js";
import { checkInputs, fail, sameShape } from "./check.js";
import { defineOp, type OpDef } from "./op.js";
import { Params } from "./params.js";
import { enableF16, precisionOf, type Precision } from "./precision.js";
import { sumTo } from "./reduce.js";
import { axisStepWgsl, divisorWords, UDIV_WGSL } from "./udiv.js";
import { vec4Chunks, vec4Segments } from "./vec4.js";

/**
 * One unary map. Expressions are WGSL in `v` (the input value) and `p.a`,
 * `p.b` (the op's scalars). Derivatives follow PyTorch's conventions at the
 * kinks: relu'(0) = 0, abs'(0) = 0, clamp passes the gradient on
 * lo ≤ x ≤ hi (inclusive).
 */
export interface UnaryDef {
  /** f(v). */
  readonly forward: string;
  /** f'(v); absent: no gradient (the map is piecewise constant). */
  readonly derivative?: string;
  /** f(v) = c·v + p.b: the gradient is f(g) with p.b = 0, and backward saves nothing. */
  readonly linear?: true;
  /** Fusable into matmul's epilogue (an `Activation`, code = its place among them). */
  readonly activation?: true;
  /** WGSL functions the expressions call. */
  readonly wgsl?: string;
}

// WGSL has no erf. Φ(x) = 1 − erfc(z)/2 for z = x/√2 ≥ 0, erfc(|z|)/2
// otherwise (the erfc form keeps relative accuracy in the negative tail),
// with erfc by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7); returned with
// e = exp(−z²), from which φ(x) = e/√(2π).
const GELU_PHI_WGSL = /* wgsl */ `
fn gelu_phi(x: f32) -> vec2<f32> {
  let z = x * 0.70710678118654752;
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let e = exp(-a * a);
  let c = (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * e;
  return vec2<f32>(select(0.5 * c, 1.0 - 0.5 * c, z >= 0.0), e);
}
fn act_gelu(x: f32) -> f32 { return x * gelu_phi(x).x; }
// d/dx x·Φ(x) = Φ(x) + x·φ(x).
fn d_gelu(x: f32) -> f32 { let r = gelu_phi(x); return r.x + x * 0.3989422804014327 * r.y; }
`;

export const UNARY_OPS = {
  neg: { forward: "-v", derivative: "-1.0", linear: true },
  exp: { forward: "exp(v)", derivative: "exp(v)" },
  log: { forward: "log(v)", derivative: "1.0 / v" },
  sqrt: { forward: "sqrt(v)", derivative: "0.5 / sqrt(v)" },
  abs: { forward: "abs(v)", derivative: "sign(v)" },
  square: { forward: "v * v", derivative: "2.0 * v" },
  relu: {
    forward: "act_relu(v)",
    derivative: "select(0.0, 1.0, v > 0.0)",
    activation: true,
    wgsl: "fn act_relu(x: f32) -> f32 { return max(x, 0.0); }\n",
  },
  gelu: { forward: "act_gelu(v)", derivative: "d_gelu(v)", activation: true, wgsl: GELU_PHI_WGSL },
  quick_gelu: {
    forward: "act_quick_gelu(v)",
    derivative: "d_quick_gelu(v)",
    activation: true,
    // x·σ(kx): σ(kx) + k·x·σ(kx)(1 − σ(kx)).
    wgsl: /* wgsl */ `
fn act_quick_gelu(x: f32) -> f32 { return x / (1.0 + exp(-1.702 * x)); }
fn d_quick_gelu(x: f32) -> f32 { let s = 1.0 / (1.0 + exp(-1.702 * x)); return s + 1.702 * x * s * (1.0 - s); }
`,
  },
  gelu_tanh: {
    forward: "act_gelu_tanh(v)",
    derivative: "d_gelu_tanh(v)",
    activation: true,
    // 0.5·x·(1 + tanh u), u = c(x + 0.044715x³), tanh via exp, clamped so
    // exp does not overflow; f' = 0.5(1 + t) + 0.5·x·(1 − t²)·c(1 + 3·0.044715x²).
    wgsl: /* wgsl */ `
fn act_gelu_tanh(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let e = exp(-2.0 * clamp(u, -15.0, 15.0));
  return 0.5 * x * (1.0 + (1.0 - e) / (1.0 + e));
}
fn d_gelu_tanh(x: f32) -> f32 {
  let c = 0.7978845608028654;
  let u = c * (x + 0.044715 * x * x * x);
  let e = exp(-2.0 * clamp(u, -15.0, 15.0));
  let t = (1.0 - e) / (1.0 + e);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 0.134145 * x * x);
}
`,
  },
  sigmoid: {
    forward: "act_sigmoid(v)",
    derivative: "d_sigmoid(v)",
    activation: true,
    wgsl: /* wgsl */ `
fn act_sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn d_sigmoid(x: f32) -> f32 { let s = 1.0 / (1.0 + exp(-x)); return s * (1.0 - s); }
`,
  },
  threshold: { forward: "select(0.0, 1.0, v > p.a)" },
  clamp: { forward: "clamp(v, p.a, p.b)", derivative: "select(0.0, 1.0, v >= p.a && v <= p.b)" },
  affine: { forward: "v * p.a + p.b", derivative: "p.a", linear: true },
} as const satisfies Record<string, UnaryDef>;

export type UnaryOp = keyof typeof UNARY_OPS;

/** Unary ops with a derivative (threshold is piecewise constant: no gradient). */
export type DiffUnaryOp = { [K in UnaryOp]: (typeof UNARY_OPS)[K] extends { derivative: string } ? K : never }[UnaryOp];

const unaryDef = (op: string): UnaryDef | undefined => (Object.hasOwn(UNARY_OPS, op) ? (UNARY_OPS as Record<string, UnaryDef>)[op] : undefined);

/** The WGSL functions of every unary map (each kernel calls the ones it needs). */
export const UNARY_WGSL = Object.values(UNARY_OPS as Record<string, UnaryDef>).map((d) => d.wgsl ?? "").join("");

/** Invocations per workgroup of the elementwise kernels. */
export const ELEMENTWISE_WG = 256;
const WG = ELEMENTWISE_WG;

/**
 * How an elementwise kernel (unary, binary, addN) maps invocations onto
 * elements: `vec` elements per load and store (4: one vec4 access where a
 * scalar kernel makes four, and lavapipe pays per access; 1: scalar) and
 * `per` of those per invocation, strided by the number of invocations so
 * that neighbouring invocations touch neighbouring memory on every pass.
 */
export interface ElementwiseVariant {
  vec: 1 | 4;
  per: number;
}

/**
 * The chosen variant: vec4 with PER vec4s an invocation; per-call and
 * per-device forcing as for the other kernels. PER from
 * bench/elementwise.bench.ts on lavapipe (2 cores): more work an invocation
 * amortises its index math and launch; every device keeps enough
 * invocations at the sizes where bandwidth matters.
 */
const PER = 4;
export function chooseElementwise(p: DeviceProfile, forced?: Partial<ElementwiseVariant>): ElementwiseVariant {
  const v = { vec: 4 as const, per: PER, ...p.force.elementwise, ...forced };
  if ((v.vec !== 1 && v.vec !== 4) || !Number.isInteger(v.per) || v.per < 1 || v.per > 64) {
    throw new Error(`elementwise: variant ${variantName(v)} is not one (vec 1 or 4, per 1-64)`);
  }
  return v;
}

/** The variants tests run: scalar and vec4, one and several per invocation, and the chosen one. */
export function elementwiseVariants(p: DeviceProfile): ElementwiseVariant[] {
  const out: ElementwiseVariant[] = [{ vec: 1, per: 1 }, { vec: 1, per: 3 }, { vec: 4, per: 1 }, { vec: 4, per: 3 }];
  const chosen = chooseElementwise(p);
  if (!out.some((v) => v.vec === chosen.vec && v.per === chosen.per)) out.push(chosen);
  return out;
}

/** WGSL: the invocation's index t among p.threads, and the loop over its `per` vectors i = t + k·p.threads below p.n elements. */
export function perLoop(v: ElementwiseVariant, body: string): string {
  return `let t = gid.x + gid.y * nwg.x * ${ELEMENTWISE_WG}u;
  if (t >= p.threads) { return; }
  for (var k = 0u; k < ${v.per}u; k++) {
    let i = t + k * p.threads;
    if (i * ${v.vec}u >= p.n) { return; }
    ${body}
  }`;
}

/** Invocations for `count` elements: one per `per` vectors. */
export function threadsFor(v: ElementwiseVariant, count: number): number {
  return Math.ceil(Math.ceil(count / v.vec) / v.per);
}

/** Binds an input for the variant: vec4 reads need whole vec4s in each binding. */
function bindInput(v: ElementwiseVariant, op: string, t: Tensor): Segments {
  return v.vec === 4 ? vec4Segments(op, t) : inputSegments(op, t);
}

/** A unary kernel: the op, forward or backward (g · f'(v)), its storage precision (f32 when backward), its variant and its inputs' segment layouts (g: backward only; counted in vectors). */
interface UnarySpec {
  op: string;
  backward: boolean;
  dtype: Precision;
  vec: 1 | 4;
  per: number;
  x: SegmentLayout;
  g: SegmentLayout | null;
}

const LANES = ["x", "y", "z", "w"];

/**
 * The unary kernel: out[i] = f(v), of v = x[i]; backward, out[i] =
 * g[i] · f'(v), reading the upstream gradient as well (two loads per
 * output). With vec4, the map runs on each of the four lanes; the last
 * vec4 of a tensor may reach past its end, into its buffer's unused tail.
 */
function unaryWgsl(s: UnarySpec): string {
  const def = unaryDef(s.op)!;
  const { x: sx, g: sg, dtype: T, vec } = s;
  const V = vec === 4 ? `vec4<${T}>` : T;
  const F = vec === 4 ? "vec4<f32>" : "f32";
  const map = s.backward ? `fn unary_map(v: f32, g: f32) -> f32 { return g * (${def.derivative!}); }` : `fn unary_map(v: f32) -> f32 { return ${def.forward}; }`;
  const call = (c: string) => (s.backward ? `unary_map(v${c}, g${c})` : `unary_map(v${c})`);
  const value = vec === 4 ? `vec4<f32>(${LANES.map((c) => call(`.${c}`)).join(", ")})` : call("");
  return /* wgsl */ `${enableF16(T)}
struct P { n: u32, base: u32, a: f32, b: f32, threads: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${V}>;
${segmentsWgsl("x", 2, sx, V)}
${sg ? segmentsWgsl("g", 2 + sx.count, sg, F) : ""}
${UNARY_WGSL}
${map}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${perLoop(s, `let v = ${F}(x_at(p.base / ${vec}u + i));
    ${sg ? `let g = g_at(p.base / ${vec}u + i);` : ""}
    out[i] = ${V}(${value});`)}
}`;
}

/** Runs the unary kernel of `op` over x (forward), or over x and g (backward). */
function runUnary(name: string, op: string, dtype: Precision, x: Tensor, g: Tensor | null, a: number, b: number, v: ElementwiseVariant): Tensor {
  const gp = gpu();
  const out = Tensor.empty(x.shape, dtype);
  if (out.size === 0) return out;
  const sx = bindInput(v, name, x);
  const sg = g ? bindInput(v, name, g) : undefined;
  const spec: UnarySpec = { op, backward: g !== null, dtype, vec: v.vec, per: v.per, x: layoutOf(sx), g: sg ? layoutOf(sg) : null };
  const pipe = variantPipeline("unary", spec, unaryWgsl);
  for (const c of vec4Chunks([out])) {
    const threads = threadsFor(v, c.count);
    const params = new Params().u32(c.count).u32(c.start).f32(a).f32(b).u32(threads);
    gp.dispatch(pipe, [c.bindings[0]!, ...sx.bindings, ...(sg?.bindings ?? [])], params.bytes(), gp.grid(Math.ceil(threads / WG)));
  }
  return out;
}

/**
 * Applies a unary op to an f32 or f16 tensor (the result has its dtype); `a`,
 * `b` are the op's scalars (threshold: a; clamp: a..b; affine: v*a+b);
 * `variant` forces knobs of the kernel's variant.
 */
export function unary(op: UnaryOp, x: Tensor, a = 0, b = 0, variant?: Partial<ElementwiseVariant>): Tensor {
  if (!unaryDef(op)) fail("unary", `unknown op "${op}"`);
  const dtype = precisionOf(op, [x]);
  return runUnary(op, op, dtype, x, null, a, b, chooseElementwise(deviceProfile(), variant));
}

export const relu = (x: Tensor) => unary("relu", x);
export const gelu = (x: Tensor) => unary("gelu", x);
export const quickGelu = (x: Tensor) => unary("quick_gelu", x);
export const sigmoid = (x: Tensor) => unary("sigmoid", x);
export const exp = (x: Tensor) => unary("exp", x);
/** 1 where x > t, else 0. */
export const threshold = (x: Tensor, t: number) => unary("threshold", x, t);
export const clamp = (x: Tensor, lo: number, hi: number) => unary("clamp", x, lo, hi);
/** x * scale + shift. */
export const affine = (x: Tensor, scale: number, shift: number) => unary("affine", x, scale, shift);

/** dx = g · f'(x) for the unary op `op` with scalars a, b (as in `unary`); f32 only. */
export function unaryBackward(op: DiffUnaryOp, x: Tensor, g: Tensor, a = 0, b = 0, variant?: Partial<ElementwiseVariant>): Tensor {
  const name = `${op}_backward`;
  const derivative = unaryDef(op)?.derivative;
  if (!derivative) fail("unaryBackward", `no derivative for op "${op}"`);
  checkInputs(name, [x, g]);
  if (!sameShape(x.shape, g.shape)) fail(name, `input ${shapeStr(x.shape)} and gradient ${shapeStr(g.shape)} differ in shape`);
  return runUnary(name, op, "f32", x, g, a, b, chooseElementwise(deviceProfile(), variant));
}

/** The scalars of a unary op (as in `unary`). */
export interface UnaryAttrs {
  a: number;
  b: number;
}

function unaryOpDef(op: UnaryOp): OpDef<[Tensor], UnaryAttrs> {
  const def: UnaryDef = UNARY_OPS[op];
  if (!def.derivative) return defineOp<[Tensor], UnaryAttrs>({ name: op, forward: ([x], { a, b }) => unary(op, x, a, b) });
  const diff = op as DiffUnaryOp;
  return defineOp<[Tensor], UnaryAttrs>({
    name: op,
    forward: ([x], { a, b }) => unary(op, x, a, b),
    // A linear map's gradient needs nothing saved.
    save: ([x]) => (def.linear ? [] : [x]),
    backward: ([x], g, { attrs: { a, b } }) => [def.linear ? unary(op, g, a, 0) : unaryBackward(diff, x!, g, a, b)],
  });
}

/** Every unary map as a differentiable op (attrs: its scalars a, b). */
export const unaryOps = Object.fromEntries((Object.keys(UNARY_OPS) as UnaryOp[]).map((op) => [op, unaryOpDef(op)])) as Record<UnaryOp, OpDef<[Tensor], UnaryAttrs>>;

type Keep = (wantA: boolean, wantB: boolean) => [boolean, boolean];
type Grads = (a: Tensor | null, b: Tensor | null, g: Tensor, wants: readonly boolean[]) => [Tensor | null, Tensor | null];

/**
 * One binary op: its WGSL expression in x and y and, if differentiable,
 * which inputs its backward keeps (given the wanted gradients) and the
 * gradients before broadcasting (summed back to each input's shape).
 */
export interface BinaryDef {
  readonly forward: string;
  readonly keep?: Keep;
  readonly grads?: Grads;
}

const keepNone: Keep = () => [false, false];

export type BinaryOp = "add" | "sub" | "mul" | "div" | "max" | "min";

export const BINARY_OPS: Record<BinaryOp, BinaryDef> = {
  add: { forward: "x + y", keep: keepNone, grads: (_a, _b, g, [ga, gb]) => [ga ? g : null, gb ? g : null] },
  sub: { forward: "x - y", keep: keepNone, grads: (_a, _b, g, [ga, gb]) => [ga ? g : null, gb ? unary("neg", g) : null] },
  // da = g·b needs b, db = g·a needs a.
  mul: {
    forward: "x * y",
    keep: (ga, gb) => [gb, ga || gb],
    grads: (a, b, g, [ga, gb]) => [ga ? binary("mul", g, b!) : null, gb ? binary("mul", g, a!) : null],
  },
  // da = g/b needs b; db = −g·a/b² needs a and b.
  div: {
    forward: "x / y",
    keep: (ga, gb) => [gb, ga || gb],
    grads: (a, b, g, [ga, gb]) => [
      ga ? binary("div", g, b!) : null,
      gb ? unary("neg", binary("div", binary("mul", g, a!), binary("mul", b!, b!))) : null,
    ],
  },
  max: { forward: "max(x, y)" },
  min: { forward: "min(x, y)" },
};

/** NumPy broadcast of two shapes; throws naming the op and both shapes. */
export function broadcastShape(op: string, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) fail(op, `shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of `shape` seen from a broadcast output of rank `rank` (0 on broadcast axes). */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const rank = out.length;
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    const d = shape[shape.length - rank + i] ?? 1;
    strides[i] = d === 1 ? 0 : s;
    s *= d;
  }
  return strides;
}

const MAX_RANK = 8;

/**
 * A broadcast with adjacent axes merged wherever both inputs allow it (each
 * input's stride on the outer axis is its stride on the inner one times the
 * inner extent, which holds for two broadcast axes too) and extent-1 axes
 * dropped: [B, C, D, H, W] + [1, C, 1, 1, 1] indexes as [B, C, D·H·W]. The
 * kernel's index math (a division and a remainder per axis, slow on
 * lavapipe) runs over the merged axes only.
 */
export function collapseBroadcast(shape: readonly number[], sa: readonly number[], sb: readonly number[]): { shape: number[]; sa: number[]; sb: number[] } {
  const out = { shape: [] as number[], sa: [] as number[], sb: [] as number[] };
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = out.shape.length - 1;
    if (last >= 0 && out.sa[last] === sa[d]! * shape[d]! && out.sb[last] === sb[d]! * shape[d]!) {
      out.shape[last]! *= shape[d]!;
      out.sa[last] = sa[d]!;
      out.sb[last] = sb[d]!;
    } else {
      out.shape.push(shape[d]!);
      out.sa.push(sa[d]!);
      out.sb.push(sb[d]!);
    }
  }
  return out;
}

/**
 * A binary kernel: the op, the merged broadcast rank, unrolled (0: the
 * direct path, both inputs of the output's shape), the storage precision,
 * the variant, whether each input varies along the innermost merged axis
 * (vec4: loaded as vec4s, else one value splat), its inputs' segment
 * layouts (in vectors).
 */
interface BinarySpec {
  op: BinaryOp;
  rank: number;
  dtype: Precision;
  vec: 1 | 4;
  per: number;
  innerA: boolean;
  innerB: boolean;
  contiguousA: boolean;
  contiguousB: boolean;
  a: SegmentLayout;
  b: SegmentLayout;
}

/**
 * WGSL: the element indices ia, ib of the inputs at output element e, over
 * the merged axes: a division per axis but the outermost, by multiplication
 * (udiv.ts). An input laid out like the output (`contiguous`) is indexed by e.
 */
function broadcastIndexWgsl(rank: number, contiguousA: boolean, contiguousB: boolean): string {
  if (rank === 0) return "let ia = e; let ib = e;";
  const steps: string[] = [];
  for (let d = rank - 1; d >= 0; d--) {
    const at = `[${Math.floor(d / 4)}][${d % 4}]`;
    // The outermost axis takes what remains: no division.
    steps.push(d === 0 ? "let c0 = rem;" : axisStepWgsl(d));
    if (!contiguousA) steps.push(`ia = ia + c${d} * p.sa${at};`);
    if (!contiguousB) steps.push(`ib = ib + c${d} * p.sb${at};`);
  }
  return `var rem = e; var ia = ${contiguousA ? "e" : "0u"}; var ib = ${contiguousB ? "e" : "0u"};\n    ${steps.join("\n    ")}`;
}

/** Whether an input with merged strides `strides` over merged `shape` is laid out like the output (row-major, no broadcast axis). */
function contiguousOver(shape: readonly number[], strides: readonly number[]): boolean {
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (strides[d] !== s) return false;
    s *= shape[d]!;
  }
  return true;
}

function binaryWgsl(s: BinarySpec): string {
  const { op, rank, dtype: T, vec, a: sa, b: sb } = s;
  const V = vec === 4 ? `vec4<${T}>` : T;
  // A vec4 input varying along the inner axis is one aligned vec4 (the
  // inner extent is a multiple of 4); one that does not is one value.
  const load = (name: string, idx: string, inner: boolean) =>
    vec === 1 ? `f32(${name}_at(${idx}))` : inner ? `vec4<f32>(${name}_at(${idx} >> 2u))` : `vec4<f32>(f32(${name}_at(${idx} >> 2u)[${idx} & 3u]))`;
  return /* wgsl */ `${enableF16(T)}
struct P { n: u32, base: u32, threads: u32, pad: u32, shape: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2>, magic: array<vec4<u32>, 2>, shift: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${V}>;
${segmentsWgsl("a", 2, sa, V)}
${segmentsWgsl("b", 2 + sa.count, sb, V)}
${rank > 1 ? UDIV_WGSL : ""}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${perLoop(s, `let e = p.base + i * ${vec}u;
    ${broadcastIndexWgsl(rank, s.contiguousA, s.contiguousB)}
    let x = ${load("a", "ia", s.innerA)};
    let y = ${load("b", "ib", s.innerB)};
    out[i] = ${V}(${BINARY_OPS[op].forward});`)}
}`;
}

function padWords(v: readonly number[]): number[] {
  const out = [...v];
  while (out.length < MAX_RANK) out.push(1);
  return out;
}

/**
 * Binary op with NumPy broadcasting, on two f32 or two f16 tensors (the
 * result has their dtype); `variant` forces knobs of the kernel's variant.
 * vec4 needs an innermost merged axis of a multiple of 4 elements (or the
 * direct path); other shapes run the scalar kernel with the same `per`.
 */
export function binary(op: BinaryOp, a: Tensor, b: Tensor, variant?: Partial<ElementwiseVariant>): Tensor {
  if (!Object.hasOwn(BINARY_OPS, op)) fail("binary", `unknown op "${op}"`);
  const dtype = precisionOf(op, [a, b]);
  const shape = broadcastShape(op, a.shape, b.shape);
  if (shape.length > MAX_RANK) fail(op, `rank ${shape.length} exceeds ${MAX_RANK}`);
  const direct = sameShape(a.shape, shape) && sameShape(b.shape, shape);
  const merged = collapseBroadcast(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  // Shapes equal up to extent-1 axes merge to one axis with unit strides: the direct path.
  const plain = merged.shape.length <= 1 && merged.sa.every((x) => x === 1) && merged.sb.every((x) => x === 1);
  const rank = direct || plain ? 0 : merged.shape.length;
  const chosen = chooseElementwise(deviceProfile(), variant);
  const v: ElementwiseVariant = rank === 0 || merged.shape[rank - 1]! % 4 === 0 ? chosen : { vec: 1, per: chosen.per };
  const out = Tensor.empty(shape, dtype);
  if (out.size === 0) return out;
  const g = gpu();
  const sa = bindInput(v, op, a);
  const sb = bindInput(v, op, b);
  // After merging, the innermost axis has stride 1 in an input that spans it, 0 in one broadcast along it.
  const inner = (strides: number[]) => rank === 0 || strides[rank - 1] === 1;
  const contiguous = (strides: number[]) => rank > 0 && contiguousOver(merged.shape, strides);
  const spec: BinarySpec = {
    op,
    rank,
    dtype,
    vec: v.vec,
    per: v.per,
    innerA: inner(merged.sa),
    innerB: inner(merged.sb),
    contiguousA: contiguous(merged.sa),
    contiguousB: contiguous(merged.sb),
    a: layoutOf(sa),
    b: layoutOf(sb),
  };
  const pipe = variantPipeline("binary", spec, binaryWgsl);
  const words = [...[merged.shape, merged.sa, merged.sb].flatMap(padWords), ...divisorWords(merged.shape, MAX_RANK)];
  for (const c of vec4Chunks([out])) {
    const threads = threadsFor(v, c.count);
    const params = new Params().u32(c.count).u32(c.start).u32(threads).u32(0);
    for (const w of words) params.u32(w);
    g.dispatch(pipe, [c.bindings[0]!, ...sa.bindings, ...sb.bindings], params.bytes(), g.grid(Math.ceil(threads / WG)));
  }
  return out;
}

export const add = (a: Tensor, b: Tensor) => binary("add", a, b);
export const sub = (a: Tensor, b: Tensor) => binary("sub", a, b);
export const mul = (a: Tensor, b: Tensor) => binary("mul", a, b);
export const div = (a: Tensor, b: Tensor) => binary("div", a, b);
export const maximum = (a: Tensor, b: Tensor) => binary("max", a, b);
export const minimum = (a: Tensor, b: Tensor) => binary("min", a, b);

// ---------------------------------------------------------------------------
// Binary ops as differentiable ops: gradients summed back over broadcast axes.

function binaryOpDef(op: BinaryOp): OpDef<[Tensor, Tensor], Record<string, never>> {
  const { keep, grads } = BINARY_OPS[op];
  if (!keep || !grads) return defineOp<[Tensor, Tensor]>({ name: op, forward: ([a, b]) => binary(op, a, b) });
  return defineOp<[Tensor, Tensor]>({
    name: op,
    forward: ([a, b]) => binary(op, a, b),
    save: ([a, b], _out, { wants: [ga, gb] }) => {
      const [keepA, keepB] = keep(ga!, gb!);
      return [keepA ? a : null, keepB ? b : null];
    },
    backward: ([a, b], g, { wants, shapes: [sa, sb] }) => {
      const [da, db] = grads(a, b, g, wants);
      return [da ? sumTo(da, sa!) : null, db ? sumTo(db, sb!) : null];
    },
  });
}

/** Every binary op as a differentiable op (max and min: no gradient). */
export const binaryOps = Object.fromEntries((Object.keys(BINARY_OPS) as BinaryOp[]).map((op) => [op, binaryOpDef(op)])) as Record<BinaryOp, OpDef<[Tensor, Tensor], Record<string, never>>>;
