// The job queue's throughput and overhead (`npx tsx bench/queue.ts [--jobs 200] [--workers 2] [--baseline 30] [--json]`;
// needs `npm run build` and redis-server). Not a timed test: it reports.
//
// 1. In-process baseline: segment's own steps (checkRequest, readNifti, the
//    pipeline, writeMasks, summarize, writeSidecar) with one model loaded once, as `segvol worker`
//    runs them, but called directly: seconds per job.
// 2. The queue: a redis-server on 127.0.0.1, `--workers` `segvol worker`
//    processes (the built CLI), `--jobs` small phantom jobs submitted as one
//    manifest; wall time from submit to the last completion → jobs per second.
// 3. The queue's overhead per job, from BullMQ's own timestamps on each job:
//    in the processor beyond segment's own time (the job's result.seconds), and the
//    gap between a worker finishing one job and starting its next
//    (completing the job in Redis, fetching the next). Their sum is what
//    the queue adds to each job over calling segment in-process.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Job, Queue } from "bullmq";
import { Redis } from "ioredis";
import { checkRequest, pipelineOptions, summarize, writeMasks, writeSidecar } from "../src/cli/segment.js";
import { segmentOptsOf } from "../src/cli/worker.js";
import { jobFromArgs } from "../src/cli/submit.js";
import { writePhantom } from "../src/demo/phantom.js";
import { checkFinite, readNifti } from "../src/io/nifti.js";
import { SegVol } from "../src/segvol/model.js";
import type { Vec3 } from "../src/segvol/pipeline/types.js";
import { releaseGpu } from "../src/tensor/device.js";
import { startRedisServer, stopProcess, waitFor } from "../test/helpers/redis.js";

