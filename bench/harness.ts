// Benchmark harness: each `bench/*.bench.ts` exports `cases: BenchCase[]`.
// A case is timed on GPU-resident tensors, synchronised with
// onSubmittedWorkDone, median over `runs` after `warmup` runs. The fastest
// run is kept too: on a machine shared with other work it is the better
// estimate of what the op costs uncontended (GB/s and GFLOP/s stay medians).
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

export async function timeCase(c: BenchCase): Promise<BenchRecord> {
  const inst = await c.setup();
  const g = gpu();
  try {
    for (let i = 0; i < (c.warmup ?? 1); i++) {
      inst.run();
      await g.sync();
    }
    const times: number[] = [];
    for (let i = 0; i < Math.max(5, c.runs ?? 5); i++) {
      const t0 = performance.now();
      inst.run();
      await g.sync();
      times.push(performance.now() - t0);
    }
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
