// awaitGpu (src/tensor/gpu_wait.ts): Dawn's polling is paced only while one
// of our waits is pending, concurrent waits share the patch, and the global
// setImmediate is always put back (also when the awaited promise rejects).
// Whether pacing frees the CPU is measured by bench/gpu_wait.bench.ts.
import { afterAll, expect, it } from "vitest";
import { awaitGpu, gpuWaitPending } from "../../src/tensor/gpu_wait.js";
import { gpu, initGpu, releaseGpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";

afterAll(() => releaseGpu());

const later = <T>(ms: number, v: T): Promise<T> => new Promise((r) => setTimeout(() => r(v), ms));

it("patches setImmediate only while a wait is pending, and shares the patch between concurrent waits", async () => {
  const original = globalThis.setImmediate;
  const a = awaitGpu(later(30, "a"));
  const b = awaitGpu(later(60, "b"));
  expect(gpuWaitPending()).toBe(true);
  expect(globalThis.setImmediate).not.toBe(original);
  expect(await a).toBe("a");
  expect(globalThis.setImmediate).not.toBe(original); // b still waits
  expect(await b).toBe("b");
  expect(gpuWaitPending()).toBe(false);
  expect(globalThis.setImmediate).toBe(original);
});

it("after the first millisecond of a wait, an immediate becomes a 1 ms timer, and still runs", async () => {
  const ran: string[] = [];
  await awaitGpu(
    (async () => {
      await later(5, null);
      const handle = setImmediate(() => ran.push("paced"));
      // A Timeout (refresh()), not an Immediate.
      expect(typeof (handle as unknown as { refresh?: unknown }).refresh).toBe("function");
      await later(10, null);
    })(),
  );
  expect(ran).toEqual(["paced"]);
  const handle = setImmediate(() => ran.push("plain"));
  expect(typeof (handle as unknown as { refresh?: unknown }).refresh).toBe("undefined");
  await new Promise((r) => setImmediate(r));
  expect(ran).toEqual(["paced", "plain"]);
});

it("a rejected wait restores setImmediate and passes the error on", async () => {
  const original = globalThis.setImmediate;
  await expect(awaitGpu(Promise.reject(new Error("lost")))).rejects.toThrow("lost");
  expect(globalThis.setImmediate).toBe(original);
});

it("GPU reads and syncs go through it, paced or not, with the same bytes", async () => {
  await initGpu();
  const g = gpu();
  const data = Float32Array.from({ length: 4096 }, (_, i) => i * 0.5);
  const t = Tensor.from(data, [4096]);
  try {
    expect(g.pacedWaits).toBe(true);
    const read = t.readFloat32();
    expect(gpuWaitPending()).toBe(true);
    expect(await read).toEqual(data);
    g.pacedWaits = false;
    const plain = t.readFloat32();
    expect(gpuWaitPending()).toBe(false);
    expect(await plain).toEqual(data);
    await g.sync();
  } finally {
    g.pacedWaits = true;
    t.dispose();
  }
});
