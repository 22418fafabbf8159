// What every differentiable op (ops.ts, attention_ops.ts, conv_ops.ts) does
// with its inputs before it records a node: refuse what is not a live Var,
// ask which gradients will be wanted, and take views to save; `apply` does
// all of it for an op declared with `defineOp` beside its kernels.
import { opName, type OpContext, type OpDef, type OpInputs } from "../kernels/op.js";
import { scope } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import { shapeStr } from "../tensor/tensor.js";
import { Var, customOp, isRecording } from "./autograd.js";

/** Throws, naming op, unless every input (null: an absent optional one) is a Var whose value is not freed. */
export function live(op: string, vars: readonly (Var | null)[]): void {
  for (const v of vars) {
    if (v === null) continue;
    if (!(v instanceof Var)) throw new Error(`${op}: inputs must be Vars (wrap tensors with param() or constant())`);
    if (v.value.disposed) {
      throw new Error(`${op}: input Var ${shapeStr(v.shape)} was freed (an intermediate whose graph backward already consumed? call retain() on it first)`);
    }
  }
}

/** Whether a gradient w.r.t. v will be asked for. */
export const wants = (v: Var | null): boolean => v !== null && v.requiresGrad && isRecording();

/** A handle of its own on t's storage, for a node to save. */
export const view = (t: Tensor): Tensor => t.reshape(t.shape);

/** Vars for an op's inputs: a Var per tensor, Var or null per optional input. */
export type VarsOf<I extends OpInputs> = { [K in keyof I]: null extends I[K] ? Var | null : Var };

/**
 * Runs a differentiable op (src/kernels, `defineOp`) on Vars: its forward
 * on their values and, while recording, a node whose backward is the op's,
 * saving views of what the op's `save` names.
 */
export function apply<I extends OpInputs, A>(def: OpDef<I, A>, vars: VarsOf<I>, attrs: A): Var {
  const name = opName(def, attrs);
  const xs = vars as unknown as readonly (Var | null)[];
  live(name, xs);
  const out = def.forward(xs.map((v) => v?.value ?? null) as unknown as I, attrs);
  const backward = def.backward;
  if (!backward) return customOp(name, [], out, () => []);
  const ctx: OpContext<A> = { attrs, wants: xs.map(wants), shapes: xs.map((v) => (v ? [...v.shape] : null)) };
  const save = def.save;
  // Own handles on what backward reads; tensors save made are freed with the scope (the views keep their storage).
  const saved = save && ctx.wants.some(Boolean) ? scope(() => save(xs.map((v) => v?.value ?? null) as unknown as I, out, ctx).map((t) => (t ? view(t) : null))) : [];
  const inputs = xs.filter((v): v is Var => v !== null);
  return customOp(name, inputs, out, (g) => {
    const grads = backward(saved, g, ctx);
    return xs.flatMap((v, i) => (v === null ? [] : [ctx.wants[i] ? (grads[i] ?? null) : null]));
  }, saved.filter((t): t is Tensor => t !== null));
}
