// Nearest-neighbour index maps exactly as PyTorch 1.13 computes them on the
// CPU (float32 scale `in/out`, then floor), and the 3-D resizes of the
// pipeline built from them. Nearest resizes only copy values, so a plain
// gather is exact; the same maps also carry prompts between spaces.
import type { RowReader, Vec3 } from "./types.js";

export type NearestMode = "nearest" | "nearest-exact";

/**
 * Source index of output index `dst` when resizing `inSize` → `outSize`.
 * nearest: floor(dst·s); nearest-exact: floor((dst + 0.5)·s); s = f32(in/out),
 * the product rounded to float32 as in PyTorch's `floorf`; clamped to in−1.
 */
export function sourceIndex(dst: number, inSize: number, outSize: number, mode: NearestMode): number {
  if (inSize === outSize) return dst;
  const scale = Math.fround(inSize / outSize);
  const x = mode === "nearest" ? Math.fround(Math.fround(dst) * scale) : Math.fround((dst + 0.5) * scale);
  return Math.min(Math.floor(x), inSize - 1);
}

/** The whole map of one axis: `map[dst]` = source index. */
export function indexMap(inSize: number, outSize: number, mode: NearestMode): Int32Array {
  const map = new Int32Array(outSize);
  for (let d = 0; d < outSize; d++) map[d] = sourceIndex(d, inSize, outSize, mode);
  return map;
}

/** Throws unless `values` holds exactly the elements of a C-order array of `shape`. */
function checkFills(fn: string, what: string, values: Float32Array, shape: Vec3): void {
  const n = shape[0] * shape[1] * shape[2];
  if (values.length !== n) throw new Error(`${fn}: ${values.length} ${what} values do not fill [${shape.join(", ")}] (${n} needed)`);
}

/** The rows of a C-order [D, H, W] array. */
export function arrayRows(src: Float32Array, shape: Vec3): RowReader {
  return (d, h, w0, w1, out, at) => {
    const row = (d * shape[1] + h) * shape[2];
    out.set(src.subarray(row + w0, row + w1), at);
  };
}

/** Nearest resize of a C-order [D, H, W] volume (an array, or read row by row) on the CPU. */
export function resizeNearest(src: Float32Array | RowReader, inShape: Vec3, outShape: Vec3, mode: NearestMode): Float32Array {
  const [di, hi, wi] = inShape;
  const [dO, hO, wO] = outShape;
  if (typeof src !== "function") checkFills("resizeNearest", "source", src, inShape);
  const rows = typeof src === "function" ? src : arrayRows(src, inShape);
  const md = indexMap(di, dO, mode), mh = indexMap(hi, hO, mode), mw = indexMap(wi, wO, mode);
  const out = new Float32Array(dO * hO * wO);
  // One source row at a time; upsampling repeats it for consecutive output rows.
  const line = new Float32Array(wi);
  let lineAt = -1;
  let o = 0;
  for (let d = 0; d < dO; d++) {
    for (let h = 0; h < hO; h++) {
      const r = md[d]! * hi + mh[h]!;
      if (r !== lineAt) {
        rows(md[d]!, mh[h]!, 0, wi, line, 0);
        lineAt = r;
      }
      for (let w = 0; w < wO; w++) out[o++] = line[mw[w]!]!;
    }
  }
  return out;
}

/**
 * Nearest resize of `src` [D, H, W] to `outShape`, written into the sub-box
 * of `dst` (C-order, shape `dstShape`) that starts at `offset`: pastes the
 * zoom-out logits back into the full volume without an intermediate.
 */
export function resizeNearestInto(
  src: Float32Array,
  inShape: Vec3,
  outShape: Vec3,
  mode: NearestMode,
  dst: Float32Array,
  dstShape: Vec3,
  offset: Vec3,
): void {
  checkFills("resizeNearestInto", "source", src, inShape);
  checkFills("resizeNearestInto", "destination", dst, dstShape);
  if (outShape.some((n, a) => offset[a]! < 0 || offset[a]! + n > dstShape[a]!)) {
    throw new Error(`resizeNearestInto: a [${outShape.join(", ")}] box at [${offset.join(", ")}] does not fit in [${dstShape.join(", ")}]`);
  }
  const [, hi, wi] = inShape;
  const [dO, hO, wO] = outShape;
  const md = indexMap(inShape[0], dO, mode), mh = indexMap(hi, hO, mode), mw = indexMap(wi, wO, mode);
  const rowAt = (d: number, h: number) => ((offset[0] + d) * dstShape[1] + offset[1] + h) * dstShape[2] + offset[2];
  // Upsampling repeats whole rows and planes: gather each distinct one once, copy the repeats.
  for (let d = 0; d < dO; d++) {
    if (d > 0 && md[d] === md[d - 1]) {
      for (let h = 0; h < hO; h++) dst.copyWithin(rowAt(d, h), rowAt(d - 1, h), rowAt(d - 1, h) + wO);
      continue;
    }
    for (let h = 0; h < hO; h++) {
      const o = rowAt(d, h);
      if (h > 0 && mh[h] === mh[h - 1]) {
        dst.copyWithin(o, rowAt(d, h - 1), rowAt(d, h - 1) + wO);
        continue;
      }
      const row = (md[d]! * hi + mh[h]!) * wi;
      for (let w = 0; w < wO; w++) dst[o + w] = src[row + mw[w]!]!;
    }
  }
}
