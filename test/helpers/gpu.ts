// One Dawn device per test file: created before the file's tests, released after.
import { afterAll, beforeAll } from "vitest";
import { initGpu, releaseGpu, type GpuOptions } from "../../src/tensor/device.js";

export function useGpu(opts: GpuOptions = {}): void {
  beforeAll(async () => {
    await initGpu(opts);
  });
  afterAll(() => {
    releaseGpu();
  });
}

/**
 * Runs `fn` on a fresh device made with `opts` (`{ f16: false }`: a device
 * without shader-f16), then makes the file's device again with `restore`.
 * Tensors made before do not survive the switch.
 */
export async function onDevice(opts: GpuOptions, fn: () => void | Promise<void>, restore: GpuOptions = {}): Promise<void> {
  releaseGpu();
  await initGpu(opts);
  try {
    await fn();
  } finally {
    releaseGpu();
    await initGpu(restore);
  }
}
