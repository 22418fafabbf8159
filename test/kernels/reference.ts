// Plain-TS references for the resampling, reduction and layout kernels, on
// small sizes only (used by the chunked-binding and large-volume tests).
// Written from PyTorch's documented semantics, independently of the kernels.

const f = Math.fround;

export type RefMode = "trilinear" | "nearest" | "nearest-exact";

/** Source index (nearest modes) or [i0, i1, lambda] (trilinear) of one axis, as PyTorch's CPU kernel computes it. */
export function refAxis(dst: number, inSize: number, outSize: number, mode: RefMode, align: boolean): [number, number, number] {
  if (mode !== "trilinear") {
    const scale = f(inSize / outSize);
    const s = mode === "nearest" ? f(dst * scale) : f((dst + 0.5) * scale);
    const i = Math.min(Math.floor(s), inSize - 1);
    return [i, i, 0];
  }
  let src: number;
  if (align) src = outSize > 1 ? ((inSize - 1) / (outSize - 1)) * dst : 0;
  else src = Math.max(0, (inSize / outSize) * (dst + 0.5) - 0.5);
  const i0 = Math.min(Math.floor(src), inSize - 1);
  const i1 = Math.min(i0 + 1, inSize - 1);
  return [i0, i1, src - i0];
}

/** One output element of a 3-D resize of x[planes, D, H, W] (plane-major). */
export function refResizeAt(
  x: ArrayLike<number>,
  inDims: readonly [number, number, number],
  outDims: readonly [number, number, number],
  plane: number,
  d: number,
  h: number,
  w: number,
  mode: RefMode,
  align = false,
): number {
  const [D, H, W] = inDims;
  const ad = refAxis(d, D, outDims[0], mode, align);
  const ah = refAxis(h, H, outDims[1], mode, align);
  const aw = refAxis(w, W, outDims[2], mode, align);
  const at = (i: number, j: number, k: number) => x[((plane * D + i) * H + j) * W + k]!;
  let v = 0;
  for (const [di, dw] of [[ad[0], 1 - ad[2]], [ad[1], ad[2]]] as const) {
    for (const [hi, hw] of [[ah[0], 1 - ah[2]], [ah[1], ah[2]]] as const) {
      for (const [wi, ww] of [[aw[0], 1 - aw[2]], [aw[1], aw[2]]] as const) {
        v += dw * hw * ww * at(di, hi, wi);
      }
    }
  }
  return v;
}

export function refResize(
  x: ArrayLike<number>,
  planes: number,
  inDims: readonly [number, number, number],
  outDims: readonly [number, number, number],
  mode: RefMode,
  align = false,
): Float64Array {
  const [OD, OH, OW] = outDims;
  const out = new Float64Array(planes * OD * OH * OW);
  let o = 0;
  for (let p = 0; p < planes; p++)
    for (let d = 0; d < OD; d++)
      for (let h = 0; h < OH; h++) for (let w = 0; w < OW; w++) out[o++] = refResizeAt(x, inDims, outDims, p, d, h, w, mode, align);
  return out;
}

/** Strides of a contiguous shape. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** Multi-index of flat index i in shape. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    c[a] = i % shape[a]!;
    i = Math.floor(i / shape[a]!);
  }
  return c;
}

export function refReduceAxis(x: ArrayLike<number>, shape: readonly number[], axis: number, op: "sum" | "mean" | "min" | "max"): Float64Array {
  const n = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let acc = op === "min" ? Infinity : op === "max" ? -Infinity : 0;
      for (let k = 0; k < n; k++) {
        const v = x[(o * n + k) * inner + i]!;
        acc = op === "min" ? Math.min(acc, v) : op === "max" ? Math.max(acc, v) : acc + v;
      }
      out[o * inner + i] = op === "mean" ? acc / n : acc;
    }
  return out;
}

/**
 * g (of shape gShape, NumPy-broadcastable to `shape`) broadcast to `shape`
 * times `scale`, each element rounded to f32 as the kernel's one f32
 * multiplication rounds it (scale itself passed as an f32).
 */
export function refBroadcast(g: ArrayLike<number>, gShape: readonly number[], shape: readonly number[], scale: number): Float32Array {
  const gs = strides(gShape);
  const lead = shape.length - gShape.length;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const s32 = Math.fround(scale);
  for (let i = 0; i < out.length; i++) {
    const c = unravel(i, shape);
    let ig = 0;
    gShape.forEach((d, a) => (ig += d === 1 ? 0 : c[lead + a]! * gs[a]!));
    out[i] = Math.fround(g[ig]! * s32);
  }
  return out;
}
