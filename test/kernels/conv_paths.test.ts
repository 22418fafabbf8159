// The less common paths of conv3d / convTranspose3d / patchEmbed against a
// plain-TS float64 reference: inputs split over several bindings and outputs
// written in chunks (maxBindingBytes lowered to 64 KiB), over every GEMM
// variant the device runs (uniform loads, as without `subgroups`, and each
// subgroup broadcast width), in f32 and f16. Tolerance 1e-4 (K ≤ 135), plus
// the f16 output's rounding in f16 (see `input`).
import { afterEach, expect, it } from "vitest";
import { conv3d } from "../../src/kernels/conv3d.js";
import { gemmSplits, gemmVariants, type GemmVariant } from "../../src/kernels/conv_gemm.js";
import { setDeviceProfile } from "../../src/kernels/profile.js";
import { convTranspose3d } from "../../src/kernels/conv_transpose3d.js";
import { patchEmbed } from "../../src/kernels/patch_embed.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor, numel } from "../../src/tensor/tensor.js";
import { F16_TOL, F16_UNIT, fixtureTensor, PRECISIONS, readAs, roundF16All, skipWithoutF16, type TestPrecision } from "../helpers/f16.js";
import { relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";

useGpu({ maxBindingBytes: 1 << 16 });
const profile = await testProfile({ maxBindingBytes: 1 << 16 });
afterEach(() => void setDeviceProfile(profile));

type S5 = [number, number, number, number, number];

function rand(shape: readonly number[], seed: number): Float32Array {
  const a = new Float32Array(numel(shape));
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

function refConv3d(x: Float32Array, xs: S5, w: Float32Array, ws: S5, b: Float32Array, st: number, pad: number) {
  const [B, Ci, D, H, W] = xs;
  const [Co, , kd, kh, kw] = ws;
  const od = Math.floor((D + 2 * pad - kd) / st) + 1, oh = Math.floor((H + 2 * pad - kh) / st) + 1, ow = Math.floor((W + 2 * pad - kw) / st) + 1;
  const y = new Float64Array(B * Co * od * oh * ow);
  for (let n = 0; n < B; n++) for (let o = 0; o < Co; o++) for (let z = 0; z < od; z++) for (let u = 0; u < oh; u++) for (let v = 0; v < ow; v++) {
    let acc = b[o]!;
    for (let c = 0; c < Ci; c++) for (let a = 0; a < kd; a++) for (let e = 0; e < kh; e++) for (let f = 0; f < kw; f++) {
      const i = z * st - pad + a, j = u * st - pad + e, l = v * st - pad + f;
      if (i < 0 || i >= D || j < 0 || j >= H || l < 0 || l >= W) continue;
      acc += x[(((n * Ci + c) * D + i) * H + j) * W + l]! * w[(((o * Ci + c) * kd + a) * kh + e) * kw + f]!;
    }
    y[(((n * Co + o) * od + z) * oh + u) * ow + v] = acc;
  }
  return { y, shape: [B, Co, od, oh, ow] };
}

function refConvT(x: Float32Array, xs: S5, w: Float32Array, ws: S5, b: Float32Array, st: number) {
  const [B, Ci, D, H, W] = xs;
  const [, Co, kd, kh, kw] = ws;
  const od = (D - 1) * st + kd, oh = (H - 1) * st + kh, ow = (W - 1) * st + kw;
  const y = new Float64Array(B * Co * od * oh * ow);
  for (let n = 0; n < B; n++) for (let o = 0; o < Co; o++) y.fill(b[o]!, (n * Co + o) * od * oh * ow, (n * Co + o + 1) * od * oh * ow);
  for (let n = 0; n < B; n++) for (let c = 0; c < Ci; c++) for (let i = 0; i < D; i++) for (let j = 0; j < H; j++) for (let l = 0; l < W; l++) {
    const xv = x[(((n * Ci + c) * D + i) * H + j) * W + l]!;
    for (let o = 0; o < Co; o++) for (let a = 0; a < kd; a++) for (let e = 0; e < kh; e++) for (let f = 0; f < kw; f++) {
      y[(((n * Co + o) * od + i * st + a) * oh + j * st + e) * ow + l * st + f] += xv * w[(((c * Co + o) * kd + a) * kh + e) * kw + f]!;
    }
  }
  return { y, shape: [B, Co, od, oh, ow] };
}

function refPatchEmbed(x: Float32Array, xs: S5, w: Float32Array, hidden: number, b: Float32Array, p: [number, number, number]) {
  const [B, C, D, H, W] = xs;
  const gd = D / p[0], gh = H / p[1], gw = W / p[2];
  const K = p[0] * p[1] * p[2] * C;
  const y = new Float64Array(B * gd * gh * gw * hidden);
  for (let n = 0; n < B; n++) for (let i = 0; i < gd; i++) for (let j = 0; j < gh; j++) for (let k = 0; k < gw; k++) {
    const t = n * gd * gh * gw + (i * gh + j) * gw + k;
    for (let o = 0; o < hidden; o++) {
      let acc = b[o]!;
      for (let q1 = 0; q1 < p[0]; q1++) for (let q2 = 0; q2 < p[1]; q2++) for (let q3 = 0; q3 < p[2]; q3++) for (let c = 0; c < C; c++) {
        const xv = x[(((n * C + c) * D + i * p[0] + q1) * H + j * p[1] + q2) * W + k * p[2] + q3]!;
        acc += xv * w[o * K + ((q1 * p[1] + q2) * p[2] + q3) * C + c]!;
      }
      y[t * hidden + o] = acc;
    }
  }
  return { y, shape: [B, gd * gh * gw, hidden] };
}

/**
 * Inputs for a case in `dtype`: the tensor on the GPU and the values it
 * holds (f16: the rounded values), which the float64 reference uses. So in
 * f16 only the f32 sums and the output's one rounding differ: F16_TOL,
 * 1e-4 + 2^-11.
 */
function input(a: Float32Array, shape: readonly number[], dtype: TestPrecision): { t: Tensor; v: Float32Array } {
  return { t: fixtureTensor({ data: a, shape: [...shape] }, dtype), v: dtype === "f16" ? roundF16All(a) : a };
}

const tolerance = (dtype: TestPrecision) => (dtype === "f16" ? F16_TOL : 1e-4);

/** The input shape, its last axis doubled in f16 so that the input still spans several bindings at 2 bytes an element. */
const sized = (s: S5, dtype: TestPrecision): S5 => (dtype === "f16" ? [s[0], s[1], s[2], s[3], 2 * s[4]] : s);

/** A path's case: the input and weight shapes, the bias length, the first of three seeds, the op, its float64 reference, how many bindings the output must exceed. */
interface PathCase {
  name: string;
  x: S5;
  w: number[];
  bias: number;
  seed: number;
  run: (x: Tensor, w: Tensor, b: Tensor) => Tensor;
  ref: (x: Float32Array, xs: S5, w: Float32Array, b: Float32Array) => { y: Float64Array; shape: number[] };
  outBindings: number;
}

const hidden = 48;
const patch: [number, number, number] = [2, 4, 4];
const pathCases: PathCase[] = [
  {
    name: "convTranspose3d k2s2", x: [1, 5, 12, 20, 16], w: [5, 3, 2, 2, 2], bias: 3, seed: 1, outBindings: 4,
    run: (x, w, b) => convTranspose3d(x, w, b),
    ref: (x, xs, w, b) => refConvT(x, xs, w, [5, 3, 2, 2, 2], b, 2),
  },
  {
    name: "convTranspose3d k3s2 (direct path)", x: [1, 5, 12, 20, 16], w: [5, 2, 3, 3, 3], bias: 2, seed: 4, outBindings: 1,
    run: (x, w, b) => convTranspose3d(x, w, b, { stride: 2 }),
    ref: (x, xs, w, b) => refConvT(x, xs, w, [5, 2, 3, 3, 3], b, 2),
  },
  {
    name: "conv3d k3 p1", x: [1, 5, 12, 20, 16], w: [6, 5, 3, 3, 3], bias: 6, seed: 7, outBindings: 1,
    run: (x, w, b) => conv3d(x, w, b, { padding: 1 }),
    ref: (x, xs, w, b) => refConv3d(x, xs, w, [6, 5, 3, 3, 3], b, 1, 1),
  },
  {
    name: "patchEmbed", x: [1, 2, 8, 48, 32], w: [hidden, 2 * 4 * 4 * 2], bias: hidden, seed: 10, outBindings: 1,
    run: (x, w, b) => patchEmbed(x, w, b, patch),
    ref: (x, xs, w, b) => refPatchEmbed(x, xs, w, hidden, b, patch),
  },
];

// The GEMMs' sizes M, N, K are uniforms and only per-sample geometry is in
// their pipelines' values, so another batch size (the decoder's prompt
// count) reuses the pipelines of the first.
it("compiles no new pipeline for another batch size", () => {
  const ops = (B: number) => [
    convTranspose3d(Tensor.zeros([B, 8, 2, 3, 4]), Tensor.zeros([8, 4, 2, 2, 2]), Tensor.zeros([4])),
    conv3d(Tensor.zeros([B, 3, 4, 5, 6]), Tensor.zeros([5, 3, 3, 3, 3]), Tensor.zeros([5]), { padding: 1 }),
    patchEmbed(Tensor.zeros([B, 2, 4, 8, 8]), Tensor.zeros([6, 2 * 4 * 4 * 2]), Tensor.zeros([6]), [2, 4, 4]),
  ];
  ops(1);
  const compiled = gpu().pipelineCount;
  ops(3);
  ops(2);
  expect(gpu().pipelineCount).toBe(compiled);
});

forEachVariant(gemmVariants(profile), (gemm: GemmVariant) => {
  for (const dtype of PRECISIONS) for (const c of pathCases) {
    it(`${c.name}: segmented input, chunked output (${dtype})`, async (ctx) => {
      skipWithoutF16(ctx, dtype);
      setDeviceProfile({ force: { gemm } });
      const xs = sized(c.x, dtype);
      const x = input(rand(xs, c.seed), xs, dtype), w = input(rand(c.w, c.seed + 1), c.w, dtype);
      const b = input(rand([c.bias], c.seed + 2), [c.bias], dtype);
      const y = c.run(x.t, w.t, b.t);
      const ref = c.ref(x.v, xs, w.v, b.v);
      expect(x.t.byteLength).toBeGreaterThan(gpu().maxBindingBytes);
      expect(y.byteLength).toBeGreaterThan(c.outBindings * gpu().maxBindingBytes);
      expect(y.shape).toEqual(ref.shape);
      expect(relError(await readAs(y, dtype), ref.y)).toBeLessThanOrEqual(tolerance(dtype));
    });
  }

  // A small output over a long K (no bias) is summed over splits of K in f32
  // partials, then rounded once to the output's precision. K = 4096 ≥ 768:
  // tolerance 1e-3, plus 2^-11 in f16.
  for (const dtype of PRECISIONS) {
    it(`convTranspose3d over a long K without bias: partial sums over splits of K (${dtype})`, async (ctx) => {
      skipWithoutF16(ctx, dtype);
      setDeviceProfile({ force: { gemm } });
      const xs: S5 = [1, 4096, 1, 1, 4], ws: S5 = [4096, 1, 2, 2, 2];
      const x = input(rand(xs, 13), xs, dtype), w = input(rand(ws, 14), ws, dtype);
      const y = convTranspose3d(x.t, w.t);
      expect(gemmSplits({ M: 8, N: 4, K: 4096 }, 1, false, y, 1)).toBeGreaterThan(1);
      const ref = refConvT(x.v, xs, w.v, ws, new Float32Array(1), 2);
      expect(relError(await readAs(y, dtype), ref.y)).toBeLessThanOrEqual(1e-3 + (dtype === "f16" ? F16_UNIT : 0));
    });
  }
});
