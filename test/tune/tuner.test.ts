// The tuner's selection, on jobs whose times come from an injected timer
// (nothing is timed, so the outcome is certain): the median decides, a tie
// goes to the heuristic's choice, a candidate that throws or gets no valid
// time is skipped with its reason, a bucket is tuned once, the winners land
// in the device profile's tuned table. Then the timestamp timer on the test
// device (every candidate of a small attention runs and gets a time; no
// speed is asserted), at f16 (the candidates run on f16 tensors and the
// winner serves f16 calls only), and the message without timestamps.
import { afterEach, describe, expect, it } from "vitest";
import { chooseAttentionVariant } from "../../src/kernels/attention.js";
import { chooseMatmulVariant } from "../../src/kernels/matmul.js";
import type { Precision } from "../../src/kernels/precision.js";
import { deviceProfile, setDeviceProfile, tunedKey, type TunedOp } from "../../src/kernels/profile.js";
import { gpu } from "../../src/tensor/device.js";
import { tuneShapes } from "../../src/tune/jobs.js";
import { fastest, median, tune, type CandidateTimer, type TuneJob } from "../../src/tune/tuner.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";

useGpu();
const device = await testProfile();

let saved: ReturnType<typeof deviceProfile> | null = null;
/** Changes the profile for one test; afterEach restores it. */
function withProfile(changes: Parameters<typeof setDeviceProfile>[0]): void {
  const prev = setDeviceProfile(changes);
  saved ??= prev;
}
afterEach(() => {
  if (saved) setDeviceProfile(saved);
  saved = null;
});

interface Fake {
  id: number;
}

/** A job over fake variants: run() records which ran and throws for those in `failing`. */
function fakeJob(dims: number[], ids: number[], failing: number[] = [], op: TunedOp = "matmul", precision: Precision = "f32"): TuneJob<Fake> & { ran: number[]; disposed: number } {
  const job = {
    op,
    dims,
    precision,
    title: `fake ${dims.join("×")}`,
    candidates: ids.map((id) => ({ id })),
    flops: 1,
    ran: [] as number[],
    disposed: 0,
    run(v: Fake) {
      if (failing.includes(v.id)) throw new Error(`variant ${v.id} does not compile`);
      job.ran.push(v.id);
    },
    dispose() {
      job.disposed++;
    },
  };
  return job;
}

/** A timer giving each variant the listed times (by the id its run records). */
function timerOf(times: Record<number, number[]>, job: { ran: number[] }, calls: [number, number][] = []): CandidateTimer {
  return async (run, warmup, reps) => {
    calls.push([warmup, reps]);
    run();
    return times[job.ran[job.ran.length - 1]!]!;
  };
}

describe("tune with injected timings", () => {
  it("picks the smallest median (not mean) and stores it in the profile", async () => {
    withProfile({ tuned: {} });
    const job = fakeJob([100, 200, 300], [1, 2, 3]);
    const calls: [number, number][] = [];
    const [r] = await tune([job as TuneJob], { timer: timerOf({ 1: [5, 5, 9], 2: [3, 100, 3], 3: [4, 4, 4] }, job, calls), reps: 3, warmup: 2 });
    expect(r!.candidates.map((c) => c.ms)).toEqual([5, 3, 4]);
    expect(r!.winner).toEqual({ id: 2 });
    expect(r!.heuristic).toEqual({ id: 1 });
    expect(r!.key).toBe("matmul:f32:128x256x512");
    expect(deviceProfile().tuned[r!.key]).toEqual({ id: 2 });
    expect(calls).toEqual([[2, 3], [2, 3], [2, 3]]);
    expect(job.disposed).toBe(1);
  });

  it("keeps the heuristic's choice on a tie; store: false leaves the profile alone", async () => {
    withProfile({ tuned: {} });
    const job = fakeJob([7, 7, 7], [1, 2]);
    const [r] = await tune([job as TuneJob], { timer: timerOf({ 1: [2, 2], 2: [2, 2] }, job), store: false });
    expect(r!.winner).toEqual({ id: 1 });
    expect(deviceProfile().tuned).toEqual({});
  });

  it("skips a candidate that throws or gets no valid time, with the reason; none left: no winner", async () => {
    withProfile({ tuned: {} });
    const lines: string[] = [];
    const job = fakeJob([9, 9, 9], [1, 2, 3, 4], [2]);
    const [r] = await tune([job as TuneJob], { timer: timerOf({ 1: [NaN], 3: [6], 4: [] }, job), progress: (l) => lines.push(l) });
    expect(r!.candidates.map((c) => c.ms)).toEqual([null, null, 6, null]);
    expect(r!.candidates[1]!.error).toBe("variant 2 does not compile");
    expect(r!.candidates[0]!.error).toMatch(/no valid times/);
    expect(r!.winner).toEqual({ id: 3 });
    expect(lines.filter((l) => l.includes("skipped"))).toHaveLength(3);
    expect(lines.join("\n")).toContain("skipped id=2: variant 2 does not compile");

    const none = fakeJob([9, 9, 9], [1], [1]);
    const [n] = await tune([none as TuneJob], { timer: timerOf({}, none) });
    expect(n!.winner).toBeNull();
    expect(Object.keys(deviceProfile().tuned)).toEqual([tunedKey("matmul", [9, 9, 9], "f32")]);
  });

  it("tunes each bucket once (its first shape stands for it) and disposes every job", async () => {
    withProfile({ tuned: {} });
    const a = fakeJob([1000, 10, 10], [1, 2]);
    const b = fakeJob([1024, 16, 9], [1, 2]);
    const c = fakeJob([1000, 10, 10], [1, 2], [], "gemm");
    const timer: CandidateTimer = async (run) => {
      run();
      return [1];
    };
    const results = await tune([a, b, c] as TuneJob[], { timer });
    expect(results.map((r) => r.key)).toEqual(["matmul:f32:1024x16x16", "gemm:f32:1024x16x16"]);
    expect(b.ran).toEqual([]);
    expect([a.disposed, b.disposed, c.disposed]).toEqual([1, 1, 1]);
  });

  it("tunes f32 and f16 of one bucket apart: each precision gets its own winner", async () => {
    withProfile({ tuned: {} });
    const f32 = fakeJob([100, 10, 10], [1, 2]);
    const f16 = fakeJob([100, 10, 10], [1, 2], [], "matmul", "f16");
    // Candidate 1 is faster at f32, candidate 2 at f16.
    const timer: CandidateTimer = async (run) => {
      run();
      return f16.ran.length > 0 ? [3 - f16.ran.at(-1)!] : [f32.ran.at(-1)!];
    };
    const results = await tune([f32, f16] as TuneJob[], { timer });
    expect(results.map((r) => [r.key, r.precision, r.winner])).toEqual([
      ["matmul:f32:128x16x16", "f32", { id: 1 }],
      ["matmul:f16:128x16x16", "f16", { id: 2 }],
    ]);
    expect(deviceProfile().tuned).toEqual({ "matmul:f32:128x16x16": { id: 1 }, "matmul:f16:128x16x16": { id: 2 } });
  });

  it("median and fastest", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(fastest([{ variant: {}, ms: null }, { variant: { a: 1 }, ms: 2 }, { variant: { a: 2 }, ms: 1 }])?.variant).toEqual({ a: 2 });
    expect(fastest([{ variant: {}, ms: null }])).toBeNull();
  });
});

