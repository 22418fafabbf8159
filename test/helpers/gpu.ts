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
