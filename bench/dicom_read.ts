// Time and peak memory of reading a DICOM CT series (readDicomSeries):
// 300 slices of 512×512 by default, built with dcmjs in a temp folder, each
// read in a fresh child process so that its peak RSS is the read's alone.
//
//   npx tsx bench/dicom_read.ts [--slices 300] [--size 512] [--runs 3] [--syntax explicit|implicit|deflated] [--json]
//
// Prints a table (and with --json, one JSON record) per run: seconds,
// the child's peak RSS, its RSS before reading, and the volume's own size.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readDicomSeries } from "../src/dicom/series.js";
import { TS, writeSeries } from "../test/helpers/dicom_series.js";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const MiB = 2 ** 20;

if (args[0] === "--read") {
  // Child: read once, report.
  const before = process.memoryUsage().rss;
  const t = performance.now();
  const s = readDicomSeries(args[1]!);
  const seconds = (performance.now() - t) / 1000;
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ seconds, peakRssMiB: peak / MiB, rssBeforeMiB: before / MiB, volumeMiB: s.data.byteLength / MiB, dims: s.dims, type: s.data.constructor.name }) + "\n");
} else {
  const slices = Number(opt("slices", "300")), size = Number(opt("size", "512")), runs = Number(opt("runs", "3"));
  const syntax = TS[opt("syntax", "explicit") as keyof typeof TS];
  const dir = mkdtempSync(join(tmpdir(), "segvol-bench-dicom-"));
  try {
    const hu = new Int16Array(size * size * slices);
    for (let x = 0; x < hu.length; x++) hu[x] = ((x * 2654435761) >>> 20) % 2000 - 1000;
    const t = performance.now();
    writeSeries(dir, { dims: [size, size, slices], hu, origin: [-200, -200, -400], rowDir: [1, 0, 0], colDir: [0, 1, 0], pixelSpacing: [0.78, 0.78], sliceStep: [0, 0, 1.25], transferSyntax: syntax });
    const writeSeconds = (performance.now() - t) / 1000;
    const tsx = join(import.meta.dirname, "..", "node_modules", "tsx", "dist", "cli.mjs");
    const records = [];
    for (let r = 0; r < runs; r++) {
      const child = spawnSync(process.execPath, [tsx, join(import.meta.dirname, "dicom_read.ts"), "--read", dir], { encoding: "utf8" });
      if (child.status !== 0) throw new Error(child.stderr);
      records.push(JSON.parse(child.stdout));
    }
    const result = { bench: "dicom_read", slices, size, syntax, writeSeconds, runs: records };
    if (args.includes("--json")) process.stdout.write(JSON.stringify(result) + "\n");
    console.log(`| run | read s | peak RSS MiB | RSS before MiB | volume MiB (${records[0].type}) |`);
    console.log("| --- | --- | --- | --- | --- |");
    records.forEach((x, n) => console.log(`| ${n + 1} | ${x.seconds.toFixed(2)} | ${x.peakRssMiB.toFixed(0)} | ${x.rssBeforeMiB.toFixed(0)} | ${x.volumeMiB.toFixed(0)} |`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
