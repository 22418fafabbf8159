// Activation functions shared by the elementwise kernels and the matmul
// epilogues, as WGSL snippets. WGSL has no erf: `erf_approx` is
// Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), enough for GELU at f32.

export type Activation = "none" | "relu" | "gelu" | "quick_gelu" | "gelu_tanh" | "sigmoid";

export const ACTIVATIONS: readonly Activation[] = ["none", "relu", "gelu", "quick_gelu", "gelu_tanh", "sigmoid"];

export const ACTIVATION_WGSL = /* wgsl */ `
fn erf_approx(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return select(-y, y, x >= 0.0);
}
fn act_relu(x: f32) -> f32 { return max(x, 0.0); }
// Phi(x) = 1 - erfc(z)/2 for z = x/sqrt(2) >= 0, erfc(|z|)/2 otherwise: the
// erfc form keeps relative accuracy in the negative tail.
fn act_gelu(x: f32) -> f32 {
  let z = x * 0.70710678118654752;
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let c = (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return x * select(0.5 * c, 1.0 - 0.5 * c, z >= 0.0);
}
fn act_quick_gelu(x: f32) -> f32 { return x / (1.0 + exp(-1.702 * x)); }
fn act_gelu_tanh(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  // tanh(u) via exp, clamped so exp does not overflow.
  let e = exp(-2.0 * clamp(u, -15.0, 15.0));
  return 0.5 * x * (1.0 + (1.0 - e) / (1.0 + e));
}
fn act_sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn act_none(x: f32) -> f32 { return x; }
`;

export function checkActivation(op: string, act: string): Activation {
  if (!(ACTIVATIONS as readonly string[]).includes(act)) {
    throw new Error(`${op}: unknown activation "${act}" (expected one of ${ACTIVATIONS.join(", ")})`);
  }
  return act as Activation;
}
