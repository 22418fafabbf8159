// The activations: the unary maps of elementwise.ts's table (UNARY_OPS)
// marked `activation`, which matmul can fuse into its epilogue. Their WGSL
// (forward and derivative) is written there, once.
import { UNARY_OPS, UNARY_WGSL, type UnaryDef, type UnaryOp } from "./elementwise.js";

export type Activation = "none" | { [K in UnaryOp]: (typeof UNARY_OPS)[K] extends { activation: true } ? K : never }[UnaryOp];

/** "none", then the activations in table order; an activation's index is its epilogue code. */
export const ACTIVATIONS: readonly Activation[] = [
  "none",
  ...(Object.keys(UNARY_OPS) as UnaryOp[]).filter((op) => (UNARY_OPS[op] as UnaryDef).activation) as Activation[],
];

/** The WGSL functions the activations' expressions call. */
export const ACTIVATION_WGSL = UNARY_WGSL;

export function checkActivation(op: string, act: string): Activation {
  if (!(ACTIVATIONS as readonly string[]).includes(act)) {
    throw new Error(`${op}: unknown activation "${act}" (expected one of ${ACTIVATIONS.join(", ")})`);
  }
  return act as Activation;
}

/**
 * WGSL statements applying activation number `code` (a u32 expression) to
 * the f32 variable `v`, returning the result: a switch over the table.
 */
export function activationSwitchWgsl(code: string): string {
  const cases = ACTIVATIONS.slice(1).map((act, i) => `    case ${i + 1}u: { return ${UNARY_OPS[act as UnaryOp].forward}; }`);
  return `switch ${code} {\n${cases.join("\n")}\n    default: { return v; }\n  }`;
}
