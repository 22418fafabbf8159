// `segvol tune [--config FILE | --weights DIR] [--precision f16]`: times
// every candidate variant of the model's matmul, attention and conv-GEMM
// shapes on this adapter at one storage precision (src/tune), caches the
// winners for later runs at that precision and prints them.
import type { Command } from "commander";
import type { Precision } from "../kernels/precision.js";
import { join } from "node:path";
import { variantName, type TunedOp } from "../kernels/profile.js";
import { DEFAULT_CONFIG, loadConfig, type SegVolConfig } from "../segvol/config.js";
import { tuneModel } from "../segvol/tune_shapes.js";
import { initGpu, releaseGpu } from "../tensor/device.js";
import { cacheDir } from "../tune/cache_store.node.js";
import type { TuneResult } from "../tune/tuner.js";
import { examples } from "./help.js";
import { names, parsePositiveInt, precisionOption } from "./parse.js";

interface TuneFlags {
  config?: string;
  weights?: string;
  reps: string;
  ops?: string[];
  cacheDir?: string;
  json?: boolean;
  precision: Precision;
}

/** The model configuration to tune: --config, else --weights' config.json, else the official model's. */
function configOf(o: TuneFlags): SegVolConfig {
  if (o.config && o.weights) throw new Error("tune: give --config or --weights, not both");
  if (o.config) return loadConfig(o.config);
  if (o.weights) return loadConfig(join(o.weights, "config.json"));
  return DEFAULT_CONFIG;
}

const OPS: readonly TunedOp[] = ["matmul", "attention", "gemm"];

/** --ops: names from OPS, repeatable or comma-separated. */
function parseOps(list: readonly string[]): TunedOp[] {
  for (const op of list) if (!OPS.includes(op as TunedOp)) throw new Error(`--ops ${op}: expected one of ${OPS.join(", ")}`);
  return list as TunedOp[];
}

const ms = (x: number | null) => (x === null ? "-" : x.toFixed(3));

/** The winners as a text table: shape, the heuristic's time, the winner and its time and GFLOP/s. */
export function winnersTable(results: readonly TuneResult[]): string {
  const rows = results.map((r) => {
    const heuristic = r.candidates.find((c) => c.variant === r.heuristic)!;
    const best = r.candidates.find((c) => c.variant === r.winner);
    const gflops = best?.ms ? (r.flops / best.ms / 1e6).toFixed(1) : "-";
    const speedup = best?.ms && heuristic.ms ? (heuristic.ms / best.ms).toFixed(2) : "-";
    return [r.title, String(r.candidates.length), ms(heuristic.ms), r.winner ? variantName(r.winner) : "(none ran)", ms(best?.ms ?? null), gflops, speedup];
  });
  const head = ["shape", "candidates", "heuristic ms", "winner", "winner ms", "GFLOP/s", "speed-up"];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i]!)).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

export function registerTune(program: Command): void {
  program
    .command("tune")
    .description("time each kernel variant of a model's shapes on this adapter and cache the fastest for later runs")
    .option("--config <file>", "tune this config.json's shapes (default: the official SegVol)")
    .option("--weights <dir>", "tune the shapes of this weights folder's config.json")
    .option("--reps <n>", "timed runs per candidate (the median counts)", "5")
    .option("--ops <names>", `tune only these ops (${OPS.join(", ")}; repeatable or comma-separated; default all)`, names("--ops"))
    .option("--cache-dir <dir>", `where the winners are cached (default: $SEGVOL_CACHE_DIR, else $XDG_CACHE_HOME/segvol-webgpu, else ~/.cache/segvol-webgpu; here ${cacheDir()})`)
    .addOption(precisionOption())
    .option("--json", "print the results (every candidate's time) as JSON")
    .addHelpText("after", examples(["segvol tune", "segvol tune --weights weights/demo", "segvol tune --config config.json --reps 9 --json", "segvol tune --ops attention", "segvol tune --precision f16"]))
    .action(async (o: TuneFlags) => {
      const config = configOf(o);
      const reps = parsePositiveInt("--reps", o.reps);
      const ops = parseOps(o.ops ?? OPS);
      await initGpu();
      try {
        const progress = (line: string) => process.stderr.write(`${line}\n`);
        const { results, cachedAt } = await tuneModel(config, { ops, reps, precision: o.precision, progress, warn: progress, location: { dir: o.cacheDir } });
        if (cachedAt) progress(`tune: ${results.length} winners cached in ${cachedAt}`);
        process.stdout.write(o.json ? JSON.stringify(results) + "\n" : winnersTable(results) + "\n");
      } finally {
        releaseGpu();
      }
    });
}
