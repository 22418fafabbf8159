// `npm run bench [-- --json] [-- --filter SUBSTRING]`: runs every case of
// bench/*.bench.ts and prints a table (or a JSON array on stdout).
import { readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { initGpu, releaseGpu } from "../src/tensor/device.js";
import { table, timeCase, type BenchCase, type BenchRecord } from "./harness.js";

const args = process.argv.slice(2);
const json = args.includes("--json");
const fi = args.indexOf("--filter");
const filter = fi >= 0 ? args[fi + 1] : undefined;

const here = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(here).filter((f) => f.endsWith(".bench.ts")).sort();
await initGpu();
const records: BenchRecord[] = [];
try {
  for (const f of files) {
    const mod = (await import(pathToFileURL(`${here}/${f}`).href)) as { cases: BenchCase[] };
    for (const c of mod.cases) {
      if (filter && !`${c.op} ${c.shape}`.includes(filter)) continue;
      const rec = await timeCase(c);
      records.push(rec);
      if (!json) process.stderr.write(`${rec.op} ${rec.shape}: ${rec.median_ms} ms\n`);
    }
  }
} finally {
  releaseGpu();
}
if (json) process.stdout.write(JSON.stringify(records, null, 1) + "\n");
else process.stdout.write(table(records) + "\n");
