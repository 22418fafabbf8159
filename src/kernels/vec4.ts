// Binding several same-sized tensors (f32 or f16, mixed) for an elementwise
// kernel that reads and writes them four values at a time (one vec4 load
// instead of four scalar loads: lavapipe pays per load). Tensors larger than
// one storage binding are processed in chunks; every tensor is bound at the
// same element window. Windows are sized for the widest element (so every
// tensor's window fits one binding) and start on a multiple of 256 bytes of
// the narrowest (so every tensor's offset is aligned). Window sizes are
// rounded up to a whole vec4 (storage buffers come in 256-byte size classes,
// so the rounded window stays inside the buffer); kernels mask the lanes past
// the tensor's end with `lanes(n, i)` and write them back unchanged.
import { inputSegments, outputChunks, type Segments } from "./binding.js";
import { BYTES_PER_ELEMENT, type Tensor } from "../tensor/tensor.js";

export interface Vec4Chunk {
  /** First element of the chunk (a multiple of 4). */
  start: number;
  /** Elements in the chunk. */
  count: number;
  /** One binding per tensor, in the order given. */
  bindings: GPUBufferBinding[];
}

/** Chunks covering same-sized tensors, each binding every tensor over the same element window. */
export function vec4Chunks(tensors: readonly Tensor[]): Vec4Chunk[] {
  const sizes = tensors.map((t) => BYTES_PER_ELEMENT[t.dtype]);
  const widest = tensors[sizes.indexOf(Math.max(...sizes))]!;
  // Whole vec4s, and 256 bytes of the narrowest element (64 f32, 128 f16).
  const multiple = Math.max(4, 256 / Math.min(...sizes));
  return outputChunks(widest, multiple).map((c) => ({
    start: c.start,
    count: c.count,
    bindings: tensors.map((t, j) => {
      const vec = 4 * sizes[j]!;
      const offset = c.start * sizes[j]!;
      const size = Math.min(Math.ceil((c.count * sizes[j]!) / vec) * vec, t.buffer.size - offset);
      return { buffer: t.buffer, offset, size };
    }),
  }));
}

/** WGSL: which of the four lanes of vec4 `i` are below `n`. */
export const LANES_WGSL = /* wgsl */ `
fn lanes(n: u32, i: u32) -> vec4<bool> {
  let base = i * 4u;
  return vec4<bool>(base < n, base + 1u < n, base + 2u < n, base + 3u < n);
}
`;

/**
 * An input bound for vec4 reads (`NAME_at(i)` returns the i-th vec4, the
 * segment layout counted in vec4s): inputSegments' bindings with each size
 * rounded up to a whole vec4, so the last, partial vec4 of a tensor whose
 * size is not a multiple of 4 is inside its binding (a robust access past a
 * binding's end would read another vec4). Segments hold a power of two of at
 * least 4 elements, so no vec4 straddles two.
 */
export function vec4Segments(op: string, t: Tensor): Segments {
  const seg = inputSegments(op, t);
  const vec = 4 * BYTES_PER_ELEMENT[t.dtype];
  const bindings = seg.bindings.map((b) => ({ ...b, size: Math.min(Math.ceil(b.size! / vec) * vec, t.buffer.size - b.offset!) }));
  return { ...seg, bindings, shift: seg.count > 1 ? seg.shift - 2 : 0 };
}
