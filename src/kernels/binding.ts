// How tensors are bound to kernels when they may exceed one storage binding
// (128 MiB on lavapipe; a 512×512×400 f32 volume is 400 MiB).
//  - Outputs are written in chunks: each dispatch binds one window of the
//    output and receives the window's first element index as a parameter.
//  - Inputs are bound as up to N "segments" (windows of 2^shift elements);
//    the WGSL accessor `NAME_at(i)` picks the segment, so a kernel can read
//    any element of a large input. Small inputs use one segment and pay nothing.
import { gpu } from "../tensor/device.js";
import { BYTES_PER_ELEMENT, shapeStr, type Tensor } from "../tensor/tensor.js";
import { fail } from "./check.js";

export interface OutputChunk {
  /** First element of the chunk. */
  start: number;
  /** Elements in the chunk. */
  count: number;
  binding: GPUBufferBinding;
}

/** Largest element count a binding may hold, rounded to a multiple of `multiple`. */
function chunkElems(t: Tensor, multiple: number): number {
  const g = gpu();
  const esize = BYTES_PER_ELEMENT[t.dtype];
  // Chunk starts must be offset-aligned: use a power-of-two element count ≥ alignment.
  const align = Math.max(1, g.offsetAlignment / esize, 256 / esize);
  let n = Math.floor(g.maxBindingBytes / esize);
  n = Math.floor(n / align) * align;
  const step = lcm(align, multiple);
  n = Math.floor(n / step) * step;
  if (n <= 0) fail("bind", `a row of ${multiple} elements does not fit one storage binding (${g.maxBindingBytes} bytes)`);
  return n;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/** Splits an output tensor into binding-sized chunks whose lengths are multiples of `multiple`. */
export function outputChunks(t: Tensor, multiple = 1): OutputChunk[] {
  const esize = BYTES_PER_ELEMENT[t.dtype];
  if (t.byteLength <= gpu().maxBindingBytes) {
    return [{ start: 0, count: t.size, binding: { buffer: t.buffer, offset: 0, size: Math.max(4, ceil4(t.byteLength)) } }];
  }
  const per = chunkElems(t, multiple);
  const out: OutputChunk[] = [];
  for (let start = 0; start < t.size; start += per) {
    const count = Math.min(per, t.size - start);
    out.push({ start, count, binding: { buffer: t.buffer, offset: start * esize, size: ceil4(count * esize) } });
  }
  return out;
}

function ceil4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** What a segmented input's WGSL depends on: its number of segments and their size (a value of kernel variants). */
export interface SegmentLayout {
  count: number;
  /** log2 of the elements per segment (only meaningful when count > 1). */
  shift: number;
}

/** A tensor bound as one or more segments for random-access reads. */
export interface Segments extends SegmentLayout {
  bindings: GPUBufferBinding[];
  /** Cache-key fragment describing the segmentation. */
  key: string;
}

/** The layout of segments, without their bindings. */
export function layoutOf(seg: SegmentLayout): SegmentLayout {
  return { count: seg.count, shift: seg.shift };
}

export function inputSegments(op: string, t: Tensor): Segments {
  const g = gpu();
  const esize = BYTES_PER_ELEMENT[t.dtype];
  if (t.byteLength <= g.maxBindingBytes) {
    return { bindings: [{ buffer: t.buffer, offset: 0, size: Math.max(4, ceil4(t.byteLength)) }], count: 1, shift: 0, key: "s1" };
  }
  const shift = Math.floor(Math.log2(g.maxBindingBytes / esize));
  const per = 2 ** shift;
  const n = Math.ceil(t.size / per);
  // Leave room for the output and a few other inputs of the same kernel.
  const maxSegments = Math.max(1, g.maxStorageBindings - 4);
  if (n > maxSegments) {
    fail(op, `tensor ${shapeStr(t.shape)} (${t.byteLength} bytes) needs ${n} storage bindings; this adapter allows ${maxSegments}`);
  }
  const bindings: GPUBufferBinding[] = [];
  for (let s = 0; s < n; s++) {
    const count = Math.min(per, t.size - s * per);
    bindings.push({ buffer: t.buffer, offset: s * per * esize, size: ceil4(count * esize) });
  }
  return { bindings, count: n, shift, key: `s${n}x${shift}` };
}

/** A window of a tensor bound as one binding: element `base` of the tensor is element 0 of the binding. */
export interface InputWindow {
  binding: GPUBufferBinding;
  base: number;
}

/**
 * One binding holding elements [start, end) of `t`, starting at the
 * aligned element at or before `start`, or null where they do not fit one
 * binding. A kernel that knows which part of a large input a dispatch reads
 * binds that part as one window instead of every segment: its reads then
 * need no switch over the segments.
 */
export function inputWindow(t: Tensor, start: number, end: number): InputWindow | null {
  const g = gpu();
  const esize = BYTES_PER_ELEMENT[t.dtype];
  const align = Math.max(1, g.offsetAlignment / esize);
  const base = Math.floor(start / align) * align;
  const bytes = ceil4((end - base) * esize);
  if (start < 0 || end > t.size || end <= start || bytes > g.maxBindingBytes) return null;
  return { binding: { buffer: t.buffer, offset: base * esize, size: bytes }, base };
}

/**
 * WGSL declarations for a segmented input: bindings `first..first+n-1` named
 * `NAME0..`, plus `fn NAME_at(i: u32) -> T`.
 */
export function segmentsWgsl(name: string, first: number, seg: SegmentLayout, type = "f32"): string {
  const n = seg.count;
  let code = "";
  for (let s = 0; s < n; s++) code += `@group(0) @binding(${first + s}) var<storage, read> ${name}${s}: array<${type}>;\n`;
  if (n === 1) {
    code += `fn ${name}_at(i: u32) -> ${type} { return ${name}0[i]; }\n`;
  } else {
    const mask = 2 ** seg.shift - 1;
    code += `fn ${name}_at(i: u32) -> ${type} {\n  let o = i & ${mask}u;\n  switch (i >> ${seg.shift}u) {\n`;
    for (let s = 0; s < n - 1; s++) code += `    case ${s}u: { return ${name}${s}[o]; }\n`;
    code += `    default: { return ${name}${n - 1}[o]; }\n  }\n}\n`;
  }
  return code;
}
