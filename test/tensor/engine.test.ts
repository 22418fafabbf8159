// The tensor engine itself: pooled storage with byte accounting, views,
// scopes, uploads/readbacks, per-dispatch uniform blocks, pipeline caching
// and device loss.
import { describe, expect, it } from "vitest";
import { unary } from "../../src/kernels/elementwise.js";
import { GpuDeviceLostError, gpu, initGpu, releaseGpu } from "../../src/tensor/device.js";
import { keep, scope } from "../../src/tensor/scope.js";
import { Tensor } from "../../src/tensor/tensor.js";

describe("tensor engine", () => {
  it("round-trips f32, i32 and odd-length f16 data", async () => {
    await initGpu();
    const f = Tensor.from(new Float32Array([1.5, -2, 3.25]), [3]);
    expect(Array.from(await f.readFloat32())).toEqual([1.5, -2, 3.25]);
    const i = Tensor.from(new Int32Array([7, -8, 9, 10, 11]), [5], "i32");
    expect(Array.from((await i.read()) as Int32Array)).toEqual([7, -8, 9, 10, 11]);
    const h = Tensor.from(new Uint16Array([0x3c00, 0xc000, 0x3800]), [3], "f16");
    expect(Array.from((await h.read()) as Uint16Array)).toEqual([0x3c00, 0xc000, 0x3800]);
    [f, i, h].forEach((t) => t.dispose());
  });

  it("accounts bytes: current and peak follow allocation, views share storage", async () => {
    const g = await initGpu();
    const start = g.pool.stats();
    g.pool.resetPeak();
    const a = Tensor.zeros([1000]);
    const v = a.reshape([10, 100]);
    expect(g.pool.stats().buffers).toBe(start.buffers + 1);
    const grown = g.pool.stats().current - start.current;
    expect(grown).toBeGreaterThanOrEqual(4000);
    a.dispose();
    expect(g.pool.stats().buffers).toBe(start.buffers + 1); // the view keeps the storage alive
    expect(Array.from(await v.readFloat32()).every((x) => x === 0)).toBe(true);
    v.dispose();
    const end = g.pool.stats();
    expect(end.buffers).toBe(start.buffers);
    expect(end.current).toBe(start.current);
    expect(end.peak).toBe(start.current + grown);
    expect(() => v.reshape([1000])).toThrow(/reshape: input tensor \[10, 100\] f32 was disposed/);
    expect(() => Tensor.zeros([2, 3]).reshape([4, 2])).toThrow(/cannot view \[2, 3\] \(6 elements\) as \[4, 2\]/);
  });

  it("scope frees intermediates and keeps what is returned or kept", async () => {
    const g = await initGpu();
    const before = g.pool.stats().buffers;
    let kept: Tensor | null = null;
    const out = scope(() => {
      const x = Tensor.from(new Float32Array([0, 1, 2]), [3]);
      const y = unary("exp", x);
      kept = keep(unary("neg", x));
      return { result: unary("sigmoid", y) };
    });
    expect(g.pool.stats().buffers).toBe(before + 2);
    expect((await out.result.readFloat32())[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 6);
    out.result.dispose();
    kept!.dispose();
    expect(g.pool.stats().buffers).toBe(before);
  });

  it("gives every dispatch of a batch its own uniform block, also when the blocks overflow one arena", async () => {
    const g = await initGpu();
    // A 24 KiB uniform block: three fill the 64 KiB arena, so the batch is submitted mid-way.
    const V = 1536;
    const pipe = g.pipeline("test:uniform-arena", () => `
      struct P { k: f32, pad0: f32, pad1: f32, pad2: f32, v: array<vec4<f32>, ${V}> }
      @group(0) @binding(0) var<uniform> p: P;
      @group(0) @binding(1) var<storage, read_write> out: array<f32>;
      @compute @workgroup_size(64)
      fn main(@builtin(global_invocation_id) id: vec3<u32>) {
        if (id.x < 4u) { out[id.x] = p.k + p.v[${V - 1}u][id.x]; }
      }`);
    const run = (k: number) => {
      const u = new Float32Array(4 + 4 * V);
      u[0] = k;
      u.set([10 * k, 10 * k + 1, 10 * k + 2, 10 * k + 3], 4 * V);
      const t = Tensor.empty([4]);
      g.dispatch(pipe, [{ buffer: t.buffer, offset: 0, size: 16 }], u.buffer, [1, 1, 1]);
      return t;
    };
    const big = [1, 2, 3, 4, 5].map(run);
    // Then many small blocks (the elementwise kernels' 16 bytes), past one batch of dispatches.
    const x = Tensor.from(new Float32Array([1, 2]), [2]);
    const small = Array.from({ length: 150 }, (_, k) => unary("affine", x, 1, k));
    for (const [i, t] of big.entries()) {
      const k = i + 1;
      expect(Array.from(await t.readFloat32())).toEqual([11 * k, 11 * k + 1, 11 * k + 2, 11 * k + 3]);
    }
    for (const [k, t] of small.entries()) expect(Array.from(await t.readFloat32())).toEqual([1 + k, 2 + k]);
    [...big, ...small, x].forEach((t) => t.dispose());
  });

  it("compiles each pipeline once", async () => {
    const g = await initGpu();
    const x = Tensor.zeros([16]);
    unary("relu", x).dispose();
    const n = g.pipelineCount;
    for (let i = 0; i < 3; i++) unary("relu", x).dispose();
    expect(g.pipelineCount).toBe(n);
    x.dispose();
  });

  it("reports device loss with a clear error on the next op", async () => {
    const g = await initGpu();
    g.device.destroy();
    await g.device.lost;
    expect(() => Tensor.zeros([4])).toThrow(GpuDeviceLostError);
    expect(() => Tensor.zeros([4])).toThrow(/empty: the WebGPU device was lost/);
    releaseGpu();
    // A new device can be made after the loss.
    await initGpu();
    expect(Array.from(await Tensor.from(new Float32Array([2]), [1]).readFloat32())).toEqual([2]);
    expect(gpu()).not.toBe(g);
    releaseGpu();
  });
});
