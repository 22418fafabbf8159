// The job queue end to end, against a real redis-server on 127.0.0.1: two
// `segvol worker` processes (the built CLI, the demo model) and 12 phantom
// jobs, one worker SIGKILLed mid-job; bad input failing without retry;
// `segvol status`; SIGTERM finishing the current job. The outputs are
// compared with a single-process run of the same jobs (segment's own steps
// in this process, and for one job the `segvol segment` command itself).
import { watch, type FSWatcher } from "node:fs";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { checkRequest, pipelineOptions, summarize, writeMasks, writeSidecar, type SegmentOpts } from "../../src/cli/segment.js";
import { checkFinite, readNifti } from "../../src/io/nifti.js";
import { SegVol } from "../../src/segvol/model.js";
import type { Vec3 } from "../../src/segvol/pipeline/types.js";
import { releaseGpu } from "../../src/tensor/device.js";
import { waitFor } from "../helpers/redis.js";
import { tempFolderWith } from "../helpers/temp.js";
import { DEMO, requireBuild, segvol, segvolAsync, useQueue, useRedis, useWorkers, type WorkerProc, writePhantoms } from "./harness.js";

/** The 12 jobs' segment arguments (relative to the test folder): label maps with sidecars, logits, box and points, zoom-out only. */
function jobArgs(images: readonly string[]): string[][] {
  return images.map((image, n) => {
    const out = `out/job${n}.nii.gz`;
    if (n % 3 === 0) return [image, "--text", "liver", "--text", "spleen", "--out", out];
    if (n % 3 === 1) return [image, "--text", "liver", "--logits", `out/job${n}_logits.nii.gz`, "--out", out, ...(n === 4 ? ["--no-zoom-in"] : [])];
    return [image, "--box", "6,6,3,25,25,12", "--point", "16,16,8", "--point", "2,2,1,0", "--out", out];
  });
}

