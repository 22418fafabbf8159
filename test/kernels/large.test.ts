// One real 400×512×512 f32 volume (400 MiB, four 128 MiB bindings) through
// the volume pipeline's ops: trilinear down to 32×256×256, nearest back up to
// the full size, min/max/mean, threshold, the axis swap and a crop. Outputs
// are checked at sampled points (whole rows read back from several chunks)
// against plain-TS references computed from the host copy.
// Tolerances: trilinear and mean max|err|/max|ref| ≤ 1e-4; the rest exact.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { threshold } from "../../src/kernels/elementwise.js";
import { permute, slice } from "../../src/kernels/layout.js";
import { reduce } from "../../src/kernels/reduce.js";
import { resize3d } from "../../src/kernels/resample.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { refAxis, refResizeAt } from "./reference.js";

useGpu();

const D = 400;
const H = 512;
const W = 512;
const MIN_AT = [123, 45, 67] as const;
const MAX_AT = [399, 511, 511] as const; // in the last binding segment

let host: Float32Array;
let vol: Tensor;

function idx(d: number, h: number, w: number, dims: readonly number[] = [D, H, W]): number {
  return (d * dims[1]! + h) * dims[2]! + w;
}

/** Reads rows [d, h, 0..w) of a rank-3 tensor without reading all of it. */
async function readRow(t: Tensor, d: number, h: number): Promise<Float32Array> {
  const w = t.shape[2]!;
  return new Float32Array(await gpu().readBytes(t.buffer, idx(d, h, 0, t.shape) * 4, w * 4));
}

/** (d, h) rows spread over the whole volume, so every output chunk is visited. */
function sampleRows(dn: number, hn: number, count: number): [number, number][] {
  const rows: [number, number][] = [];
  for (let k = 0; k < count; k++) rows.push([Math.floor((k * dn) / count + (k % 3)) % dn, (k * 197 + 13) % hn]);
  rows.push([dn - 1, hn - 1], [0, 0]);
  return rows;
}

beforeAll(() => {
  host = new Float32Array(D * H * W);
  for (let d = 0; d < D; d++)
    for (let h = 0; h < H; h++) {
      const base = idx(d, h, 0);
      for (let w = 0; w < W; w++) host[base + w] = ((d * 131 + h * 31 + w * 7) % 1009) / 1009;
    }
  host[idx(...MIN_AT)] = -3.5;
  host[idx(...MAX_AT)] = 7.25;
  vol = Tensor.from(host, [D, H, W]);
}, 120_000);

afterAll(() => vol?.dispose());

describe("a 400×512×512 f32 volume (400 MiB)", () => {
  it("spans several storage bindings", () => {
    expect(vol.byteLength).toBeGreaterThan(3 * gpu().maxBindingBytes);
  });

  it("reduce min/max/mean over all elements and max over the depth axis", async () => {
    expect((await reduce("min", vol).readFloat32())[0]).toBe(-3.5);
    expect((await reduce("max", vol).readFloat32())[0]).toBe(7.25);
    let s = 0;
    for (let i = 0; i < host.length; i++) s += host[i]!;
    expect(relError(await reduce("mean", vol).readFloat32(), [s / host.length])).toBeLessThanOrEqual(1e-4);
    const mx = await reduce("max", vol, 0).readFloat32();
    const want = new Float32Array(H * W).fill(-Infinity);
    for (let d = 0; d < D; d++) for (let i = 0; i < H * W; i++) if (host[d * H * W + i]! > want[i]!) want[i] = host[d * H * W + i]!;
    expect(Array.from(mx)).toEqual(Array.from(want));
  }, 120_000);

  it("trilinear down to 32×256×256, then nearest back up to 400×512×512", async () => {
    const small = resize3d(vol, [32, 256, 256], "trilinear");
    const got = await small.readFloat32();
    // Every 97th output element against the reference.
    const picks: number[] = [];
    const want: number[] = [];
    for (let i = 0; i < got.length; i += 97) {
      const d = Math.floor(i / 65536);
      const h = Math.floor(i / 256) % 256;
      picks.push(got[i]!);
      want.push(refResizeAt(host, [D, H, W], [32, 256, 256], 0, d, h, i % 256, "trilinear"));
    }
    expect(relError(picks, want)).toBeLessThanOrEqual(1e-4);

    const big = resize3d(small, [D, H, W], "nearest");
    for (const [d, h] of sampleRows(D, H, 48)) {
      const row = await readRow(big, d, h);
      const sd = refAxis(d, 32, D, "nearest", false)[0];
      const sh = refAxis(h, 256, H, "nearest", false)[0];
      const ref = Array.from({ length: W }, (_, w) => got[idx(sd, sh, refAxis(w, 256, W, "nearest", false)[0], [32, 256, 256])]!);
      expect(Array.from(row), `row ${d},${h}`).toEqual(ref);
    }
    big.dispose();
    small.dispose();
  }, 120_000);

  it("threshold, the D↔W axis swap and a crop", async () => {
    const th = threshold(vol, 0.5);
    for (const [d, h] of sampleRows(D, H, 24)) {
      const row = await readRow(th, d, h);
      expect(Array.from(row)).toEqual(Array.from(host.subarray(idx(d, h, 0), idx(d, h, W)), (v) => (v > 0.5 ? 1 : 0)));
    }
    th.dispose();

    const sw = permute(vol, [2, 1, 0]);
    for (const [a, h] of sampleRows(W, H, 24)) {
      const row = await readRow(sw, a, h);
      expect(Array.from(row)).toEqual(Array.from({ length: D }, (_, d) => host[idx(d, h, a)]!));
    }
    sw.dispose();

    const crop = slice(vol, [10, 20, 30], [390, 500, 480]);
    expect(crop.shape).toEqual([380, 480, 450]);
    for (const [d, h] of sampleRows(380, 480, 24)) {
      const row = await readRow(crop, d, h);
      expect(Array.from(row)).toEqual(Array.from(host.subarray(idx(d + 10, h + 20, 30), idx(d + 10, h + 20, 480))));
    }
    crop.dispose();
  }, 120_000);
});