const argv = process.argv.slice(2);
const flag = (name: string, dflt: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
const JOBS = flag("--jobs", 200);
const WORKERS = flag("--workers", 2);
const BASELINE = flag("--baseline", 30);
const json = argv.includes("--json");
const ROOT = join(import.meta.dirname, "..");
const DEMO = join(ROOT, "weights", "demo");
const PHANTOMS = 10;
const log = (s: string) => process.stderr.write(s + "\n");

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** `count` jobs over PHANTOMS small phantoms, one text prompt each, as segment's arguments. */
function jobArgs(dir: string, count: number, outDir: string): string[][] {
  return Array.from({ length: count }, (_, n) => [join(dir, "imagesTr", `phantom_${500 + (n % PHANTOMS)}.nii.gz`), "--text", "liver", "--out", join(outDir, `job${n}.nii.gz`)]);
}

/** Seconds per job when segment's steps are called in this process with one model. */
async function inProcess(jobs: string[][]): Promise<number[]> {
  const model = await SegVol.fromWeights(DEMO);
  const seconds: number[] = [];
  try {
    for (const [n, args] of jobs.entries()) {
      const o = segmentOptsOf(jobFromArgs(args, ROOT), DEMO);
      const t0 = performance.now();
      const req = checkRequest(args[0]!, o);
      const vol = readNifti(args[0]!, { maxVoxels: req.maxVoxels });
      checkFinite(vol);
      const result = await model.segment({ dims: vol.dims as Vec3, data: vol.data }, req.targets, pipelineOptions(req, o));
      writeSidecar(args[0]!, o, req, summarize(args[0]!, o, vol, result, writeMasks(args[0]!, o, vol, result, req), t0));
      if (n > 0) seconds.push((performance.now() - t0) / 1000); // the first compiles kernels
    }
  } finally {
    model.dispose();
    releaseGpu();
  }
  return seconds;
}

interface QueueRun {
  wallSeconds: number;
  segmentSeconds: number[];
  processorOverhead: number[];
  gaps: number[];
}

/** Runs the jobs through WORKERS `segvol worker`s; per-job times from BullMQ's timestamps. */
async function throughQueue(jobsFile: string, count: number): Promise<QueueRun> {
  const redis = await startRedisServer();
  const workers = Array.from({ length: WORKERS }, (_, n) =>
    spawn(process.execPath, [join(ROOT, "bin", "segvol.js"), "worker", "--redis", redis.url, "--weights", DEMO, "--name", `w${n}`], { stdio: ["ignore", "pipe", "inherit"] }),
  );
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue("segvol", { connection });
  try {
    const ready = workers.map((w) => new Promise<void>((r) => w.stdout!.on("data", (d: Buffer) => String(d).includes("waiting for jobs") && r())));
    await Promise.all(ready);
    const t0 = performance.now();
    const sub = spawnSync(process.execPath, [join(ROOT, "bin", "segvol.js"), "submit", "--redis", redis.url, "--manifest", jobsFile, "--json"], { encoding: "utf8" });
    if (sub.status !== 0) throw new Error(`submit failed: ${sub.stderr}`);
    const ids = (JSON.parse(sub.stdout) as { jobs: { id: string }[] }).jobs.map((j) => j.id);
    await waitFor(`${count} completed jobs`, async () => (await queue.getJobCounts("completed")).completed === count || undefined, 3_600_000, 100);
    const wallSeconds = (performance.now() - t0) / 1000;
    const jobs = (await Promise.all(ids.map((id) => Job.fromId(queue, id)))).filter((j): j is Job => !!j);
    return { wallSeconds, ...perJob(jobs) };
  } finally {
    for (const w of workers) await stopProcess(w);
    await queue.close();
    connection.disconnect();
    await redis.stop();
    rmSync(redis.dir, { recursive: true, force: true });
  }
}

/** Per job: segment's time (its result), the processor's time beyond it, and the gap before it on its worker. */
function perJob(jobs: Job[]): Omit<QueueRun, "wallSeconds"> {
  const segmentSeconds = jobs.map((j) => (j.returnvalue as { seconds: number }).seconds);
  const processorOverhead = jobs.map((j, n) => (j.finishedOn! - j.processedOn!) / 1000 - segmentSeconds[n]!);
  const gaps: number[] = [];
  const byWorker = new Map<string, Job[]>();
  for (const j of jobs) byWorker.set(j.processedBy!, [...(byWorker.get(j.processedBy!) ?? []), j]);
  for (const list of byWorker.values()) {
    list.sort((a, b) => a.processedOn! - b.processedOn!);
    for (let n = 1; n < list.length; n++) gaps.push((list[n]!.processedOn! - list[n - 1]!.finishedOn!) / 1000);
  }
  return { segmentSeconds, processorOverhead, gaps };
}

const dir = mkdtempSync(join(tmpdir(), "segvol-bench-queue-"));
try {
  for (let s = 0; s < PHANTOMS; s++) writePhantom(dir, 500 + s, { dims: [32, 32, 16] });
  for (const sub of ["base", "queue"]) mkdirSync(join(dir, sub));
  log(`in-process baseline: ${BASELINE} jobs`);
  const base = await inProcess(jobArgs(dir, BASELINE + 1, join(dir, "base")));
  const queued = jobArgs(dir, JOBS, join(dir, "queue"));
  writeFileSync(join(dir, "jobs.jsonl"), queued.map((a) => JSON.stringify(a)).join("\n") + "\n");
  log(`queue: ${JOBS} jobs, ${WORKERS} workers`);
  const load0 = loadavg()[0]!;
  const q = await throughQueue(join(dir, "jobs.jsonl"), JOBS);
  const overhead = mean(q.processorOverhead) + mean(q.gaps);
  const report = {
    machine: `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), lavapipe (CPU WebGPU), shared with other jobs: load average ${round(load0, 1)} → ${round(loadavg()[0]!, 1)}`,
    phantom: "32×32×16, one text prompt (liver), zoom-out + zoom-in",
    inProcess: { jobs: base.length, secondsPerJobMean: round(mean(base)), secondsPerJobMedian: round(median(base)), jobsPerSecond: round(1 / mean(base)) },
    queue: {
      jobs: JOBS,
      workers: WORKERS,
      wallSeconds: round(q.wallSeconds, 1),
      jobsPerSecond: round(JOBS / q.wallSeconds),
      segmentSecondsPerJobMean: round(mean(q.segmentSeconds)),
      // A worker's wall time per job (queue included): against the in-process time per job, what the
      // queue and the workers' sharing of the machine cost together (with --workers 1: the queue alone).
      wallSecondsPerJobPerWorker: round((q.wallSeconds * WORKERS) / JOBS),
      processorOverheadMsMean: round(mean(q.processorOverhead) * 1000, 1),
      gapBetweenJobsMsMean: round(mean(q.gaps) * 1000, 1),
      gapBetweenJobsMsMedian: round(median(q.gaps) * 1000, 1),
      overheadMsPerJob: round(overhead * 1000, 1),
      overheadFractionOfInProcessJob: round(overhead / mean(base)),
    },
  };
  if (json) process.stdout.write(JSON.stringify(report, null, 1) + "\n");
  const rows = [
    ["", "jobs", "jobs/s", "segment s/job (mean)", "wall s/job per worker", "queue overhead per job"],
    ["in-process segment, 1 process", String(base.length), String(report.inProcess.jobsPerSecond), String(report.inProcess.secondsPerJobMean), String(report.inProcess.secondsPerJobMean), "-"],
    [`queue, ${WORKERS} worker${WORKERS > 1 ? "s" : ""}`, String(JOBS), String(report.queue.jobsPerSecond), String(report.queue.segmentSecondsPerJobMean), String(report.queue.wallSecondsPerJobPerWorker), `${report.queue.overheadMsPerJob} ms (${report.queue.processorOverheadMsMean} in the processor + ${report.queue.gapBetweenJobsMsMean} between jobs)`],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stderr.write(`${report.machine}\n${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n")}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
