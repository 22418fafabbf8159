// The sum of several same-shaped tensors (all f32 or all f16) in one pass.
// Gradient accumulation is its use: a parameter that a training step uses k
// times (one decoder batch per prompt layout) receives k gradients, and
// summing them pairwise costs k − 1 dispatches. Up to MAX_INPUTS tensors
// (fewer where the adapter has fewer storage bindings) are added per
// dispatch, left to right in f32, so an f32 result is bitwise that of the
// pairwise chain ((a + b) + c …); longer lists continue from the partial
// sum. An f16 sum is rounded once, at the end: its partial sums between
// dispatches are kept in f32 (precision.ts: f16 is storage only). Tensors
// larger than one binding are processed window by window, every input bound
// over the output's window.
import { gpu } from "../tensor/device.js";
import { Tensor, numel, shapeStr } from "../tensor/tensor.js";
import { fail, sameShape } from "./check.js";
import { Params } from "./params.js";
import { enableF16, precisionOf, type Precision } from "./precision.js";
import { deviceProfile, variantPipeline } from "./profile.js";
import { vec4Chunks } from "./vec4.js";
import { ELEMENTWISE_WG, chooseElementwise, perLoop, threadsFor, type ElementwiseVariant } from "./elementwise.js";

const MAX_INPUTS = 8;

/** One dispatch: the dtype of each input (a carried f32 partial sum, then the tensors) and of its output, and the elementwise variant. */
interface AddNSpec {
  inputs: Precision[];
  out: Precision;
  vec: 1 | 4;
  per: number;
}

function addNWgsl(s: AddNSpec): string {
  const vec = (t: string) => (s.vec === 4 ? `vec4<${t}>` : t);
  const decl = s.inputs.map((t, j) => `@group(0) @binding(${2 + j}) var<storage, read> x${j}: array<${vec(t)}>;`).join("\n");
  const sum = s.inputs.map((_, j) => `${vec("f32")}(x${j}[i])`).join(" + ");
  return /* wgsl */ `${enableF16([s.out, ...s.inputs])}
struct P { n: u32, threads: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${vec(s.out)}>;
${decl}
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${perLoop(s, `out[i] = ${vec(s.out)}(${sum});`)}
}`;
}

/**
 * xs[0] + xs[1] + … (left to right) as a new tensor of their dtype; one
 * tensor gives a copy. `variant` forces knobs of the elementwise variant
 * (vec4 windows reach past a tensor's end into its buffer's unused tail).
 */
export function addN(xs: readonly Tensor[], variant?: Partial<ElementwiseVariant>): Tensor {
  const op = "addN";
  if (xs.length === 0) fail(op, "no tensors to add");
  const dtype = precisionOf(op, xs);
  const shape = xs[0]!.shape;
  const bad = xs.find((x) => !sameShape(x.shape, shape));
  if (bad) fail(op, `tensors must share one shape: ${shapeStr(shape)} and ${shapeStr(bad.shape)}`);
  if (numel(shape) === 0) return Tensor.empty(shape, dtype);
  const g = gpu();
  const v = chooseElementwise(deviceProfile(), variant);
  const per = Math.max(2, Math.min(MAX_INPUTS, g.maxStorageBindings - 1));
  let acc: Tensor | null = null;
  let rest = [...xs];
  do {
    // The partial sum so far comes first, keeping the left-to-right order.
    const part: Tensor[] = acc ? [acc, ...rest.slice(0, per - 1)] : rest.slice(0, per);
    rest = rest.slice(acc ? per - 1 : per);
    const out = Tensor.empty(shape, rest.length > 0 ? "f32" : dtype);
    const spec: AddNSpec = { inputs: part.map((x) => x.dtype as Precision), out: out.dtype as Precision, vec: v.vec, per: v.per };
    const pipe = variantPipeline("add_n", spec, addNWgsl);
    for (const c of vec4Chunks([out, ...part])) {
      const threads = threadsFor(v, c.count);
      g.dispatch(pipe, c.bindings, new Params().u32(c.count).u32(threads).u32(0).u32(0).bytes(), g.grid(Math.ceil(threads / ELEMENTWISE_WG)));
    }
    acc?.dispose();
    acc = out;
  } while (rest.length > 0);
  return acc!;
}
