// Peak memory of `segvol segment` on a CT-size volume (issue 18.21):
//
//   npx tsx bench/segment_memory.ts [--dims 512,512,600] [--zoom-in] [--repo DIR] [--json FILE]
//
// A synthetic abdominal CT phantom (seed 4242) of --dims voxels, stored as
// int16 .nii.gz (512×512×600: 315 MB of voxels, 160 MB gzipped), is
// segmented for one text target ("liver") with the demo weights, zoom-out
// only unless --zoom-in, by the CLI of this checkout (or of --repo DIR, to
// measure another commit the same way) in a child process. The CLI may run
// its command in a process of its own (to filter Dawn's stderr notices), so
// every process of the tree reports its peak RSS (VmHWM) from an exit hook,
// and the peak is the largest: the process that holds the volume. The tree's
// RSS is also sampled every 50 ms to show where the peak falls. The phantom takes minutes to
// generate (~4 min and 4 GB for 512×512×600 on 2 cores) and is cached in
// $SEGVOL_BENCH_DIR (default <tmpdir>/segvol-bench).
//
// Prints a table (stderr) and the record as JSON (stdout, or --json FILE).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { writePhantom } from "../src/demo/phantom.js";
import { writeFileAtomic } from "../src/io/atomic.js";
import { gpu, initGpu, releaseGpu } from "../src/tensor/device.js";

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(flag("--repo") ?? join(here, ".."));
const dims = (flag("--dims") ?? "512,512,600").split(",").map(Number) as [number, number, number];
if (dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d >= 8)) throw new Error(`--dims: three integers ≥ 8, got ${flag("--dims")}`);
const zoomIn = args.includes("--zoom-in");
const SEED = 4242;
const log = (s: string) => process.stderr.write(s + "\n");

/** The cached phantom CT for `dims`, generated on first use. */
function phantomCt(): string {
  const cache = process.env.SEGVOL_BENCH_DIR ?? join(tmpdir(), "segvol-bench");
  const path = join(cache, `ct_${dims.join("x")}_seed${SEED}.nii.gz`);
  if (existsSync(path)) return path;
  log(`generating the ${dims.join("×")} phantom (seed ${SEED}) into ${path} …`);
  mkdirSync(cache, { recursive: true });
  const work = mkdtempSync(join(cache, "gen-"));
  try {
    writePhantom(work, SEED, { dims });
    renameSync(join(work, "imagesTr", `phantom_${SEED}.nii.gz`), path);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return path;
}

const MiB = 2 ** 20;
/** The resident set of a process and its descendants, from /proc, in bytes (0 once gone). */
function treeRss(pid: number): number {
  let rss = 0;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    rss = m ? Number(m[1]) * 1024 : 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, "latin1").split(" ")) {
        if (child.trim()) rss += treeRss(Number(child));
      }
    }
  } catch {
    // the process ended meanwhile
  }
  return rss;
}

// Loaded into each node process of the tree before the CLI (node passes
// --import on to the CLI's own child): writes its peak RSS when it exits.
const PROBE =
  "data:text/javascript," +
  encodeURIComponent(
    `import { readFileSync, writeFileSync } from "node:fs";
     process.on("exit", () => writeFileSync(process.env.SEGVOL_RSS_DIR + "/" + process.pid, /^VmHWM:\\s+(\\d+) kB/m.exec(readFileSync("/proc/self/status", "latin1"))[1]));`,
  );

interface Sample {
  s: number;
  /** RSS of the whole process tree. */
  rss_mib: number;
}

async function runSegment(ct: string, out: string): Promise<{ peaks: number[]; samples: Sample[]; seconds: number; summary: unknown; maskSha256: string }> {
  const rssDir = join(out, "peak_kb");
  mkdirSync(rssDir);
  const cliArgs = [
    "--import", "tsx", "--import", PROBE, join(repo, "src", "cli", "main.ts"),
    "segment", ct, "--weights", join(repo, "weights", "demo"), "--text", "liver",
    "--out", join(out, "mask.nii.gz"), "--json", "--no-progress", ...(zoomIn ? [] : ["--no-zoom-in"]),
  ];
  const t0 = performance.now();
  const child = spawn(process.execPath, cliArgs, { cwd: repo, env: { ...process.env, SEGVOL_RSS_DIR: rssDir }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const samples: Sample[] = [];
  const timer = setInterval(() => {
    const rss = treeRss(child.pid!);
    if (rss > 0) samples.push({ s: Math.round(performance.now() - t0) / 1000, rss_mib: Math.round(rss / MiB) });
  }, 50);
  const code = await new Promise<number | null>((done) => child.on("close", done));
  clearInterval(timer);
  if (code !== 0) throw new Error(`segment exited with ${code}:\n${stderr}`);
  return {
    peaks: readdirSync(rssDir).map((pid) => Number(readFileSync(join(rssDir, pid), "latin1")) * 1024).sort((a, b) => b - a),
    samples,
    seconds: Math.round(performance.now() - t0) / 1000,
    summary: JSON.parse(stdout),
    // To compare runs of different commits: the mask's decompressed bytes.
    maskSha256: createHash("sha256").update(gunzipSync(readFileSync(join(out, "mask.nii.gz")))).digest("hex"),
  };
}

const ct = phantomCt();
const out = mkdtempSync(join(tmpdir(), "segment-memory-"));
try {
  const run = await runSegment(ct, out);
  await initGpu();
  const a = gpu().adapter;
  const device = `${a.vendor} ${a.architecture} ${a.device} ${a.description}`.replace(/\s+/g, " ").trim();
  releaseGpu();
  const commit = await new Promise<string>((done) => {
    const g = spawn("git", ["-C", repo, "rev-parse", "--short", "HEAD"]);
    let s = "";
    g.stdout.on("data", (d) => (s += d));
    g.on("close", () => done(s.trim()));
  });
  const voxels = dims[0] * dims[1] * dims[2];
  // Where the peak fell: the time of the highest sample of the whole tree.
  const top = run.samples.reduce((m, x) => (x.rss_mib > m.rss_mib ? x : m), { s: 0, rss_mib: 0 });
  const record = {
    bench: "segment_memory",
    command: `segment --text liver${zoomIn ? "" : " --no-zoom-in"}`,
    commit,
    repo,
    device,
    dims,
    voxels,
    input: { dtype: "int16", voxel_mib: Math.round((voxels * 2) / MiB), file_mib: Math.round(statSync(ct).size / MiB) },
    peak_rss_mib: Math.round(run.peaks[0]! / MiB),
    // Every node process of the tree, largest first (the CLI's stderr relay is the small one).
    process_peaks_mib: run.peaks.map((p) => Math.round(p / MiB)),
    peak_at_s: top.s,
    seconds: run.seconds,
    summary: run.summary,
    mask_sha256: run.maskSha256,
    rss_samples: run.samples.filter((_, i) => i % 10 === 0 || run.samples[i] === top),
  };
  log("");
  log("| input | command | device | commit | peak RSS | seconds |");
  log("| --- | --- | --- | --- | --- | --- |");
  log(`| ${dims.join("×")} int16 (${record.input.voxel_mib} MiB, ${record.input.file_mib} MiB .nii.gz) | ${record.command} | ${device} | ${commit} | ${record.peak_rss_mib} MiB | ${record.seconds} |`);
  const json = JSON.stringify(record, null, 1) + "\n";
  const to = flag("--json");
  if (to) writeFileAtomic(to, Buffer.from(json), { what: "segment_memory" });
  else process.stdout.write(json);
} finally {
  rmSync(out, { recursive: true, force: true });
}
