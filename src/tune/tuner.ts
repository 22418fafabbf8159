// The autotuner: for each (op, shape bucket, precision) it times every candidate
// variant the op's kernel file lists for the call (`matmulCandidates`,
// `attentionCandidates`, `gemmCandidates`) with GPU timestamp queries and
// stores the fastest in the device profile's `tuned` table, which the op's
// chooser reads before its fixed heuristic.
//
// When it runs: dispatch is synchronous and timing is not (timestamps are
// read back asynchronously, and on lavapipe one candidate's compile takes
// seconds), so nothing is timed inside an op. Tuning is ahead of time and
// opt-in: `segvol tune` (or `tuneShapes` from the API) times the shapes a
// model will run and caches the winners (cache.ts); a later process loads
// them into its profile (`loadTunedChoices`) before its first forward.
// Until then, and on a device without `timestamp-query`, the heuristic
// decides. So the test suite and an untuned run pay nothing.
import type { Precision } from "../kernels/precision.js";
import { deviceProfile, setDeviceProfile, tunedKey, variantName, type TunedOp } from "../kernels/profile.js";
import { gpu } from "../tensor/device.js";

/** One tuning problem: an op at one call shape and precision, the variants to time, and how to run one. */
export interface TuneJob<V extends object = object> {
  op: TunedOp;
  /** The call's dimensions, as the op's chooser buckets them (see tunedKey). */
  dims: number[];
  /** The storage precision of the call's tensors: the winner serves calls of this precision only. */
  precision: Precision;
  /** A human title: `matmul 2048×2304×768` (with ` f16` after it at f16). */
  title: string;
  /** The candidates, the heuristic's choice first. */
  candidates: V[];
  /** Floating-point operations of one call, for GFLOP/s. */
  flops: number;
  /** Records one call of the op with `variant` forced (dispatches only; the timer waits). */
  run(variant: V): void;
  /** Frees the job's inputs. */
  dispose(): void;
}

/**
 * Times `run` (which records one call's dispatches): `warmup` untimed calls
 * (compiling the pipeline), then `reps` timed ones; returns each timed
 * call's GPU milliseconds. Throws what the call or the device reported.
 * Injectable, so that the selection is tested without timing anything.
 */
export type CandidateTimer = (run: () => void, warmup: number, reps: number) => Promise<number[]>;

/** One candidate's figures: its median time, or why it was skipped. */
export interface CandidateResult {
  variant: object;
  /** Median GPU time of one call in ms; null when skipped. */
  ms: number | null;
  /** Why the candidate was skipped (it failed to compile, validate or run). */
  error?: string;
}

export interface TuneResult {
  op: TunedOp;
  /** The dimensions the candidates were timed at. */
  dims: number[];
  precision: Precision;
  key: string;
  title: string;
  flops: number;
  /** The heuristic's choice (the job's first candidate). */
  heuristic: object;
  /** The fastest candidate; null when every one was skipped. */
  winner: object | null;
  candidates: CandidateResult[];
}

export interface TuneOptions {
  /** Untimed calls before the timed ones (default 1: compiles the pipeline). */
  warmup?: number;
  /** Timed calls per candidate; the median counts (default 5). */
  reps?: number;
  /** Default: GPU timestamps (needs the `timestamp-query` feature). */
  timer?: CandidateTimer;
  /** Progress lines (default none). */
  progress?: (line: string) => void;
  /** Store the winners in the device profile's tuned table (default true). */
  store?: boolean;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The timestamp timer: each timed call in its own kernel profile, its kernels' GPU times summed. */
export const timestampTimer: CandidateTimer = async (run, warmup, reps) => {
  const g = gpu();
  for (let i = 0; i < warmup; i++) run();
  await g.sync();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    g.startKernelProfile();
    try {
      run();
    } finally {
      const times = await g.stopKernelProfile();
      out.push(times.reduce((sum, t) => sum + t.ms, 0));
    }
  }
  return out;
};

/** Times every candidate of `job`; a candidate that throws is skipped with its message. */
async function timeCandidates(job: TuneJob, timer: CandidateTimer, warmup: number, reps: number): Promise<CandidateResult[]> {
  const results: CandidateResult[] = [];
  for (const variant of job.candidates) {
    try {
      const times = await timer(() => job.run(variant), warmup, reps);
      if (times.length === 0 || times.some((t) => !Number.isFinite(t) || t < 0)) throw new Error(`the timer gave no valid times (${times.join(", ")})`);
      results.push({ variant, ms: median(times) });
    } catch (e) {
      results.push({ variant, ms: null, error: (e as Error).message });
    }
  }
  return results;
}

/** The fastest timed candidate (the earlier one on a tie, so the heuristic's choice wins ties); null when none was timed. */
export function fastest(results: readonly CandidateResult[]): CandidateResult | null {
  let best: CandidateResult | null = null;
  for (const r of results) if (r.ms !== null && (best === null || r.ms < best.ms!)) best = r;
  return best;
}

/**
 * Times each job's candidates and picks the fastest per (op, bucket,
 * precision); jobs of a bucket already tuned in this call are skipped (the first shape seen
 * stands for its bucket). Each job is disposed once timed. Without a timer and without timestamps on the
 * device nothing is timed: the progress says so and the heuristic decides.
 */
export async function tune(jobs: readonly TuneJob[], opts: TuneOptions = {}): Promise<TuneResult[]> {
  const say = opts.progress ?? (() => {});
  if (!opts.timer && !deviceProfile().timestamps) {
    for (const job of jobs) job.dispose();
    say("tune: this device has no timestamp-query feature, so nothing is timed: the fixed heuristics choose every variant");
    return [];
  }
  const timer = opts.timer ?? timestampTimer;
  const results: TuneResult[] = [];
  for (const [i, job] of jobs.entries()) {
    const key = tunedKey(job.op, job.dims, job.precision);
    if (results.some((r) => r.key === key)) {
      job.dispose();
      continue;
    }
    say(`tune ${i + 1}/${jobs.length}: ${job.title} (${job.candidates.length} candidates)`);
    let candidates: CandidateResult[];
    try {
      candidates = await timeCandidates(job, timer, opts.warmup ?? 1, opts.reps ?? 5);
    } finally {
      job.dispose();
    }
    for (const c of candidates) if (c.error) say(`  skipped ${variantName(c.variant)}: ${c.error}`);
    const winner = fastest(candidates)?.variant ?? null;
    results.push({ op: job.op, dims: job.dims, precision: job.precision, key, title: job.title, flops: job.flops, heuristic: job.candidates[0]!, winner, candidates });
    if (winner && opts.store !== false) setDeviceProfile({ tuned: { ...deviceProfile().tuned, [key]: winner } });
  }
  return results;
}
