// Ops that work along one axis (softmax and its backward, reduce) view the tensor as
// [outer, L, inner] and give each (outer, inner) row of L elements, spaced
// `inner` apart, to one workgroup (or subgroup). This module holds what they
// share: the argument checks and the row geometry, and the WGSL for a row's
// first element and for the workgroup tree reduction.
import { gpu } from "../tensor/device.js";
import { shapeStr, type Tensor } from "../tensor/tensor.js";
import { fail, normAxis } from "./check.js";

export interface AxisRows {
  /** Elements per row (the axis length). */
  len: number;
  /** Stride between a row's elements (the product of the dims after the axis). */
  inner: number;
  rows: number;
}

/** The row geometry of `x` along `axis`, refusing scalars and tensors beyond one binding. */
export function axisRows(op: string, x: Tensor, axis: number, what = "x"): AxisRows {
  if (x.rank === 0) fail(op, `needs at least one axis, got ${shapeStr(x.shape)}`);
  const a = normAxis(op, axis, x.rank);
  const g = gpu();
  if (x.byteLength > g.maxBindingBytes) {
    fail(op, `${what} ${shapeStr(x.shape)} (${x.byteLength} bytes) exceeds one storage binding (${g.maxBindingBytes} bytes)`);
  }
  const len = x.shape[a]!;
  const inner = x.shape.slice(a + 1).reduce((p, d) => p * d, 1);
  return { len, inner, rows: x.size / Math.max(1, len) };
}

/**
 * A whole-tensor binding, its size rounded up to 16 bytes (at least 16): a
 * storage binding's size must be a multiple of 4 (an odd count of f16 is
 * not), and a vec4 view of a tiny tensor needs one whole vector. Pooled
 * buffers are multiples of 256 bytes, so the rounding stays inside them.
 */
export function wholeBinding(t: Tensor): GPUBufferBinding {
  return { buffer: t.buffer, offset: 0, size: Math.max(16, Math.ceil(t.byteLength / 16) * 16) };
}

/**
 * The columns an invocation of a columns kernel (reduce, softmax) owns on an
 * axis of inner size `inner` under a variant's `cols` (at most 8): the
 * largest of 8 and 4 up to it that divides inner, whose vec4s then never
 * straddle two of the axis' rows; 0 where none does or the axis is the last
 * (inner = 1), where the op's other kernels run.
 */
export function columnsFor(cols: number, inner: number): number {
  return inner === 1 ? 0 : ([8, 4].find((c) => c <= cols && inner % c === 0) ?? 0);
}

/** WGSL: the uniform block `p` (rows, len, inner) and `row_base(r)`, the index of row r's first element. */
export const ROWS_WGSL = /* wgsl */ `
struct P { rows: u32, len: u32, inner: u32 }
@group(0) @binding(0) var<uniform> p: P;
fn row_base(r: u32) -> u32 {
  let o = r / p.inner;
  return o * p.len * p.inner + (r - o * p.inner);
}`;

/**
 * WGSL statements that reduce `red[0..wg)` (workgroup memory of type T)
 * into red[0] with `combine(a, b)`; every lane must reach them.
 */
export function treeReduceWgsl(wg: number, combine: (a: string, b: string) => string): string {
  return `workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = ${combine("red[lid]", "red[lid + s]")}; }
    workgroupBarrier();
  }`;
}
