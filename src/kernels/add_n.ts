// The sum of several same-shaped f32 tensors in one pass. Gradient
// accumulation is its use: a parameter that a training step uses k times
// (one decoder batch per prompt layout) receives k gradients, and summing
// them pairwise costs k − 1 dispatches. Up to MAX_INPUTS tensors (fewer where
// the adapter has fewer storage bindings) are added per dispatch, left to
// right, so the result is bitwise that of the pairwise chain ((a + b) + c …);
// longer lists continue from the partial sum. Tensors larger than one
// binding are processed window by window, every input bound over the
// output's window.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { outputChunks } from "./binding.js";
import { checkInputs, fail, sameShape } from "./check.js";
import { Params } from "./params.js";
import { variantPipeline } from "./profile.js";

const WG = 256;
const MAX_INPUTS = 8;

function addNWgsl(n: number): string {
  const decl = Array.from({ length: n }, (_, j) => `@group(0) @binding(${2 + j}) var<storage, read> x${j}: array<f32>;`).join("\n");
  const sum = Array.from({ length: n }, (_, j) => `x${j}[i]`).join(" + ");
  return /* wgsl */ `
struct P { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${decl}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  out[i] = ${sum};
}`;
}

/** xs[0] + xs[1] + … (left to right) as a new tensor; one tensor gives a copy. */
export function addN(xs: readonly Tensor[]): Tensor {
  const op = "addN";
  if (xs.length === 0) fail(op, "no tensors to add");
  checkInputs(op, xs);
  const shape = xs[0]!.shape;
  const bad = xs.find((x) => !sameShape(x.shape, shape));
  if (bad) fail(op, `tensors must share one shape: ${shapeStr(shape)} and ${shapeStr(bad.shape)}`);
  const g = gpu();
  const per = Math.max(2, Math.min(MAX_INPUTS, g.maxStorageBindings - 1));
  let acc: Tensor | null = null;
  let rest = [...xs];
  do {
    // The partial sum so far comes first, keeping the left-to-right order.
    const part: Tensor[] = acc ? [acc, ...rest.slice(0, per - 1)] : rest.slice(0, per);
    rest = rest.slice(acc ? per - 1 : per);
    const out = Tensor.empty(shape);
    const pipe = variantPipeline("add_n", { inputs: part.length }, (s) => addNWgsl(s.inputs));
    for (const c of outputChunks(out)) {
      const inputs = part.map((x) => ({ buffer: x.buffer, offset: c.binding.offset, size: c.binding.size }));
      g.dispatch(pipe, [c.binding, ...inputs], new Params().u32(c.count).u32(0).u32(0).u32(0).bytes(), g.grid(Math.ceil(c.count / WG)));
    }
    acc?.dispose();
    acc = out;
  } while (rest.length > 0);
  return acc!;
}
