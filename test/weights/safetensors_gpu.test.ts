// loadTensorToGpu: a safetensors tensor uploaded as f32 (f16 and bf16 widened)
// or kept as f16. Apart from test/weights/safetensors.test.ts so that the
// mutation run (vitest.mutate.config.ts) needs no GPU.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../src/weights/dtype.js";
import { loadTensorToGpu, SafetensorsFile, writeSafetensors } from "../../src/weights/safetensors.js";
import { useGpu } from "../helpers/gpu.js";
import { tempDir } from "./util.js";
import { rnd } from "../helpers/random.js";

const dir = tempDir("st-gpu");

describe("loadTensorToGpu", () => {
  useGpu();
  it("uploads f32, widens f16/bf16, and keeps f16 when asked", async () => {
    // 24 elements: Tensor.read of an f16 tensor with an odd element count fails
    // in the engine's readBytes (copy size not a multiple of 4) — reported.
    const f = rnd(3 * 8, 5, 10);
    const p = join(dir, "gpu.safetensors");
    writeSafetensors(p, [
      { name: "w32", dtype: "F32", shape: [3, 8], data: f },
      { name: "w16", dtype: "F16", shape: [3, 8], data: f32ToF16Bits(f) },
      { name: "wbf", dtype: "BF16", shape: [24], data: f32ToBf16Bits(f) },
    ]);
    const st = SafetensorsFile.open(p);
    const a = loadTensorToGpu(st, "w32");
    expect(a.shape).toEqual([3, 8]);
    expect(a.dtype).toBe("f32");
    expect([...(await a.readFloat32())]).toEqual([...f]);
    const b = loadTensorToGpu(st, "w16");
    expect([...(await b.readFloat32())]).toEqual([...f16BitsToF32(f32ToF16Bits(f))]);
    const c = loadTensorToGpu(st, "wbf");
    const cb = await c.readFloat32();
    for (let i = 0; i < f.length; i++) expect(Math.abs(cb[i]! - f[i]!)).toBeLessThanOrEqual(Math.abs(f[i]!) * 2 ** -8);
    const h = loadTensorToGpu(st, "w16", "f16");
    expect(h.dtype).toBe("f16");
    expect([...((await h.read()) as Uint16Array)]).toEqual([...f32ToF16Bits(f)]);
    for (const t of [a, b, c, h]) t.dispose();
    st.close();
    expect(existsSync(p)).toBe(true);
  });
});
