// A differentiable op, declared once, beside its kernels, in Tensor terms:
// how to run it, what its backward reads, and its backward. src/autograd
// runs any such definition on Vars (`apply` in src/autograd/op_inputs.ts),
// recording the backward while a tape records; the kernels know nothing of
// Vars or tapes.
import type { Tensor } from "../tensor/tensor.js";

/** Inputs of an op: tensors, null where an optional input (a bias) is absent. */
export type OpInputs = readonly (Tensor | null)[];

/** What save and backward know besides the tensors. */
export interface OpContext<A> {
  readonly attrs: A;
  /** Whether the gradient w.r.t. each input will be asked for (false for an absent input). */
  readonly wants: readonly boolean[];
  /** Each input's shape at forward time (null for an absent input): by backward time an input's handle may be freed. */
  readonly shapes: readonly (readonly number[] | null)[];
}

export interface OpDef<I extends OpInputs, A> {
  /** Names the op in errors and on the tape; may depend on the attributes. */
  readonly name: string | ((attrs: A) => string);
  /** Runs the forward kernel(s); returns a new tensor (or a view). */
  forward(inputs: I, attrs: A): Tensor;
  /**
   * The tensors backward reads (inputs, the output, or tensors made here),
   * given which gradients are wanted; called only when some are. The tape
   * keeps its own handles on them until the backward ran. Default: none.
   */
  save?(inputs: I, out: Tensor, ctx: OpContext<A>): readonly (Tensor | null)[];
  /**
   * The gradient w.r.t. each input (null where not wanted), from the saved
   * tensors (in save's order) and the output's gradient. Temporaries are
   * freed, and unwanted gradients dropped, by the caller. Absent: the op is
   * not differentiable (its result is a constant, as threshold's).
   */
  backward?(saved: readonly (Tensor | null)[], gradOut: Tensor, ctx: OpContext<A>): (Tensor | null)[];
}

/** Declares an op (an identity: it gives the definition its type). */
export function defineOp<I extends OpInputs, A = Record<string, never>>(def: OpDef<I, A>): OpDef<I, A> {
  return def;
}

/** The op's name for the given attributes. */
export function opName<I extends OpInputs, A>(def: OpDef<I, A>, attrs: A): string {
  return typeof def.name === "string" ? def.name : def.name(attrs);
}
