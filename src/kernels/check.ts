// Argument validation shared by the ops: errors name the op and the shapes,
// so a bad call fails at the boundary and never deep inside a kernel.
import { shapeStr, type DType, type Tensor } from "../tensor/tensor.js";

export class ShapeError extends Error {
  override name = "ShapeError";
}

export function fail(op: string, msg: string): never {
  throw new ShapeError(`${op}: ${msg}`);
}

/** Inputs are alive and of the expected dtype. */
export function checkInputs(op: string, tensors: readonly Tensor[], dtype: DType | readonly DType[] = "f32"): void {
  const allowed = typeof dtype === "string" ? [dtype] : dtype;
  for (const t of tensors) {
    t.assertAlive(op);
    if (!allowed.includes(t.dtype)) {
      fail(op, `expected dtype ${allowed.join(" or ")}, got ${t.dtype} for tensor ${shapeStr(t.shape)}`);
    }
  }
}

export function checkRank(op: string, t: Tensor, rank: number | readonly number[], name = "input"): void {
  const ok = typeof rank === "number" ? t.rank === rank : rank.includes(t.rank);
  if (!ok) fail(op, `${name} must have rank ${typeof rank === "number" ? rank : rank.join(" or ")}, got ${shapeStr(t.shape)}`);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Normalises a possibly negative axis for a tensor of the given rank. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(op, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}
