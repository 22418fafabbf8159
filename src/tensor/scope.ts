// Scopes free intermediates: every tensor created inside `scope(fn)` is
// disposed when fn returns, except the tensors found in its result (which
// move to the enclosing scope) and those passed to `keep()`.
import type { Tensor } from "./tensor.js";

const stack: Set<Tensor>[] = [];

/** Marks tensors (a brand, not the class name: bundlers rename classes). */
export const TENSOR_BRAND: unique symbol = Symbol.for("segvol.tensor");

export function trackInScope(t: Tensor): void {
  stack[stack.length - 1]?.add(t);
}

/** Exempts a tensor from disposal by the scopes it is in. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value === null || typeof value !== "object" || depth > 4) return;
  if (isTensor(value)) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

function isTensor(v: object): v is Tensor {
  return TENSOR_BRAND in v;
}

function close(frame: Set<Tensor>, result: unknown): void {
  const kept = new Set<Tensor>();
  collect(result, kept);
  for (const t of frame) if (!kept.has(t)) t.dispose();
  const parent = stack[stack.length - 1];
  if (parent) for (const t of kept) if (frame.has(t)) parent.add(t);
}

/** Runs fn and disposes the tensors it created but did not return. */
export function scope<T>(fn: () => T): T {
  const frame = new Set<Tensor>();
  stack.push(frame);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    close(frame, undefined);
    throw e;
  }
  stack.pop();
  close(frame, result);
  return result;
}

/** Async variant of `scope`; do not interleave two async scopes. */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const frame = new Set<Tensor>();
  stack.push(frame);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    stack.splice(stack.indexOf(frame), 1);
    close(frame, undefined);
    throw e;
  }
  stack.splice(stack.indexOf(frame), 1);
  close(frame, result);
  return result;
}
