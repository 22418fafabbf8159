// Backward of the unary elementwise maps: dx = g · f'(x), one pass reading
// the saved input x and the upstream gradient g (two loads per output).
// Derivatives follow PyTorch's conventions at the kinks: relu'(0) = 0,
// abs'(0) = 0, clamp passes the gradient on lo ≤ x ≤ hi (inclusive).
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { inputSegments, outputChunks, segmentsWgsl } from "./binding.js";
import { checkInputs, fail, sameShape } from "./check.js";
import type { UnaryOp } from "./elementwise.js";
import { Params } from "./params.js";

/** Unary ops with a derivative (threshold is piecewise constant: no gradient). */
export type DiffUnaryOp = Exclude<UnaryOp, "threshold">;

// f'(v) as a WGSL expression; p.a / p.b are the op's scalars as in the forward.
const DERIV: Record<DiffUnaryOp, string> = {
  neg: "-1.0",
  exp: "exp(v)",
  log: "1.0 / v",
  sqrt: "0.5 / sqrt(v)",
  abs: "sign(v)",
  square: "2.0 * v",
  relu: "select(0.0, 1.0, v > 0.0)",
  gelu: "d_gelu(v)",
  quick_gelu: "d_quick_gelu(v)",
  gelu_tanh: "d_gelu_tanh(v)",
  sigmoid: "d_sigmoid(v)",
  clamp: "select(0.0, 1.0, v >= p.a && v <= p.b)",
  affine: "p.a",
};

// Φ(x) in the erfc form used by the forward GELU (relative accuracy in the
// negative tail), φ(x) = exp(−x²/2)/√(2π): d/dx x·Φ(x) = Φ(x) + x·φ(x).
const DERIV_WGSL = /* wgsl */ `
fn d_gelu(x: f32) -> f32 {
  let z = x * 0.70710678118654752;
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let e = exp(-a * a);
  let c = (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * e;
  let cdf = select(0.5 * c, 1.0 - 0.5 * c, z >= 0.0);
  return cdf + x * 0.3989422804014327 * e;
}
fn d_sigmoid(x: f32) -> f32 { let s = 1.0 / (1.0 + exp(-x)); return s * (1.0 - s); }
// x·σ(kx): σ(kx) + k·x·σ(kx)(1 − σ(kx)).
fn d_quick_gelu(x: f32) -> f32 { let s = 1.0 / (1.0 + exp(-1.702 * x)); return s + 1.702 * x * s * (1.0 - s); }
// 0.5·x·(1 + tanh u), u = c(x + 0.044715x³): 0.5(1 + t) + 0.5·x·(1 − t²)·c(1 + 3·0.044715x²).
fn d_gelu_tanh(x: f32) -> f32 {
  let c = 0.7978845608028654;
  let u = c * (x + 0.044715 * x * x * x);
  let e = exp(-2.0 * clamp(u, -15.0, 15.0));
  let t = (1.0 - e) / (1.0 + e);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 0.134145 * x * x);
}
`;

const WG = 256;

function wgsl(op: DiffUnaryOp, sx: ReturnType<typeof inputSegments>, sg: ReturnType<typeof inputSegments>): string {
  return /* wgsl */ `
struct P { n: u32, base: u32, a: f32, b: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${segmentsWgsl("x", 2, sx)}
${segmentsWgsl("g", 2 + sx.bindings.length, sg)}
${DERIV_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let v = x_at(p.base + i);
  out[i] = g_at(p.base + i) * (${DERIV[op]});
}`;
}

/** dx = g · f'(x) for the unary op `op` with scalars a, b (as in `unary`). */
export function unaryBackward(op: DiffUnaryOp, x: Tensor, g: Tensor, a = 0, b = 0): Tensor {
  const name = `${op}_backward`;
  if (!(op in DERIV)) fail("unaryBackward", `no derivative for op "${op}"`);
  checkInputs(name, [x, g]);
  if (!sameShape(x.shape, g.shape)) fail(name, `input ${shapeStr(x.shape)} and gradient ${shapeStr(g.shape)} differ in shape`);
  const gp = gpu();
  const out = Tensor.empty(x.shape);
  if (out.size === 0) return out;
  const sx = inputSegments(name, x);
  const sg = inputSegments(name, g);
  const pipe = gp.pipeline(`unary_bwd:${op}:${sx.key}:${sg.key}`, () => wgsl(op, sx, sg));
  for (const c of outputChunks(out)) {
    const params = new Params().u32(c.count).u32(c.start).f32(a).f32(b);
    gp.dispatch(pipe, [c.binding, ...sx.bindings, ...sg.bindings], params.bytes(), gp.grid(Math.ceil(c.count / WG)));
  }
  return out;
}
