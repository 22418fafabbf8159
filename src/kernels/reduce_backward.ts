// Backward of the reductions: broadcasts the upstream gradient g back to the
// reduced input's shape, times a scale (1 for sum, 1/n for mean):
//   out[i] = scale · g[broadcast index of i]
// g must broadcast to `shape` (reduced axes kept as 1, or missing in front).
// One load per output; outputs of any size are written in chunks.
import { gpu } from "../tensor/device.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";
import { inputSegments, outputChunks, segmentsWgsl } from "./binding.js";
import { checkInputs, fail } from "./check.js";
import { Params } from "./params.js";

const WG = 256;
const MAX_RANK = 8;

// The index map is unrolled for the (merged) rank, a WGSL constant: dynamic
// indexing into the uniform arrays made lavapipe's loop several times slower.
function wgsl(seg: ReturnType<typeof inputSegments>, rank: number): string {
  let index = "";
  for (let d = rank - 1; d >= 0; d--) {
    const at = (arr: string) => `p.${arr}[${d >> 2}][${d & 3}]`;
    index += `  ig += (rem % ${at("shape")}) * ${at("sg")}; rem = rem / ${at("shape")};\n`;
  }
  return /* wgsl */ `
struct P { n: u32, base: u32, rank: u32, scale: f32, shape: array<vec4<u32>, 2>, sg: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${segmentsWgsl("g", 2, seg)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  var rem = p.base + i;
  var ig = 0u;
${index}  out[i] = g_at(ig) * p.scale;
}`;
}

/** Drops unit axes and merges neighbours that are both broadcast or contiguous with each other. */
function mergeAxes(shape: readonly number[], strides: readonly number[]): { shape: number[]; strides: number[] } {
  const outShape: number[] = [];
  const outStrides: number[] = [];
  shape.forEach((d, a) => {
    if (d === 1) return;
    const st = strides[a]!;
    const k = outShape.length - 1;
    if (k >= 0 && ((st === 0 && outStrides[k] === 0) || (st !== 0 && outStrides[k] === st * d))) {
      outShape[k]! *= d;
      outStrides[k] = st;
    } else {
      outShape.push(d);
      outStrides.push(st);
    }
  });
  return { shape: outShape, strides: outStrides };
}

function padTo(v: readonly number[], fill: number): number[] {
  const out = [...v];
  while (out.length < MAX_RANK) out.push(fill);
  return out;
}

/** scale · g broadcast to `shape` (NumPy rules, g may have fewer axes). */
export function expandTo(g: Tensor, shape: readonly number[], scale = 1): Tensor {
  const op = "expand";
  checkInputs(op, [g]);
  const rank = shape.length;
  if (g.rank > rank || rank > MAX_RANK) fail(op, `cannot broadcast ${shapeStr(g.shape)} to ${shapeStr(shape)} (rank ≤ ${MAX_RANK})`);
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let a = rank - 1; a >= 0; a--) {
    const d = g.shape[g.rank - rank + a] ?? 1;
    if (d !== 1 && d !== shape[a]) fail(op, `cannot broadcast ${shapeStr(g.shape)} to ${shapeStr(shape)}`);
    strides[a] = d === 1 ? 0 : s;
    s *= d;
  }
  const out = Tensor.empty(shape);
  if (out.size === 0) return out;
  const gp = gpu();
  const seg = inputSegments(op, g);
  const m = mergeAxes(shape, strides);
  const pipe = gp.pipeline(`expand:${m.shape.length}:${seg.key}`, () => wgsl(seg, m.shape.length));
  for (const c of outputChunks(out)) {
    const params = new Params().u32(c.count).u32(c.start).u32(m.shape.length).f32(scale);
    for (const d of padTo(m.shape, 1)) params.u32(d);
    for (const st of padTo(m.strides, 0)) params.u32(st);
    gp.dispatch(pipe, [c.binding, ...seg.bindings], params.bytes(), gp.grid(Math.ceil(c.count / WG)));
  }
  return out;
}
