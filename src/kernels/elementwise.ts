// Elementwise kernels: unary maps (activations, exp, threshold, clamp,
// affine) and binary ops with NumPy broadcasting. Outputs of any size are
// written in binding-sized chunks; inputs are read through segments.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { ACTIVATION_WGSL } from "./activation.js";
import { inputSegments, outputChunks, segmentsWgsl } from "./binding.js";
import { checkInputs, fail, sameShape } from "./check.js";
import { Params } from "./params.js";

export type UnaryOp =
  | "neg" | "exp" | "log" | "sqrt" | "abs" | "square"
  | "relu" | "gelu" | "quick_gelu" | "gelu_tanh" | "sigmoid"
  | "threshold" | "clamp" | "affine";

/** WGSL expression of each unary op in `v`; `p.a`/`p.b` are its scalars. */
const UNARY: Record<UnaryOp, string> = {
  neg: "-v",
  exp: "exp(v)",
  log: "log(v)",
  sqrt: "sqrt(v)",
  abs: "abs(v)",
  square: "v * v",
  relu: "act_relu(v)",
  gelu: "act_gelu(v)",
  quick_gelu: "act_quick_gelu(v)",
  gelu_tanh: "act_gelu_tanh(v)",
  sigmoid: "act_sigmoid(v)",
  threshold: "select(0.0, 1.0, v > p.a)",
  clamp: "clamp(v, p.a, p.b)",
  affine: "v * p.a + p.b",
};

export type BinaryOp = "add" | "sub" | "mul" | "div" | "max" | "min";

const BINARY: Record<BinaryOp, string> = {
  add: "x + y",
  sub: "x - y",
  mul: "x * y",
  div: "x / y",
  max: "max(x, y)",
  min: "min(x, y)",
};

const WG = 256;

function unaryWgsl(op: UnaryOp, seg: ReturnType<typeof inputSegments>): string {
  return /* wgsl */ `
struct P { n: u32, base: u32, a: f32, b: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${segmentsWgsl("x", 2, seg)}
${ACTIVATION_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let v = x_at(p.base + i);
  out[i] = ${UNARY[op]};
}`;
}

/** Applies a unary op; `a`, `b` are the op's scalars (threshold: a; clamp: a..b; affine: v*a+b). */
export function unary(op: UnaryOp, x: Tensor, a = 0, b = 0): Tensor {
  if (!(op in UNARY)) fail("unary", `unknown op "${op}"`);
  checkInputs(op, [x]);
  const g = gpu();
  const seg = inputSegments(op, x);
  const pipe = g.pipeline(`unary:${op}:${seg.key}`, () => unaryWgsl(op, seg));
  const out = Tensor.empty(x.shape);
  for (const c of outputChunks(out)) {
    const params = new Params().u32(c.count).u32(c.start).f32(a).f32(b);
    g.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), g.grid(Math.ceil(c.count / WG)));
  }
  return out;
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

/** `rank` 0 is the direct path (both inputs have the output's shape); else the merged broadcast rank, unrolled. */
function binaryWgsl(op: BinaryOp, rank: number, sa: ReturnType<typeof inputSegments>, sb: ReturnType<typeof inputSegments>): string {
  const nA = sa.bindings.length;
  const steps: string[] = [];
  for (let d = rank - 1; d >= 0; d--) {
    const [q, r] = [Math.floor(d / 4), d % 4];
    // The outermost axis takes what remains: no division.
    steps.push(d === 0 ? "let c0 = rem;" : `let c${d} = rem % p.shape[${q}][${r}]; rem = rem / p.shape[${q}][${r}];`);
    steps.push(`ia = ia + c${d} * p.sa[${q}][${r}]; ib = ib + c${d} * p.sb[${q}][${r}];`);
  }
  const index = rank === 0 ? "let ia = g; let ib = g;" : `var rem = g; var ia = 0u; var ib = 0u;\n  ${steps.join("\n  ")}`;
  return /* wgsl */ `
struct P { n: u32, base: u32, rank: u32, pad: u32, shape: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${segmentsWgsl("a", 2, sa)}
${segmentsWgsl("b", 2 + nA, sb)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let g = p.base + i;
  ${index}
  let x = a_at(ia);
  let y = b_at(ib);
  out[i] = ${BINARY[op]};
}`;
}

function padWords(v: readonly number[]): number[] {
  const out = [...v];
  while (out.length < MAX_RANK) out.push(1);
  return out;
}

/** Binary op with NumPy broadcasting. */
export function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  if (!(op in BINARY)) fail("binary", `unknown op "${op}"`);
  checkInputs(op, [a, b]);
  const shape = broadcastShape(op, a.shape, b.shape);
  if (shape.length > MAX_RANK) fail(op, `rank ${shape.length} exceeds ${MAX_RANK}`);
  const direct = sameShape(a.shape, shape) && sameShape(b.shape, shape);
  const merged = collapseBroadcast(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  // Shapes equal up to extent-1 axes merge to one axis with unit strides: the direct path.
  const plain = merged.shape.length <= 1 && merged.sa.every((x) => x === 1) && merged.sb.every((x) => x === 1);
  const rank = direct || plain ? 0 : merged.shape.length;
  const g = gpu();
  const sa = inputSegments(op, a);
  const sb = inputSegments(op, b);
  const pipe = g.pipeline(`binary:${op}:${rank === 0 ? "direct" : `b${rank}`}:${sa.key}:${sb.key}`, () => binaryWgsl(op, rank, sa, sb));
  const out = Tensor.empty(shape);
  const strideA = padWords(merged.sa);
  const strideB = padWords(merged.sb);
  const dims = padWords(merged.shape);
  for (const c of outputChunks(out)) {
    const params = new Params().u32(c.count).u32(c.start).u32(rank).u32(0);
    for (const d of dims) params.u32(d);
    for (const s of strideA) params.u32(s);
    for (const s of strideB) params.u32(s);
    g.dispatch(pipe, [c.binding, ...sa.bindings, ...sb.bindings], params.bytes(), g.grid(Math.ceil(c.count / WG)));
  }
  return out;
}

export const add = (a: Tensor, b: Tensor) => binary("add", a, b);
export const sub = (a: Tensor, b: Tensor) => binary("sub", a, b);
export const mul = (a: Tensor, b: Tensor) => binary("mul", a, b);
export const div = (a: Tensor, b: Tensor) => binary("div", a, b);
export const maximum = (a: Tensor, b: Tensor) => binary("max", a, b);
export const minimum = (a: Tensor, b: Tensor) => binary("min", a, b);
