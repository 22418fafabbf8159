// Benchmark harness: each `bench/*.bench.ts` exports `cases: BenchCase[]`.
// A case is timed on GPU-resident tensors, synchronised with
// onSubmittedWorkDone, median over `runs` after `warmup` runs (and at least
// WARMUP_MS of them). A short op is timed in batches of runs recorded back
// to back and divided by the batch (at least BATCH_MS of work a sample): in
// Node the host's wait for the GPU is polled every millisecond
// (src/tensor/gpu_wait.ts), which added up to 2 ms to a single 2 ms
// LayerNorm. The fastest sample is kept too: on a machine shared with other
// work it is the better estimate of what the op costs uncontended (GB/s and
// GFLOP/s stay medians).
import type { Precision } from "../src/kernels/precision.js";
import { gpu } from "../src/tensor/device.js";

export interface BenchRecord {
  op: string;
  shape: string;
  median_ms: number;
  /** The fastest timed run. */
  min_ms: number;
  gflops?: number;
  gbps?: number;
}

export interface BenchInstance {
  /** Records the op's GPU work (no host copies). */
  run: () => void;
  /** Floating-point operations of one run (for GFLOP/s), or bytes moved (for GB/s). */
  flops?: number;
  bytes?: number;
  dispose: () => void;
}

export interface BenchCase {
  op: string;
  shape: string;
  setup: () => BenchInstance | Promise<BenchInstance>;
  /** The storage precision of its tensors (default f32): an f16 case needs shader-f16 and is skipped where the adapter lacks it. */
  precision?: Precision;
  /** Repetitions (default 5); slow full-size cases may ask for fewer warm-ups. */
  runs?: number;
  warmup?: number;
}

/** Whether the current adapter runs a case (an f16 case needs shader-f16). */
export function runsHere(c: BenchCase): boolean {
  return c.precision !== "f16" || gpu().hasF16;
}

/**
 * Least work a timed sample holds, and the most runs a batch may have. At
 * 20 ms a sample the same ops read 10-30% slower than at 50 (lavapipe,
 * alternated: LayerNorm 2048×768 1.79-2.46 ms against 1.58-1.62, the logits
 * upsampling 1.90-2.19 against 1.47-1.65): each sample pays for one wait and
 * for lavapipe's threads starting again, and a pipeline runs its ops back to
 * back.
 */
const BATCH_MS = 50;
const WARMUP_MS = 200;
const MAX_BATCH = 64;

/** Milliseconds per run of `batch` runs recorded back to back, to the end of their GPU work. */
async function timeBatch(run: () => void, batch: number): Promise<number> {
  const g = gpu();
  const t0 = performance.now();
  for (let i = 0; i < batch; i++) run();
  await g.sync();
  return (performance.now() - t0) / batch;
}

export async function timeCase(c: BenchCase): Promise<BenchRecord> {
  const inst = await c.setup();
  try {
    // Warm-up runs for at least WARMUP_MS: one run of a 2 ms op left its
    // first samples slow (SegVol's logits upsampling, timed first in its
    // process: medians of 2.5-3.9 ms against 1.7-2.0 later).
    const warm = performance.now();
    for (let i = 0; i < (c.warmup ?? 1) || performance.now() - warm < WARMUP_MS; i++) await timeBatch(inst.run, 1);
    const once = await timeBatch(inst.run, 1);
    const batch = Math.max(1, Math.min(MAX_BATCH, Math.floor(BATCH_MS / once)));
    const times: number[] = [];
    for (let i = 0; i < Math.max(5, c.runs ?? 5); i++) times.push(await timeBatch(inst.run, batch));
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    const rec: BenchRecord = { op: c.op, shape: c.shape, median_ms: round(median), min_ms: round(times[0]!) };
    if (inst.flops !== undefined) rec.gflops = round(inst.flops / (median * 1e6));
    if (inst.bytes !== undefined) rec.gbps = round(inst.bytes / (median * 1e6));
    return rec;
  } finally {
    inst.dispose();
  }
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

export function table(records: BenchRecord[]): string {
  const rows = [["op", "shape", "median ms", "min ms", "GFLOP/s", "GB/s"]];
  for (const r of records) {
    rows.push([r.op, r.shape, r.median_ms.toFixed(2), r.min_ms.toFixed(2), r.gflops?.toFixed(2) ?? "", r.gbps?.toFixed(2) ?? ""]);
  }
  return alignRows(rows);
}

/** Rows of cells as text columns, each as wide as its widest cell. */
export function alignRows(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n");
}
