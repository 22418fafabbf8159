// The backward kernels on tensors larger than one storage binding (limit
// lowered to 64 KiB): outputs written in chunks, inputs read through
// segments. References are plain TS on the same host data (exact ops, so
// the tolerance is f32 rounding: 1e-6 relative).
import { describe, expect, it } from "vitest";
import { unaryBackward } from "../../src/kernels/elementwise.js";
import { gatherBackward } from "../../src/kernels/layout.js";
import { expandTo } from "../../src/kernels/reduce.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { refBroadcast } from "../kernels/reference.js";

useGpu({ maxBindingBytes: 1 << 16 });

function host(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

describe("backward kernels across binding chunks", () => {
  it("unaryBackward (clamp, square) over 3 segments", async () => {
    const n = 41 * 997; // 163 KB per tensor
    const xh = host(n, 1);
    const gh = host(n, 2);
    const x = Tensor.from(xh, [41, 997]);
    const g = Tensor.from(gh, [41, 997]);
    const dc = await unaryBackward("clamp", x, g, -0.5, 0.25).readFloat32();
    const ds = await unaryBackward("square", x, g).readFloat32();
    expect(relError(dc, gh.map((v, i) => (xh[i]! >= -0.5 && xh[i]! <= 0.25 ? v : 0)))).toBe(0);
    expect(relError(ds, gh.map((v, i) => Math.fround(v * Math.fround(2 * xh[i]!))))).toBeLessThanOrEqual(1e-6);
  });

  it("expandTo broadcasts a [1, 3, 1, 211] gradient to [29, 3, 5, 211] with a scale", async () => {
    const gh = host(3 * 211, 3);
    const g = Tensor.from(gh, [1, 3, 1, 211]);
    const out = await expandTo(g, [29, 3, 5, 211], 0.5).readFloat32();
    const want = new Float32Array(29 * 3 * 5 * 211);
    for (let i = 0; i < want.length; i++) {
      const c = i % 211;
      const ch = Math.floor(i / (5 * 211)) % 3;
      want[i] = gh[ch * 211 + c]! * 0.5;
    }
    expect(relError(out, want)).toBe(0);
  });

  // 16 outputs an invocation: g's vectors read through 2 segments, and one g value splat; outputs in chunks.
  it.each([
    { g: [1, 96, 1, 208], to: [7, 96, 3, 208] },
    { g: [64, 3, 5, 1], to: [64, 3, 5, 48] },
  ])("expandTo broadcasts $g to $to with a scale", async ({ g, to }) => {
    const gh = host(g.reduce((a, b) => a * b, 1), 5);
    const out = await expandTo(Tensor.from(gh, g), to, 0.25).readFloat32();
    expect(relError(out, refBroadcast(gh, g, to, 0.25))).toBe(0);
  });

  it("gatherBackward scatter-adds repeated ids into a chunked [97, 301] table", async () => {
    const V = 97;
    const D = 301;
    const ids = Int32Array.from([5, 96, 5, 0, 60, 96, 5, 33, 60, 1, 2, 96, 70, 71, 5]);
    const gh = host(ids.length * D, 4);
    const g = Tensor.from(gh, [3, 5, D]);
    const idsT = Tensor.from(ids, [3, 5], "i32");
    const out = await gatherBackward(g, idsT, V).readFloat32();
    const want = new Float32Array(V * D);
    ids.forEach((id, r) => {
      for (let c = 0; c < D; c++) want[id * D + c]! += gh[r * D + c]!;
    });
    expect(relError(out, want)).toBeLessThanOrEqual(1e-6);
  });
});
