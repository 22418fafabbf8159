// The large-tensor paths at small scale: with storage bindings capped at
// 64 KiB (16384 f32), moderately sized tensors take the same chunked-output
// and segmented-input paths that 400 MiB volumes take at 128 MiB. Compared
// with plain-TS references (test/kernels/reference.ts).
// Tolerances: resampling and sums max|err|/max|ref| ≤ 1e-4; everything else exact.
import { describe, expect, it, vi } from "vitest";
import { addN } from "../../src/kernels/add_n.js";
import { cast, concat, gather, pad, permute, slice } from "../../src/kernels/layout.js";
import { reduce } from "../../src/kernels/reduce.js";
import { resize3d, type ResizeMode } from "../../src/kernels/resample.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { refReduceAxis, refResize, strides, unravel } from "./reference.js";

const BINDING = 1 << 16;
useGpu({ maxBindingBytes: BINDING });

/** Deterministic pseudo-random values in [-1, 1). */
function pattern(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

describe("ops over several storage bindings (64 KiB bindings)", () => {
  it("addN: ten tensors over three output windows equal the float32 chain", async () => {
    const n = 40000; // 160 KB: three 64 KiB windows
    const data = Array.from({ length: 10 }, (_, s) => pattern(n, s + 1));
    const want = Float32Array.from(data[0]!);
    for (const x of data.slice(1)) for (let i = 0; i < n; i++) want[i] = Math.fround(want[i]! + x[i]!);
    const xs = data.map((d) => Tensor.from(d, [n]));
    const y = addN(xs);
    expect(Array.from(await y.readFloat32())).toEqual(Array.from(want));
    y.dispose();
    for (const x of xs) x.dispose();
  });

  it("the device really has small bindings and the inputs span several", () => {
    expect(gpu().maxBindingBytes).toBe(BINDING);
  });

  // [2, 3, 9, 40, 50]: 108000 f32 = 7 input segments.
  const inShape = [2, 3, 9, 40, 50] as const;
  const x5 = pattern(2 * 3 * 9 * 40 * 50, 1);
  const resizeCases: [ResizeMode, boolean, [number, number, number]][] = [
    ["trilinear", false, [13, 31, 64]],
    ["trilinear", true, [5, 47, 61]],
    ["trilinear", false, [4, 17, 120]],
    ["nearest", false, [11, 33, 100]],
    ["nearest-exact", false, [7, 61, 29]],
  ];
  /** The input layouts (segment counts) of the resize3d pipelines that `f` asks for. */
  function resizeInputs(f: () => Tensor): { y: Tensor; counts: number[] } {
    const g = gpu();
    const pipeline = g.pipeline.bind(g);
    const counts: number[] = [];
    const spy = vi.spyOn(g, "pipeline").mockImplementation((key, code, entry) => {
      if (key.startsWith("resize3d:")) counts.push((JSON.parse(key.slice("resize3d:".length)) as { x: { count: number } }).x.count);
      return pipeline(key, code, entry);
    });
    try {
      return { y: f(), counts };
    } finally {
      spy.mockRestore();
    }
  }

  // Planes of 8 KB: each dispatch reads one window of the input (one
  // binding, no switch over its 7 segments).
  for (const [mode, align, size] of resizeCases) {
    it(`resize3d ${mode}${align ? " align_corners" : ""} [2,3,9,40,50] → ${size.join("x")} through windows of the input`, async () => {
      const x = Tensor.from(x5, [...inShape]);
      const { y, counts } = resizeInputs(() => resize3d(x, size, mode, align));
      expect(counts).toEqual([1]);
      expect(y.byteLength).toBeGreaterThan(BINDING);
      const want = refResize(x5, 6, [9, 40, 50], size, mode, align);
      const got = await y.readFloat32();
      if (mode === "trilinear") expect(relError(got, want)).toBeLessThanOrEqual(1e-4);
      else expect(Array.from(got)).toEqual(Array.from(want));
    });
  }

  // Planes of 36 KB: trilinear's two source planes (72 KB) do not fit one
  // 64 KiB binding, so it reads all 5 segments; nearest reads one plane a
  // group and still goes through windows.
  const wide = pattern(2 * 4 * 100 * 90, 3);
  for (const [mode, size, count] of [
    ["trilinear", [7, 37, 90], 5],
    ["trilinear", [3, 120, 41], 5],
    // W halves (source columns 0, 2, …): one binding would read them as pairs, segments may not.
    ["trilinear", [7, 37, 45], 5],
    ["nearest", [7, 37, 90], 1],
  ] as const) {
    it(`resize3d ${mode} [2,4,100,90] → ${size.join("x")} through ${count === 1 ? "windows" : "segments"}`, async () => {
      const x = Tensor.from(wide, [2, 1, 4, 100, 90]);
      const { y, counts } = resizeInputs(() => resize3d(x, [...size], mode));
      expect(counts).toEqual([count]);
      const want = refResize(wide, 2, [4, 100, 90], [...size], mode, false);
      const got = await y.readFloat32();
      if (mode === "trilinear") expect(relError(got, want)).toBeLessThanOrEqual(1e-4);
      else expect(Array.from(got)).toEqual(Array.from(want));
    });
  }

  // More segments than the adapter binds (12 here): windows of one or two
  // 32 KB planes still fit a binding, so the resize runs; 40 KB planes do
  // not fit two to a binding, and trilinear refuses with the count.
  it("resize3d reads a volume of more segments than the adapter binds through windows", async () => {
    const many = pattern(30 * 80 * 100, 4);
    const x = Tensor.from(many, [1, 1, 30, 80, 100]);
    expect(Math.ceil(x.byteLength / BINDING)).toBeGreaterThan(gpu().maxStorageBindings - 4);
    for (const [mode, size] of [["trilinear", [7, 40, 52]], ["nearest-exact", [11, 33, 100]]] as const) {
      const { y, counts } = resizeInputs(() => resize3d(x, [...size], mode));
      expect(counts, mode).toEqual([1]);
      const want = refResize(many, 1, [30, 80, 100], [...size], mode, false);
      const got = await y.readFloat32();
      if (mode === "trilinear") expect(relError(got, want)).toBeLessThanOrEqual(1e-4);
      else expect(Array.from(got)).toEqual(Array.from(want));
    }
    const wide40 = Tensor.zeros([1, 1, 21, 100, 100]);
    expect(() => resize3d(wide40, [7, 40, 52], "trilinear")).toThrow(/resize3d\(trilinear\): tensor \[1, 1, 21, 100, 100\] \(840000 bytes\) needs 13 storage bindings; this adapter allows 12/);
  });

  const shape3 = [40, 50, 60];
  const x3 = pattern(40 * 50 * 60, 2);
  for (const op of ["sum", "mean", "min", "max"] as const) {
    it(`reduce ${op} over all and over each axis of [40, 50, 60]`, async () => {
      const x = Tensor.from(x3, shape3);
      const tol = op === "sum" || op === "mean" ? 1e-4 : 0;
      const all = refReduceAxis(x3, [x3.length], 0, op);
      expect(relError(await reduce(op, x).readFloat32(), all)).toBeLessThanOrEqual(tol);
      for (let axis = 0; axis < 3; axis++) {
        const got = await reduce(op, x, axis).readFloat32();
        expect(relError(got, refReduceAxis(x3, shape3, axis, op)), `axis ${axis}`).toBeLessThanOrEqual(tol);
      }
    });
  }

  it("reduce over a long axis with few outputs (workgroup per output) and a chunked output", async () => {
    const long = pattern(3 * 30000, 3);
    const x = Tensor.from(long, [3, 30000]);
    expect(relError(await reduce("sum", x, 1).readFloat32(), refReduceAxis(long, [3, 30000], 1, "sum"))).toBeLessThanOrEqual(1e-4);
    // Output of 30000 elements (two chunks), reduced over a short axis.
    expect(Array.from(await reduce("max", x, 0).readFloat32())).toEqual(Array.from(refReduceAxis(long, [3, 30000], 0, "max")));
  });

  it("slice (crop) and pad of a multi-binding volume", async () => {
    const x = Tensor.from(x3, shape3);
    const st = strides(shape3);
    const crop = slice(x, [3, 5, 7], [39, 48, 60]);
    const cs = [36, 43, 53];
    const got = await crop.readFloat32();
    const want = got.map((_, i) => {
      const c = unravel(i, cs);
      return x3[(c[0]! + 3) * st[0]! + (c[1]! + 5) * st[1]! + (c[2]! + 7)]!;
    });
    expect(Array.from(got)).toEqual(Array.from(want));

    const padded = pad(x, [[2, 1], [0, 3], [4, 0]], -2);
    const ps = [43, 53, 64];
    const gp = await padded.readFloat32();
    const wp = gp.map((_, i) => {
      const c = unravel(i, ps);
      const [a, b, d] = [c[0]! - 2, c[1]!, c[2]! - 4];
      return a < 0 || a >= 40 || b >= 50 || d < 0 ? -2 : x3[a * st[0]! + b * st[1]! + d]!;
    });
    expect(Array.from(gp)).toEqual(Array.from(wp));
  });

  it("permute and concat of multi-binding tensors", async () => {
    const x = Tensor.from(x3, shape3);
    const st = strides(shape3);
    // [2, 0, 1]: the contiguous axis becomes the outermost; [0, 2, 1]: a
    // middle one; [1, 0, 2]: the last axis stays (strided runs).
    for (const perm of [[2, 0, 1], [0, 2, 1], [1, 0, 2]]) {
      const p = await permute(x, perm).readFloat32();
      const ps = perm.map((a) => shape3[a]!);
      const wp = p.map((_, i) => {
        const c = unravel(i, ps);
        let src = 0;
        perm.forEach((a, k) => (src += c[k]! * st[a]!));
        return x3[src]!;
      });
      expect(Array.from(p), `perm ${perm}`).toEqual(Array.from(wp));
    }

    const other = pattern(40 * 7 * 60, 4);
    const y = Tensor.from(other, [40, 7, 60]);
    const cat = await concat([x, y, x], 1).readFloat32();
    const cs = [40, 107, 60];
    const wc = cat.map((_, i) => {
      const [a, b, d] = unravel(i, cs) as [number, number, number];
      if (b < 50) return x3[(a * 50 + b) * 60 + d]!;
      if (b < 57) return other[(a * 7 + b - 50) * 60 + d]!;
      return x3[(a * 50 + b - 57) * 60 + d]!;
    });
    expect(Array.from(cat)).toEqual(Array.from(wc));
  });

  it("gather from a multi-binding table and cast a multi-binding tensor", async () => {
    const tab = pattern(3000 * 20, 5);
    const ids = Int32Array.from({ length: 1000 }, (_, i) => (i * 7919) % 3000);
    const y = await gather(Tensor.from(tab, [3000, 20]), ids).readFloat32();
    const want = Float32Array.from({ length: 1000 * 20 }, (_, i) => tab[ids[Math.floor(i / 20)]! * 20 + (i % 20)]!);
    expect(Array.from(y)).toEqual(Array.from(want));
    if (gpu().hasF16) {
      const x = Tensor.from(x3, shape3);
      const back = await cast(cast(x, "f16"), "f32").readFloat32();
      // f16 keeps 11 significant bits: relative rounding error ≤ 2^-11 for these normal values.
      let worst = 0;
      for (let i = 0; i < x3.length; i++) if (Math.abs(x3[i]!) > 1e-4) worst = Math.max(worst, Math.abs(back[i]! - x3[i]!) / Math.abs(x3[i]!));
      expect(worst).toBeLessThanOrEqual(2 ** -11);
      expect(worst).toBeGreaterThan(0);
    }
  });
});