/** segment's steps (src/cli/segment.ts: checkRequest, readNifti, the pipeline, writeMasks, summarize, writeSidecar) for each job, with one model, into ref/. */
async function singleProcessRun(dir: string, jobs: string[][]): Promise<void> {
  mkdirSync(join(dir, "ref"));
  const model = await SegVol.fromWeights(DEMO);
  try {
    for (const [image, ...flags] of jobs) {
      const o: SegmentOpts = { weights: DEMO, out: "", zoomIn: !flags.includes("--no-zoom-in"), overlap: "0.5", maxVoxels: String(2 ** 29), progress: false };
      for (let i = 0; i < flags.length; i++) {
        const [flag, value] = [flags[i]!, flags[i + 1]!];
        if (flag === "--text") (o.text ??= []).push(value);
        else if (flag === "--point") (o.point ??= []).push(value);
        else if (flag === "--box") o.box = value;
        else if (flag === "--out") o.out = join(dir, value.replace(/^out\//, "ref/"));
        else if (flag === "--logits") o.logits = join(dir, value.replace(/^out\//, "ref/"));
        else continue;
        i++;
      }
      const path = join(dir, image!);
      const req = checkRequest(path, o);
      const vol = readNifti(path, { maxVoxels: req.maxVoxels });
      checkFinite(vol);
      const result = await model.segment({ dims: vol.dims as Vec3, data: vol.data }, req.targets, pipelineOptions(req, o));
      writeSidecar(path, o, req, summarize(path, o, vol, result, writeMasks(path, o, vol, result, req), performance.now()));
    }
  } finally {
    model.dispose();
    releaseGpu();
  }
}

/** The files a job writes: its mask or label map, the sidecar of a label map, its logits. */
function outputsOf(args: readonly string[]): string[] {
  const out = args[args.indexOf("--out") + 1]!;
  const files = [out];
  if (args.filter((a) => a === "--text").length > 1) files.push(out.replace(/\.nii\.gz$/, ".json"));
  if (args.includes("--logits")) files.push(args[args.indexOf("--logits") + 1]!);
  return files;
}

/** Every file event in `dir` that writes a final output in place (fs.watch "change"): an atomic writer only renames onto it. */
function watchInPlaceWrites(dir: string, finals: ReadonlySet<string>): { events: string[]; watcher: FSWatcher } {
  const events: string[] = [];
  const watcher = watch(dir, (type, name) => {
    if (type === "change" && name && finals.has(name)) events.push(`${type} ${name}`);
  });
  return { events, watcher };
}

describe("segment job queue (BullMQ on a real redis-server)", () => {
  const dir = tempFolderWith("segvol-queue", {});
  const redis = useRedis();
  const q = useQueue(redis);
  const startWorker = useWorkers();
  let jobs: string[][];
  let workers: WorkerProc[] = [];

  beforeAll(async () => {
    requireBuild();
    const images = writePhantoms(join(dir, "ph"), Array.from({ length: 12 }, (_, n) => 300 + n)).map((p) => p.slice(dir.length + 1));
    jobs = jobArgs(images);
    await singleProcessRun(dir, jobs);
    mkdirSync(join(dir, "out"));
    workers = await Promise.all([startWorker(redis.url, "A"), startWorker(redis.url, "B")]);
  }, 300_000);

  it("the reference equals `segvol segment` itself, byte for byte", () => {
    const args = jobs[0]!.map((a) => a.replace(/^out\//, "cli_"));
    const r = segvol(["segment", ...args, "--weights", DEMO], dir);
    expect(r.code, r.stderr).toBe(0);
    for (const f of outputsOf(args)) expect(readFileSync(join(dir, f)).equals(readFileSync(join(dir, "ref", f.replace(/^cli_/, "")))), f).toBe(true);
  });

  it("12 jobs on two workers, one SIGKILLed mid-job: all complete, byte-equal to the single-process run, nothing partial", async () => {
    const [a, b] = workers as [WorkerProc, WorkerProc];
    const finals = new Set(jobs.flatMap(outputsOf).map((f) => basename(f)));
    const watched = watchInPlaceWrites(join(dir, "out"), finals);
    writeFileSync(join(dir, "jobs.jsonl"), jobs.map((j) => JSON.stringify(j)).join("\n") + "\n");
    const submitted = segvol(["submit", "--redis", redis.url, "--manifest", join(dir, "jobs.jsonl"), "--json"], dir);
    expect(submitted.code, submitted.stderr).toBe(0);
    const ids = (JSON.parse(submitted.stdout) as { jobs: { id: string }[] }).jobs.map((j) => j.id);
    expect(ids).toHaveLength(12);

    // Freeze A inside a job's segmentation (after a progress report), check that the job is still A's and
    // unfinished, then SIGKILL it: a kill mid-job by construction, whatever the machine's speed.
    let killed: string | undefined;
    for (let from = 0; !killed; ) {
      const { match, index } = await a.waitForLine(/job (\d+): zoom-/, 120_000, from);
      a.proc.kill("SIGSTOP");
      const job = await q.job(match[1]!);
      if ((await job.getState()) === "active" && job.processedBy === "A") killed = job.id!;
      else a.proc.kill("SIGCONT");
      from = index + 1;
    }
    a.proc.kill("SIGKILL");
    expect((await a.exited()).signal).toBe("SIGKILL");

    await waitFor("12 completed jobs", async () => (await q.queue.getJobCounts("completed")).completed === 12 || undefined, 240_000, 250);
    watched.watcher.close();
    const again = await q.job(killed);
    expect(again.processedBy, "the killed worker's job was finished by the other").toBe("B");
    expect(again.stalledCounter + again.attemptsStarted, "taken again as stalled").toBeGreaterThan(1);
    expect(b.lines.some((l) => l.includes(`job ${killed}: started`))).toBe(true);
    expect((await q.queue.getJobCounts("failed")).failed).toBe(0);

    // Every output is there and equals the single-process run (masks byte-equal: Dice 1.0); no temp or partial file is left.
    const expected = jobs.flatMap(outputsOf).map((f) => basename(f)).sort();
    expect(readdirSync(join(dir, "out")).sort()).toEqual(expected);
    for (const f of expected) expect(readFileSync(join(dir, "out", f)).equals(readFileSync(join(dir, "ref", f))), f).toBe(true);
    expect(watched.events, "a final output was written in place").toEqual([]);
    // Each job's result is segment's summary.
    const result = (await q.job(ids[0]!)).returnvalue as { out: string; targets: { name: string; voxels: number; ml: number }[]; seconds: number };
    expect(result.out).toBe(join(dir, "out", "job0.nii.gz"));
    expect(result.targets.map((t) => t.name)).toEqual(["liver", "spleen"]);
    expect(result.targets[0]!.voxels).toBe(JSON.parse(readFileSync(join(dir, "ref", "job0.json"), "utf8")).labels[0].voxels);
    expect(result.seconds).toBeGreaterThan(0);
  }, 400_000);

  it("bad input fails at once with its reason, without retries; status lists it", async () => {
    const image = jobs[0]![0]!;
    // A phantom cut short: its header reads, its voxels do not inflate.
    const whole = readFileSync(join(dir, image));
    writeFileSync(join(dir, "corrupt.nii.gz"), whole.subarray(0, whole.length - 100));
    const bad: [string[], RegExp][] = [
      [["corrupt.nii.gz", "--text", "liver", "--out", "out/bad0.nii.gz"], /^readNifti: .*corrupt\.nii\.gz: gzip data is truncated or corrupt/],
      [[image, "--text", "banana", "--out", "out/bad1.nii.gz"], /"banana" is not a category/],
      [[image, "--box", "0,0,0,99,99,99", "--out", "out/bad2.nii.gz"], /box \(0, 0, 0, 99, 99, 99\) lies outside the volume/],
    ];
    const ids: string[] = [];
    for (const [args, reason] of bad) {
      const r = segvol(["submit", "--redis", redis.url, ...args, "--json"], dir);
      expect(r.code, r.stderr).toBe(0);
      const id = JSON.parse(r.stdout).jobs[0].id as string;
      ids.push(id);
      const job = await waitFor(`job ${id} failed`, async () => {
        const j = await q.job(id);
        return (await j.getState()) === "failed" ? j : undefined;
      }, 60_000, 200);
      expect(job.failedReason).toMatch(reason);
      expect(job.attemptsMade, `job ${id}: not retried`).toBe(1);
    }
    // --wait on a bad job: its reason, exit 1.
    const waited = segvolAsync(["submit", "--redis", redis.url, "corrupt.nii.gz", "--text", "liver", "--out", "out/bad3.nii.gz", "--wait"], dir);
    const w = await waited.done;
    expect(w.code).toBe(1);
    expect(w.stdout).toMatch(/job \d+ failed: readNifti: .*corrupt\.nii\.gz: gzip data is truncated or corrupt/);
    const status = segvol(["status", "--redis", redis.url], dir);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^queue segvol: waiting 0, active 0, completed 12, failed 4\n/);
    for (const id of ids) expect(status.stdout).toMatch(new RegExp(`job ${id}: .* → .*bad\\d\\.nii\\.gz: .+ \\(1 attempt\\)`));
    expect(status.stdout).toContain('"banana" is not a category');
    expect(readdirSync(join(dir, "out")).filter((f) => f.startsWith("bad"))).toEqual([]);
  }, 200_000);

  it("SIGTERM lets the worker finish its current job, then it exits 0 and takes no more", async () => {
    const live = workers.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
    const from = live.map((w) => w.lines.length);
    const image = jobs[1]![0]!;
    const r = segvol(["submit", "--redis", redis.url, image, "--text", "liver", "--out", "out/term.nii.gz", "--json"], dir);
    const id = JSON.parse(r.stdout).jobs[0].id as string;
    const w = await waitFor(`a worker to start job ${id}`, () => live.find((w, n) => w.lines.slice(from[n]).some((l) => l.includes(`job ${id}: started`))), 60_000);
    // The job is under way when the signal arrives: the worker is frozen until the signal is queued.
    w.proc.kill("SIGSTOP");
    expect(await (await q.job(id)).getState()).toBe("active");
    w.proc.kill("SIGTERM");
    w.proc.kill("SIGCONT");
    const next = segvol(["submit", "--redis", redis.url, image, "--text", "spleen", "--out", "out/after.nii.gz", "--json"], dir);
    const nextId = JSON.parse(next.stdout).jobs[0].id as string;
    expect(await w.exited()).toEqual({ code: 0, signal: null });
    const job = await q.job(id);
    expect(await job.getState()).toBe("completed");
    expect(job.processedBy).toBe(w.name);
    expect(readNifti(join(dir, "out", "term.nii.gz")).data).toEqual(readNifti(join(dir, "ref", "job1.nii.gz")).data);
    const after = await q.job(nextId);
    expect(after.processedBy ?? null).not.toBe(w.name);
    if (live.length === 1) expect(await after.getState()).toBe("waiting");
  }, 200_000);
});
