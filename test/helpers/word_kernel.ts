// A one-expression test kernel for WGSL helpers that work on bits
// (src/kernels/udiv.ts, f16bits.ts): each invocation reads one vec4<u32> of
// the input as `x` and stores `expr` to its output element, so a test
// checks the helper on the device against a host model, value by value.
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";

export interface WordKernel {
  /** Pipeline cache key. */
  key: string;
  /** WGSL the expression calls (the helper under test). */
  wgsl: string;
  /** The output element: one u32 or one vec4<f32> an invocation. */
  out: "u32" | "vec4<f32>";
  /** WGSL of the output element, from `x` (the invocation's vec4<u32>) and, with `mode`, the uniform `p.mode`. */
  expr: string;
  mode?: boolean;
}

/** Runs `k` over `inputs` (four words an invocation), with `p.mode` = `mode`, and returns the words it wrote. */
export async function runWordKernel(k: WordKernel, inputs: Uint32Array, mode = 0): Promise<Uint32Array> {
  const g = gpu();
  const invocations = inputs.length / 4;
  const outWords = k.out === "u32" ? 1 : 4;
  const code = /* wgsl */ `${k.wgsl}
${k.mode ? "struct P { mode: u32 }\n@group(0) @binding(0) var<uniform> p: P;" : ""}
@group(0) @binding(1) var<storage, read_write> out: array<${k.out}>;
@group(0) @binding(2) var<storage, read> xs: array<vec4<u32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= arrayLength(&out)) { return; }
  let x = xs[i];
  out[i] = ${k.expr};
}`;
  const xs = Tensor.from(new Int32Array(inputs.buffer, inputs.byteOffset, inputs.length), [inputs.length], "i32");
  const out = Tensor.empty([invocations * outWords], "i32");
  g.dispatch(g.pipeline(k.key, () => code), [{ buffer: out.buffer }, { buffer: xs.buffer }], k.mode ? new Uint32Array([mode, 0, 0, 0]).buffer : null, [Math.ceil(invocations / 64), 1, 1]);
  const got = new Uint32Array((await out.read()).buffer);
  xs.dispose();
  out.dispose();
  return got;
}
