// Backward of the embedding gather: a scatter-add of the upstream gradient
// rows into a zeroed [V, D] table gradient, without float atomics:
//   dTable[v, c] = Σ_{r : ids[r] = v} g[r, c]
// One invocation per (id position r, feature c). Only the first position of
// each distinct id writes, summing the rows of all its later repeats, so no
// two invocations write the same element. The cost is O(n²·D) id loads for
// n ids, independent of the vocabulary size V (the table is cleared with a
// buffer clear): fine for token counts like CLIP's 77, not for millions of ids.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { inputSegments, outputChunks, segmentsWgsl } from "./binding.js";
import { checkInputs, fail } from "./check.js";
import { Params } from "./params.js";

const WG = 256;

function wgsl(sg: ReturnType<typeof inputSegments>, si: ReturnType<typeof inputSegments>): string {
  return /* wgsl */ `
struct P { nIds: u32, dim: u32, vocab: u32, base: u32, count: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${segmentsWgsl("g", 2, sg)}
${segmentsWgsl("ids", 2 + sg.bindings.length, si, "i32")}
// Ids are clamped exactly as the forward gather clamps them.
fn id_at(r: u32) -> u32 { return u32(clamp(ids_at(r), 0, i32(p.vocab) - 1)); }
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.nIds * p.dim) { return; }
  let r = i / p.dim;
  let c = i % p.dim;
  let id = id_at(r);
  let o = id * p.dim + c;
  if (o < p.base || o >= p.base + p.count) { return; }
  for (var q = 0u; q < r; q++) {
    if (id_at(q) == id) { return; }
  }
  var acc = g_at(i);
  for (var q = r + 1u; q < p.nIds; q++) {
    if (id_at(q) == id) { acc += g_at(q * p.dim + c); }
  }
  out[o - p.base] = acc;
}`;
}

/**
 * Gradient of `gather(table, ids)` w.r.t. a [vocab, D] table: g is
 * [...ids.shape, D], ids i32 on the GPU.
 */
export function gatherBackward(g: Tensor, ids: Tensor, vocab: number): Tensor {
  const op = "gather_backward";
  checkInputs(op, [g]);
  checkInputs(op, [ids], "i32");
  const dim = g.shape[g.rank - 1];
  if (dim === undefined || g.rank !== ids.rank + 1 || ids.shape.some((d, a) => d !== g.shape[a])) {
    fail(op, `gradient ${shapeStr(g.shape)} must be [...ids.shape, D] for ids ${shapeStr(ids.shape)}`);
  }
  if (!Number.isInteger(vocab) || vocab <= 0) fail(op, `vocab ${vocab} must be a positive integer`);
  const out = Tensor.zeros([vocab, dim]);
  const n = ids.size;
  if (n === 0 || dim === 0) return out;
  const gp = gpu();
  const sg = inputSegments(op, g);
  const si = inputSegments(op, ids);
  const pipe = gp.pipeline(`gather_bwd:${sg.key}:${si.key}`, () => wgsl(sg, si));
  for (const c of outputChunks(out)) {
    const params = new Params().u32(n).u32(dim).u32(vocab).u32(c.start).u32(c.count);
    gp.dispatch(pipe, [c.binding, ...sg.bindings, ...si.bindings], params.bytes(), gp.grid(Math.ceil((n * dim) / WG)));
  }
  return out;
}
