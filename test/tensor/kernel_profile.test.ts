// Kernel profiles (src/tensor/kernel_profile.ts through Gpu.startKernelProfile):
// every dispatch inside a profile is counted under its pipeline key, a big
// matmul measures longer than a tiny one, results are unchanged by the
// per-dispatch passes, and misuse is refused by name.
import { afterAll, beforeAll, expect, it } from "vitest";
import { gpu, initGpu, releaseGpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { matmul } from "../../src/kernels/matmul.js";
import { binary } from "../../src/kernels/elementwise.js";
import { kernelFamily } from "../../src/tensor/kernel_profile.js";

beforeAll(async () => {
  await initGpu();
});
afterAll(() => releaseGpu());

const ramp = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => ((i * 37) % 101) * scale - 0.5);

// The time check is there to catch launches paired with the wrong timestamps,
// so the two kernels differ by far more than the machine's noise: on a loaded
// 2-core lavapipe a 64-element add has measured up to 1.2 ms a call, where a
// 256³ matmul (2.7 ms) left too little margin; a 512³ one takes ~8× that.
it("counts each dispatch under its pipeline key, times a 512³ matmul above a 64-element add, and leaves results unchanged", async () => {
  const g = gpu();
  expect(g.canProfileKernels).toBe(true); // lavapipe and the H200 both have timestamp-query
  const big = [Tensor.from(ramp(512 * 512, 0.01), [512, 512]), Tensor.from(ramp(512 * 512, 0.02), [512, 512])];
  const small = [Tensor.from(ramp(64, 0.01), [8, 8]), Tensor.from(ramp(64, 0.03), [8, 8])];
  const plain = await matmul(big[0]!, big[1]!).readFloat32();

  g.startKernelProfile();
  const outs: Tensor[] = [];
  // More dispatches than one batch (64) holds, so several batches resolve.
  for (let i = 0; i < 3; i++) outs.push(matmul(big[0]!, big[1]!));
  for (let i = 0; i < 70; i++) outs.push(binary("add", small[0]!, small[1]!));
  const profile = await g.stopKernelProfile();

  expect(profile.reduce((s, k) => s + k.calls, 0)).toBe(73);
  const gemm = profile.filter((k) => k.kernel.startsWith("matmul:"));
  // Keys are the kernel's name and its variant as JSON (src/kernels/profile.ts variantPipeline).
  const add = profile.filter((k) => k.kernel.startsWith("binary:") && JSON.parse(k.kernel.slice("binary:".length)).op === "add");
  expect(gemm.map((k) => k.calls)).toEqual([3]);
  expect(add.map((k) => k.calls)).toEqual([70]);
  // One grid each: the split by grid sums to the kernel's calls and time.
  for (const k of [gemm[0]!, add[0]!]) {
    expect(k.grids.map((x) => x.calls)).toEqual([k.calls]);
    expect(k.grids[0]!.ms).toBeCloseTo(k.ms, 9);
  }
  // 2·512³ flops against 64 adds per call: the matmul is far longer. Were
  // the timestamps paired off by one, the adds would take the matmuls' time.
  expect(gemm[0]!.ms / 3).toBeGreaterThan(4 * (add[0]!.ms / 70));
  expect(add[0]!.ms).toBeGreaterThan(0);
  // Sorted longest first.
  for (let i = 1; i < profile.length; i++) expect(profile[i - 1]!.ms).toBeGreaterThanOrEqual(profile[i]!.ms);
  expect(await outs[0]!.readFloat32()).toEqual(plain);

  // Outside a profile nothing is recorded: a second profile sees only its own work.
  matmul(small[0]!, small[1]!).dispose();
  g.startKernelProfile();
  const one = binary("mul", small[0]!, small[1]!);
  const second = await g.stopKernelProfile();
  expect(second.map((k) => [kernelFamily(k.kernel), k.calls])).toEqual([["binary:mul", 1]]);
  for (const t of [...outs, ...big, ...small, one]) t.dispose();
});

it("refuses a second start and a stop without a start", async () => {
  const g = gpu();
  await expect(g.stopKernelProfile()).rejects.toThrow(/no profile is being recorded/);
  g.startKernelProfile();
  expect(() => g.startKernelProfile()).toThrow(/already being recorded/);
  await g.stopKernelProfile();
});

it("names kernel families: a variant key by its kernel and op, another key by its first two fields", () => {
  expect(kernelFamily('binary:{"op":"add","rank":2,"a":"c","b":"c"}')).toBe("binary:add");
  expect(kernelFamily('softmax:{"lanes":8,"rows":8}')).toBe("softmax");
  expect(kernelFamily("binary:add:1:a:b")).toBe("binary:add");
  expect(kernelFamily("layernorm_bwd:row:96:64:1")).toBe("layernorm_bwd:row");
  expect(kernelFamily("add_n:4")).toBe("add_n:4");
});
