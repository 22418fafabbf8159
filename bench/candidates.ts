// `npm run bench -- --candidates [--json] [--filter SUBSTRING] [--reps N]`:
// every tuning candidate of the benched matmul, attention and conv-GEMM
// shapes (SegVol's: the ViT's Linear layers and attention, the mask
// decoder's attention, the upscaling ConvTranspose3d GEMMs and the patch
// embedding's) timed as the tuner times them (src/tune: GPU timestamps,
// median of the timed runs), with GFLOP/s; each row marks the heuristic's
// pick, this run's winner, and the winner cached by `segvol tune` if any.
// Nothing is stored. The matmuls run as Linear layers without bias, the
// GEMMs as pointwise conv3d of the same M, N, K (see src/tune/jobs.ts).
// Where the adapter has shader-f16, every shape is timed in f16 too (rows
// '… f16', marked with the f16 winner cached), as the tuner's --precision
// f16 times them.
import type { Precision } from "../src/kernels/precision.js";
import { deviceProfile, variantName } from "../src/kernels/profile.js";
import { gpu } from "../src/tensor/device.js";
import { loadTunedChoices } from "../src/tune/cache.js";
import { shapeTitle, tuneShapes, type TuneShape } from "../src/tune/jobs.js";
import type { TuneResult } from "../src/tune/tuner.js";
import { alignRows } from "./harness.js";

const linear = (M: number, K: number, N: number): TuneShape => ({ op: "matmul", M, N, K });
const attn = (Nq: number, Nk: number, H: number, d: number): TuneShape => ({ op: "attention", Nq, Nk, H, dk: d, dv: d });

/** The shapes of bench/matmul, attention and conv that run through a tuned kernel. */
export const CANDIDATE_SHAPES: TuneShape[] = [
  linear(2048, 768, 768),
  linear(2048, 768, 2304),
  linear(2048, 768, 3072),
  linear(2048, 3072, 768),
  attn(2048, 2048, 12, 64),
  attn(512, 512, 4, 24),
  attn(8, 2048, 8, 48),
  attn(2048, 8, 8, 48),
  { op: "gemm", M: 1536, N: 2048, K: 768 }, // ConvTranspose3d 768 → 192, k2 s2, on 8×16×16
  { op: "gemm", M: 768, N: 16384, K: 192 }, // ConvTranspose3d 192 → 96 on 16×32×32
  { op: "gemm", M: 2048, N: 768, K: 1024 }, // patch embedding of a 32×256×256 window
];

export interface CandidateRecord {
  op: string;
  precision: Precision;
  /** The shape's dimensions, with ` f16` after them at f16. */
  shape: string;
  variant: string;
  median_ms: number | null;
  gflops: number | null;
  heuristic: boolean;
  winner: boolean;
  cached: boolean;
  error?: string;
}

/** Times every candidate of the shapes whose title (`… f16` at f16) contains `filter`, at each precision; progress on stderr. */
export async function benchCandidates(filter: string | undefined, reps: number): Promise<CandidateRecord[]> {
  await loadTunedChoices();
  if (!deviceProfile().timestamps) throw new Error(`bench --candidates needs GPU timestamps; ${gpu().adapter.description} has no timestamp-query`);
  const precisions: Precision[] = deviceProfile().f16 ? ["f32", "f16"] : ["f32"];
  const results: TuneResult[] = [];
  for (const precision of precisions) {
    const shapes = CANDIDATE_SHAPES.filter((s) => !filter || shapeTitle(s, precision).includes(filter));
    results.push(...(await tuneShapes(shapes, { reps, precision, store: false, progress: (l) => process.stderr.write(`${l}\n`) })));
  }
  return results.flatMap((r) => {
    const cached = deviceProfile().tuned[r.key];
    return r.candidates.map((c) => ({
      op: r.op,
      precision: r.precision,
      shape: r.title.slice(r.op.length + 1),
      variant: variantName(c.variant),
      median_ms: c.ms,
      gflops: c.ms ? r.flops / c.ms / 1e6 : null,
      heuristic: c.variant === r.heuristic,
      winner: c.variant === r.winner,
      cached: cached !== undefined && variantName(cached) === variantName(c.variant),
      ...(c.error ? { error: c.error } : {}),
    }));
  });
}

/** The records as a text table; marks: h the heuristic's pick, w this run's winner, c the cached winner. */
export function candidatesTable(records: readonly CandidateRecord[]): string {
  const rows = [["op", "shape", "variant", "median ms", "GFLOP/s", "marks"]];
  for (const r of records) {
    const marks = [r.heuristic ? "h" : "", r.winner ? "w" : "", r.cached ? "c" : ""].join("");
    rows.push([r.op, r.shape, r.variant, r.median_ms?.toFixed(3) ?? `skipped: ${r.error}`, r.gflops?.toFixed(2) ?? "", marks]);
  }
  return `${alignRows(rows)}\nmarks: h = the heuristic's pick, w = the fastest here, c = the winner cached by segvol tune`;
}
