// What every differentiable op (ops.ts, attention_ops.ts, conv_ops.ts) does
// with its inputs before it records a node: refuse what is not a live Var,
// ask which gradients will be wanted, and take views to save.
import type { Tensor } from "../tensor/tensor.js";
import { shapeStr } from "../tensor/tensor.js";
import { Var, isRecording } from "./autograd.js";

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
