// `npm run bench [-- --json] [-- --filter SUBSTRING]`: runs every case of
// bench/*.bench.ts and prints a table (or a JSON array on stdout).
// `npm run bench -- --candidates [--reps N]`: every tuning candidate of the
// benched matmul, attention and GEMM shapes instead (bench/candidates.ts).
import { readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { initGpu, releaseGpu } from "../src/tensor/device.js";
import { benchCandidates, candidatesTable } from "./candidates.js";
import { runsHere, table, timeCase, type BenchCase, type BenchRecord } from "./harness.js";

const args = process.argv.slice(2);
const json = args.includes("--json");
const fi = args.indexOf("--filter");
const filter = fi >= 0 ? args[fi + 1] : undefined;

const here = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(here).filter((f) => f.endsWith(".bench.ts")).sort();

/** --reps N of --candidates: timed runs per candidate (default 5). */
function candidateReps(): number {
  const ri = args.indexOf("--reps");
  if (ri < 0) return 5;
  const reps = Number(args[ri + 1]);
  if (!Number.isSafeInteger(reps) || reps < 1) throw new Error(`--reps ${args[ri + 1]}: expected a whole number of at least 1`);
  return reps;
}

await initGpu();
try {
  if (args.includes("--candidates")) {
    const candidates = await benchCandidates(filter, candidateReps());
    process.stdout.write((json ? JSON.stringify(candidates, null, 1) : candidatesTable(candidates)) + "\n");
  } else {
    await runCases();
  }
} finally {
  releaseGpu();
}

/** Every case of bench/*.bench.ts (matching --filter), as a table or JSON on stdout. */
async function runCases(): Promise<void> {
  const records: BenchRecord[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(`${here}/${f}`).href)) as { cases: BenchCase[] };
    for (const c of mod.cases) {
      if (filter && !`${c.op} ${c.shape}`.includes(filter)) continue;
      if (!runsHere(c)) {
        process.stderr.write(`${c.op} ${c.shape}: skipped (f16 needs shader-f16, which this adapter lacks)\n`);
        continue;
      }
      const rec = await timeCase(c);
      records.push(rec);
      if (!json) process.stderr.write(`${rec.op} ${rec.shape}: ${rec.median_ms} ms\n`);
    }
  }
  if (json) process.stdout.write(JSON.stringify(records, null, 1) + "\n");
  else process.stdout.write(table(records) + "\n");
}
