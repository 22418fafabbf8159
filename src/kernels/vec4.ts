// Binding several same-sized f32 tensors for an in-place elementwise kernel
// that reads and writes them four values at a time (one vec4 load instead of
// four scalar loads: lavapipe pays per load). Tensors larger than one storage
// binding are processed in chunks; every tensor is bound at the same window.
// Window sizes are rounded up to 16 bytes (storage buffers come in 256-byte
// size classes, so the rounded window stays inside the buffer); kernels mask
// the lanes past the tensor's end with `lanes(n, i)` and write them back
// unchanged.
import { outputChunks } from "./binding.js";
import type { Tensor } from "../tensor/tensor.js";

export interface Vec4Chunk {
  /** First element of the chunk (a multiple of 4). */
  start: number;
  /** Elements in the chunk. */
  count: number;
  /** One binding per tensor, in the order given. */
  bindings: GPUBufferBinding[];
}

/** Chunks covering `tensors[0]`, each binding every tensor over the same element window. */
export function vec4Chunks(tensors: readonly Tensor[]): Vec4Chunk[] {
  const first = tensors[0]!;
  return outputChunks(first, 4).map((c) => ({
    start: c.start,
    count: c.count,
    bindings: tensors.map((t) => {
      const offset = c.start * 4;
      const size = Math.min(Math.ceil((c.count * 4) / 16) * 16, t.buffer.size - offset);
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
