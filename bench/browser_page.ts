// The bench page: bench/*.bench.ts's cases on the browser's own WebGPU, timed
// by bench/harness.ts as `npm run bench` times them, shown as a table (op,
// shape, ms, GFLOP/s, GB/s) under the adapter's name. bench/browser.ts builds
// it with the case list and runs it headless (`npm run bench:browser`).
import { initGpu } from "../src/tensor/device.js";
import { runsHere, timeCase, type BenchCase, type BenchRecord } from "./harness.js";

export interface BenchSuite {
  file: string;
  cases: BenchCase[];
}

function cell(row: HTMLTableRowElement, text: string): void {
  row.insertCell().textContent = text;
}

/** Runs every case whose "op shape" contains `filter` and that the adapter runs (runsHere); appends a row per record; returns the records. */
export async function runBench(suites: BenchSuite[], filter = ""): Promise<{ adapter: string; records: BenchRecord[] }> {
  const g = await initGpu();
  const a = g.adapter;
  const adapter = [a.vendor, a.architecture, a.device, a.description].filter((s) => s).join(" ") || "unnamed adapter";
  document.getElementById("adapter")!.textContent = `${adapter}; subgroups ${g.subgroupMinSize}-${g.subgroupMaxSize} lanes`;
  const body = (document.getElementById("results") as HTMLTableElement).tBodies[0]!;
  const records: BenchRecord[] = [];
  for (const s of suites) {
    for (const c of s.cases) {
      if ((filter && !`${c.op} ${c.shape}`.includes(filter)) || !runsHere(c)) continue;
      const r = await timeCase(c);
      records.push(r);
      const row = body.insertRow();
      for (const t of [r.op, r.shape, r.median_ms.toFixed(2), r.min_ms.toFixed(2), r.gflops?.toFixed(2) ?? "", r.gbps?.toFixed(2) ?? ""]) cell(row, t);
    }
  }
  document.getElementById("state")!.textContent = `done: ${records.length} cases`;
  return { adapter, records };
}
