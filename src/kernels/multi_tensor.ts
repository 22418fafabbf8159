// "Multi-tensor apply": one dispatch runs an elementwise kernel over several
// tensors. The optimiser and gradient clipping touch every parameter tensor
// (about 170 in the demo model), and at one dispatch per tensor and pass they
// were 508 of a demo training step's 2,187 dispatches; each dispatch has a
// fixed host cost (bench/dispatch.bench.ts) that bounds a step on a fast GPU.
//
// A batch binds up to `perBatch` tensors (or binding-sized chunks of them,
// from vec4Chunks) and lays their workgroups end to end: tensor j owns the
// workgroups [start_j, start_j + blocks_j). A workgroup finds its j from the
// starts in the uniform block, and the kernel `switch`es on j to the
// bindings of that tensor (WGSL cannot index bindings at run time), so the
// generated shader holds one copy of the per-tensor code per slot. A
// pipeline is compiled per batch size (the last batch is usually smaller).
import type { Params } from "./params.js";

/** The most tensors one batch binds; more would only lengthen the shader and its compile on lavapipe. */
export const MAX_PER_BATCH = 8;

export interface MultiBatch<T> {
  items: T[];
  /** First workgroup of each item. */
  starts: number[];
  /** Workgroups of the whole batch. */
  workgroups: number;
}

/** Splits items into batches of at most `perBatch`, `blocks(item)` workgroups each item. */
export function multiBatches<T>(items: readonly T[], perBatch: number, blocks: (item: T) => number): MultiBatch<T>[] {
  const n = Math.max(1, Math.min(MAX_PER_BATCH, Math.floor(perBatch)));
  const out: MultiBatch<T>[] = [];
  for (let b = 0; b < items.length; b += n) {
    const batch = items.slice(b, b + n);
    const starts: number[] = [];
    let w = 0;
    for (const it of batch) {
      starts.push(w);
      w += blocks(it);
    }
    out.push({ items: batch, starts, workgroups: w });
  }
  return out;
}

/** vec4<u32> slots for `n` u32 values. */
const vecs = (n: number) => Math.ceil(n / 4);

/**
 * WGSL declarations that go at the end of the kernel's uniform struct:
 * `counts` (elements of each item) and `starts` (first workgroup of each).
 */
export function tableFields(size: number): string {
  return `counts: array<vec4<u32>, ${vecs(size)}>, starts: array<vec4<u32>, ${vecs(size)}>`;
}

/** WGSL helpers over the table (the uniform is `p`): `item_of(w)`, `count_of(j)`, `start_of(j)`. */
export function tableWgsl(size: number): string {
  return /* wgsl */ `
fn count_of(j: u32) -> u32 { return p.counts[j / 4u][j % 4u]; }
fn start_of(j: u32) -> u32 { return p.starts[j / 4u][j % 4u]; }
fn item_of(w: u32) -> u32 {
  var j = 0u;
  for (var k = 1u; k < ${size}u; k++) { if (w >= start_of(k)) { j = k; } }
  return j;
}`;
}

/** Appends the table to a uniform block whose scalar part is already a multiple of 16 bytes. */
export function tableParams(params: Params, counts: readonly number[], starts: readonly number[]): Params {
  const pad = (a: readonly number[]) => [...a, ...Array<number>(vecs(a.length) * 4 - a.length).fill(0)];
  for (const v of pad(counts)) params.u32(v);
  for (const v of pad(starts)) params.u32(v);
  return params;
}

/** `switch j { case 0u: { body(0) } … }` over the batch's slots. */
export function switchWgsl(size: number, body: (j: number) => string): string {
  const cases = Array.from({ length: size }, (_, j) => `    case ${j}u: { ${body(j)} }`).join("\n");
  return `switch j {\n${cases}\n    default: {}\n  }`;
}

/**
 * The entry point of an elementwise kernel over a batch: invocation i of
 * item j handles vec4 i of its n elements (past-the-end invocations and
 * spare workgroups return), runs `prelude`, then `body(j)` for its slot.
 */
export function elementwiseMainWgsl(wg: number, size: number, body: (j: number) => string, prelude = ""): string {
  return /* wgsl */ `
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.total) { return; }
  let j = item_of(w);
  let n = count_of(j);
  let i = (w - start_of(j)) * ${wg}u + t;
  if (i * 4u >= n) { return; }
  ${prelude}
  ${switchWgsl(size, body)}
}`;
}
