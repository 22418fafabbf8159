// The kernel goldens in a page: the PyTorch fixtures of test/fixtures/kernels
// (fetched from the test server) through the same ops and tolerances as
// test/kernels/*.test.ts, on the browser's WebGPU (SwiftShader here, 4-lane
// subgroups: the portable kernel variants). Returns one row per case.
import type { Activation } from "../../../src/kernels/activation.js";
import { attention } from "../../../src/kernels/attention.js";
import { convTranspose3d } from "../../../src/kernels/conv_transpose3d.js";
import { layerNorm } from "../../../src/kernels/layernorm.js";
import { matmul } from "../../../src/kernels/matmul.js";
import { resize3d, type ResizeMode } from "../../../src/kernels/resample.js";
import { softmax } from "../../../src/kernels/softmax.js";
import { initGpu } from "../../../src/tensor/device.js";
import { Tensor } from "../../../src/tensor/tensor.js";
import { fromBase64 } from "./util.js";

interface Arr {
  shape: number[];
  data: Float32Array | Int32Array;
}
interface Case {
  name: string;
  params: Record<string, unknown>;
  inputs: Record<string, Arr>;
  outputs: Record<string, Arr>;
}
interface Row {
  suite: string;
  name: string;
  err: number;
  tol: number;
  shapeOk: boolean;
}

async function fixture(name: string): Promise<Case[]> {
  const res = await fetch(`/fixtures/kernels/${name}.json`);
  if (!res.ok) throw new Error(`fixture ${name}: HTTP ${res.status}`);
  const json = (await res.json()) as { cases: { name: string; params: Record<string, unknown>; inputs: Record<string, { shape: number[]; dtype: string; b64: string }>; outputs: Record<string, { shape: number[]; dtype: string; b64: string }> }[] };
  const dec = (r: { shape: number[]; dtype: string; b64: string }): Arr => {
    const b = fromBase64(r.b64);
    return { shape: r.shape, data: r.dtype === "i32" ? new Int32Array(b.buffer) : new Float32Array(b.buffer) };
  };
  const map = (o: Record<string, { shape: number[]; dtype: string; b64: string }>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, dec(v)]));
  return json.cases.map((c) => ({ name: c.name, params: c.params, inputs: map(c.inputs), outputs: map(c.outputs) }));
}

/** max |a − e| / max |e|, as test/helpers/fixtures.ts's relError (NaN counts as infinite). */
function relError(a: ArrayLike<number>, e: ArrayLike<number>): number {
  if (a.length !== e.length) return Infinity;
  let d = 0, r = 0;
  for (let i = 0; i < e.length; i++) {
    const x = Math.abs(a[i]! - e[i]!);
    if (!(x <= d)) d = Number.isNaN(x) ? Infinity : x;
    r = Math.max(r, Math.abs(e[i]!));
  }
  return r === 0 ? d : d / r;
}

const t = (a: Arr) => Tensor.from(a.data as Float32Array, a.shape);
type Runner = (c: Case) => { y: Tensor; tol: number; exact?: boolean };

const SUITES: Record<string, { file: string; filter?: (c: Case) => boolean; run: Runner }> = {
  matmul: {
    file: "matmul",
    run: (c) => ({
      y: matmul(t(c.inputs.a!), t(c.inputs.b!), {
        transA: c.params.transA as boolean,
        transB: c.params.transB as boolean,
        bias: c.inputs.bias ? t(c.inputs.bias) : undefined,
        act: c.params.act as Activation,
      }),
      tol: (c.params.K as number) >= 768 ? 1e-3 : 1e-4,
    }),
  },
  attention: {
    file: "attention",
    run: (c) => ({
      y: attention(t(c.inputs.q!), t(c.inputs.k!), t(c.inputs.v!), { numHeads: c.params.numHeads as number, causal: c.params.causal as boolean, scale: c.params.scale as number | undefined }),
      tol: 1e-3,
    }),
  },
  layernorm: { file: "layernorm", run: (c) => ({ y: layerNorm(t(c.inputs.x!), t(c.inputs.weight!), t(c.inputs.bias!), c.params.eps as number), tol: 1e-4 }) },
  softmax: { file: "softmax", run: (c) => ({ y: softmax(t(c.inputs.x!), c.params.axis as number), tol: 1e-4 }) },
  conv_transpose3d: {
    file: "conv",
    filter: (c) => c.name.startsWith("convT_"),
    run: (c) => ({
      y: convTranspose3d(t(c.inputs.x!), t(c.inputs.w!), c.inputs.bias ? t(c.inputs.bias) : undefined, { stride: c.params.stride as [number, number, number] }),
      tol: c.inputs.x!.shape[1]! >= 768 ? 1e-3 : 1e-4,
    }),
  },
  resample: {
    file: "resample",
    run: (c) => {
      const mode = c.params.mode as ResizeMode;
      return { y: resize3d(t(c.inputs.x!), c.params.size as [number, number, number], mode, c.params.align_corners as boolean), tol: 1e-4, exact: mode !== "trilinear" };
    },
  },
};

/** Runs the named suites; one row per golden case. */
async function runKernelGoldens(names: string[]): Promise<{ subgroups: [number, number]; rows: Row[] }> {
  const g = await initGpu();
  const rows: Row[] = [];
  for (const suite of names) {
    const s = SUITES[suite];
    if (!s) throw new Error(`no kernel suite ${suite}`);
    for (const c of (await fixture(s.file)).filter(s.filter ?? (() => true))) {
      const { y, tol, exact } = s.run(c);
      const got = await y.readFloat32();
      const want = c.outputs.y!;
      const shapeOk = y.shape.length === want.shape.length && y.shape.every((d, i) => d === want.shape[i]);
      const err = exact ? (got.every((v, i) => v === want.data[i]) && got.length === want.data.length ? 0 : Infinity) : relError(got, want.data);
      rows.push({ suite, name: c.name, err, tol, shapeOk });
    }
  }
  return { subgroups: [g.subgroupMinSize, g.subgroupMaxSize], rows };
}

Object.assign(globalThis, { segvolKernels: { runKernelGoldens, suites: Object.keys(SUITES) } });
document.getElementById("ready")!.textContent = "ready";
