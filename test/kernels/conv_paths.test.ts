// The less common paths of conv3d / convTranspose3d / patchEmbed against a
// plain-TS float64 reference: inputs split over several bindings and outputs
// written in chunks (maxBindingBytes lowered to 64 KiB), over every GEMM
// variant the device runs (uniform loads, as without `subgroups`, and each
// subgroup broadcast width). Tolerance 1e-4 (K ≤ 135).
import { afterEach, expect, it } from "vitest";
import { conv3d } from "../../src/kernels/conv3d.js";
import { gemmVariants, type GemmVariant } from "../../src/kernels/conv_gemm.js";
import { setDeviceProfile } from "../../src/kernels/profile.js";
import { convTranspose3d } from "../../src/kernels/conv_transpose3d.js";
import { patchEmbed } from "../../src/kernels/patch_embed.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor, numel } from "../../src/tensor/tensor.js";
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

const up = (a: Float32Array, shape: readonly number[]) => Tensor.from(a, shape);

forEachVariant(gemmVariants(profile), (gemm: GemmVariant) => {
  const setMode = () => void setDeviceProfile({ force: { gemm } });

  it("convTranspose3d k2s2: segmented input, chunked output", async () => {
    setMode();
    const xs: S5 = [1, 5, 12, 20, 16], ws: S5 = [5, 3, 2, 2, 2];
    const x = rand(xs, 1), w = rand(ws, 2), b = rand([3], 3);
    const y = convTranspose3d(up(x, xs), up(w, ws), up(b, [3]));
    const ref = refConvT(x, xs, w, ws, b, 2);
    expect(y.byteLength).toBeGreaterThan(4 * gpu().maxBindingBytes);
    expect(y.shape).toEqual(ref.shape);
    expect(relError(await y.readFloat32(), ref.y)).toBeLessThanOrEqual(1e-4);
  });

  it("convTranspose3d k3s2 (direct path): segmented input, chunked output", async () => {
    setMode();
    const xs: S5 = [1, 5, 12, 20, 16], ws: S5 = [5, 2, 3, 3, 3];
    const x = rand(xs, 4), w = rand(ws, 5), b = rand([2], 6);
    const y = convTranspose3d(up(x, xs), up(w, ws), up(b, [2]), { stride: 2 });
    const ref = refConvT(x, xs, w, ws, b, 2);
    expect(y.shape).toEqual(ref.shape);
    expect(relError(await y.readFloat32(), ref.y)).toBeLessThanOrEqual(1e-4);
  });

  it("conv3d k3 p1: segmented input, chunked output", async () => {
    setMode();
    const xs: S5 = [1, 5, 12, 20, 16], ws: S5 = [6, 5, 3, 3, 3];
    const x = rand(xs, 7), w = rand(ws, 8), b = rand([6], 9);
    const y = conv3d(up(x, xs), up(w, ws), up(b, [6]), { padding: 1 });
    const ref = refConv3d(x, xs, w, ws, b, 1, 1);
    expect(y.byteLength).toBeGreaterThan(gpu().maxBindingBytes);
    expect(y.shape).toEqual(ref.shape);
    expect(relError(await y.readFloat32(), ref.y)).toBeLessThanOrEqual(1e-4);
  });

  it("patchEmbed: segmented input, chunked output", async () => {
    setMode();
    const xs: S5 = [1, 2, 8, 48, 32], hidden = 48;
    const p: [number, number, number] = [2, 4, 4];
    const K = 2 * 4 * 4 * 2;
    const x = rand(xs, 10), w = rand([hidden, K], 11), b = rand([hidden], 12);
    const y = patchEmbed(up(x, xs), up(w, [hidden, K]), up(b, [hidden]), p);
    const ref = refPatchEmbed(x, xs, w, hidden, b, p);
    expect(y.byteLength).toBeGreaterThan(gpu().maxBindingBytes);
    expect(y.shape).toEqual(ref.shape);
    expect(relError(await y.readFloat32(), ref.y)).toBeLessThanOrEqual(1e-4);
  });
});