describe("tune on the device", () => {
  it("without timestamp-query nothing is timed: it says so, the heuristic stays, jobs are freed", async () => {
    withProfile({ timestamps: false, tuned: {} });
    const lines: string[] = [];
    const job = fakeJob([8, 8, 8], [1]);
    expect(await tune([job as TuneJob], { progress: (l) => lines.push(l) })).toEqual([]);
    expect(lines).toEqual([expect.stringMatching(/no timestamp-query feature, so nothing is timed: the fixed heuristics choose/)]);
    expect(job.ran).toEqual([]);
    expect(job.disposed).toBe(1);
  });

  it.runIf(device.timestamps)("times every attention candidate with timestamps and installs the fastest", { timeout: 300_000 }, async () => {
    withProfile({ tuned: {} });
    const shape = { op: "attention", Nq: 16, Nk: 16, H: 2, dk: 8, dv: 8 } as const;
    const [r] = await tuneShapes([shape], { reps: 2 });
    expect(r!.candidates.length).toBeGreaterThan(1);
    for (const c of r!.candidates) {
      expect(c.error).toBeUndefined();
      expect(c.ms).toBeGreaterThan(0);
    }
    expect(chooseAttentionVariant(deviceProfile(), shape)).toEqual(r!.winner);
  });

  it.runIf(device.timestamps && device.f16)("precision f16 runs every candidate on f16 tensors and installs the winner for f16 calls only", { timeout: 300_000 }, async () => {
    withProfile({ tuned: {} });
    const shape = { op: "matmul", M: 20, N: 30, K: 8 } as const;
    const g = gpu();
    const kernels: string[] = [];
    // Picks the last candidate (the times fall), recording the pipelines each call ran.
    let calls = 0;
    const timer: CandidateTimer = async (run) => {
      g.startKernelProfile();
      run();
      kernels.push(...(await g.stopKernelProfile()).map((t) => t.kernel));
      return [100 - calls++];
    };
    const [r] = await tuneShapes([shape], { precision: "f16", timer });
    expect(r!.title).toBe("matmul 20×30×8 f16");
    expect(r!.key).toBe(tunedKey("matmul", [20, 30, 8], "f16"));
    expect(kernels).toHaveLength(r!.candidates.length);
    for (const k of kernels) expect(k).toMatch(/^matmul:\{"precision":"f16"/);
    expect(r!.winner).toEqual(r!.candidates.at(-1)!.variant);
    expect(r!.winner).not.toEqual(chooseMatmulVariant(20, 30, 8, {}, { ...deviceProfile(), tuned: {} }));
    expect(chooseMatmulVariant(20, 30, 8, {}, deviceProfile(), "f16")).toEqual(r!.winner);
    expect(chooseMatmulVariant(20, 30, 8, {}, deviceProfile(), "f32")).toEqual(r!.heuristic);
  });
});
