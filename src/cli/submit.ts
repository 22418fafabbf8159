// `segvol submit`: queues segment calls for `segvol worker`s (BullMQ on
// Redis). One job is one `segvol segment` call, and submit takes segment's
// own flags (their definitions and checks are segment's: addSegmentOptions,
// checkPromptFlags, checkDicomFlags, checkOutputFlags), less those of the
// run: --weights is the worker's. A DICOM folder (--series) is queued; a
// DICOMweb study is not (DICOMWEB_REFUSAL). `--manifest FILE.jsonl` queues many, each line the arguments
// of one call; `--wait` follows them to the end.
import { Command, Option } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DEFAULT_QUEUE, redactUrl } from "../queue/connection.js";
import { JOB_VERSION, type SegmentJob } from "../queue/job.js";
import { followJobs, submitJobs, type JobEvent } from "../queue/submit.js";
import { examples } from "./help.js";
import { addSegmentOptions, checkOutputFlags, checkPromptFlags, type SegmentOpts } from "./segment.js";
import { addSeriesOption, checkDicomFlags, isFolder } from "./segment_dicom.js";

type JobFlags = Omit<SegmentOpts, "weights" | "json" | "progress">;

/** Why a DICOMweb study is not queued. */
export const DICOMWEB_REFUSAL =
  "--dicomweb: a DICOMweb study is not queued: a job travels through Redis as plain data, and the service's credentials would travel with it; " +
  "copy the series into a folder on the shared volume and queue the folder, or run `segvol segment --dicomweb` on one machine";

/** The DICOM flags a job takes: --series (a folder's series); --dicomweb only to be refused with the reason (DICOMWEB_REFUSAL). */
function addJobDicomOptions(cmd: Command): Command {
  return addSeriesOption(cmd).addOption(new Option("--dicomweb <url>").hideHelp());
}

interface SubmitOpts extends Partial<JobFlags> {
  redis: string;
  queue: string;
  manifest?: string;
  wait?: boolean;
  json?: boolean;
}

/**
 * One job from segment's flags, checked as segment checks them (prompts,
 * numbers, output names and folders), with every path made absolute against
 * `base`. Text prompts are checked against the categories by the worker,
 * which has the weights.
 */
export function jobFromFlags(image: string, o: JobFlags, base: string): SegmentJob {
  if (o.dicomweb !== undefined) throw new Error(DICOMWEB_REFUSAL);
  if (o.out === undefined) throw new Error("give --out: a queued job writes a NIfTI mask or label map (.nii/.nii.gz), or from a DICOM folder a DICOM-SEG (.dcm)");
  const path = resolve(base, image);
  const out = resolve(base, o.out);
  const logits = o.logits !== undefined ? resolve(base, o.logits) : undefined;
  const { targets } = checkPromptFlags(o);
  if (!existsSync(path)) throw new Error(`${image}: no such file (a worker must find the input under this path)`);
  checkDicomFlags(path, { out, ...(o.series !== undefined ? { series: o.series } : {}) });
  checkOutputFlags(path, { out, logits }, targets);
  const input: SegmentJob["input"] = isFolder(path) ? { kind: "dicom", path, ...(o.series !== undefined ? { series: o.series } : {}) } : { kind: "nifti", path };
  const prompts: SegmentJob["prompts"] = {};
  if (o.text) prompts.text = o.text;
  if (o.box !== undefined) prompts.box = o.box;
  if (o.point) prompts.point = o.point;
  if (o.allowUnknownText) prompts.allowUnknownText = true;
  return {
    v: JOB_VERSION,
    input,
    prompts,
    outputs: { out, ...(logits !== undefined ? { logits } : {}) },
    options: { zoomIn: o.zoomIn, overlap: o.overlap, maxVoxels: o.maxVoxels },
  };
}

/** A parser of one segment call's arguments (IMAGE and segment's job flags), as the command line's. */
function jobParser(): Command {
  const cmd = new Command("segment").argument("<image>").exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  return addJobDicomOptions(addSegmentOptions(cmd, "job"));
}

/** The arguments of one segment call (a manifest line) → its job. */
export function jobFromArgs(args: readonly string[], base: string): SegmentJob {
  const cmd = jobParser();
  try {
    cmd.parse(args as string[], { from: "user" });
  } catch (e) {
    throw new Error((e as Error).message.replace(/^error: /, ""));
  }
  return jobFromFlags(cmd.args[0]!, cmd.opts<JobFlags>(), base);
}

/**
 * The jobs of a manifest: one JSON array of strings per line, the arguments
 * of one segment call (`["ct1.nii.gz", "--text", "liver", "--out", "liver1.nii.gz"]`);
 * relative paths are relative to the manifest's folder; blank lines are
 * skipped. Any bad line refuses the whole manifest.
 */
export function readManifest(file: string): SegmentJob[] {
  const base = dirname(resolve(file));
  const jobs: SegmentJob[] = [];
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, n) => {
      if (line.trim() === "") return;
      const where = `--manifest ${file} line ${n + 1}`;
      let args: unknown;
      try {
        args = JSON.parse(line);
      } catch (e) {
        throw new Error(`${where}: not JSON (${(e as Error).message})`);
      }
      if (!Array.isArray(args) || args.some((a) => typeof a !== "string")) throw new Error(`${where}: expected a JSON array of strings, segment's arguments (e.g. ["ct.nii.gz", "--text", "liver", "--out", "liver.nii.gz"])`);
      try {
        jobs.push(jobFromArgs(args as string[], base));
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
    });
  if (jobs.length === 0) throw new Error(`--manifest ${file}: no jobs in it`);
  return jobs;
}

/** The jobs this command line asks for: the manifest's, or the one given by IMAGE and segment's flags. */
function jobsOf(image: string | undefined, o: SubmitOpts): SegmentJob[] {
  if (o.manifest !== undefined) {
    if (image !== undefined || o.out !== undefined) throw new Error("--manifest: give either a manifest or one IMAGE with segment's flags, not both");
    return readManifest(o.manifest);
  }
  if (image === undefined) throw new Error("give IMAGE and segment's flags (at least --out and a prompt), or --manifest FILE.jsonl");
  return [jobFromFlags(image, o as JobFlags, process.cwd())];
}

/** A finished job as a line: its outputs' targets (voxels, mL) and time, or its reason. */
export function describeEnd(e: Exclude<JobEvent, { kind: "progress" }>): string {
  if (e.kind === "failed") return `job ${e.id} failed: ${e.reason}`;
  const r = e.result as { out?: string; seconds?: number; targets?: { name: string; voxels: number; ml: number }[] } | null;
  const targets = (r?.targets ?? []).map((t) => `${t.name} ${t.voxels} voxels ${t.ml} mL`).join(", ");
  return `job ${e.id} completed: ${r?.out ?? "?"}: ${targets} (${r?.seconds ?? "?"} s)`;
}

async function runSubmit(image: string | undefined, o: SubmitOpts): Promise<void> {
  const jobs = jobsOf(image, o);
  const ids = await submitJobs(o.redis, o.queue, jobs);
  if (o.json && !o.wait) process.stdout.write(JSON.stringify({ queue: o.queue, jobs: ids.map((id, n) => ({ id, input: jobs[n]!.input.path, out: jobs[n]!.outputs.out })) }) + "\n");
  else if (!o.json) ids.forEach((id, n) => console.log(`queued job ${id}: ${jobs[n]!.input.path} → ${jobs[n]!.outputs.out}`));
  if (!o.wait) return;
  const failed = await followJobs(o.redis, o.queue, ids, (e) => {
    if (e.kind === "progress") process.stderr.write(`job ${e.id}: ${e.progress.stage} ${e.progress.done}/${e.progress.total}\n`);
    else if (o.json) process.stdout.write(JSON.stringify(e.kind === "completed" ? { id: e.id, state: "completed", result: e.result } : { id: e.id, state: "failed", reason: e.reason }) + "\n");
    else console.log(describeEnd(e));
  });
  if (failed > 0) {
    console.error(`segvol: ${failed} of ${ids.length} job${ids.length === 1 ? "" : "s"} failed (queue ${o.queue} at ${redactUrl(o.redis)})`);
    process.exitCode = 1;
  }
}

export function registerSubmit(program: Command): void {
  const cmd = program
    .command("submit")
    .description("queue segment calls on Redis for `segvol worker`s: one job = one `segvol segment` call, with segment's flags (less --weights: the worker's)")
    .argument("[image]", "input CT: a NIfTI volume (.nii or .nii.gz) or a folder of DICOM files, as segment takes it; its path must reach the workers (a shared volume)")
    .requiredOption("--redis <url>", "the Redis the workers take jobs from (redis://host:port)")
    .option("--queue <name>", "the BullMQ queue", DEFAULT_QUEUE)
    .option("--manifest <file.jsonl>", "queue many jobs: each line a JSON array of one segment call's arguments (paths relative to the manifest's folder)")
    .option("--wait", "follow the jobs (stage, window k of n) until each has completed or failed; exit 1 if any failed")
    .option("--json", "machine-readable output: the queued ids, or with --wait one line per finished job");
  addJobDicomOptions(addSegmentOptions(cmd, "job"));
  cmd
    .addHelpText(
      "after",
      examples([
        "segvol submit --redis redis://queue-host:6379 /srv/segvol/ct/case1.nii.gz --text liver --text spleen --out /srv/segvol/out/case1.nii.gz",
        "segvol submit --redis redis://queue-host:6379 /srv/segvol/ct/case2.nii.gz --box 120,200,40,260,330,90 --out /srv/segvol/out/case2.nii.gz --wait",
        "segvol submit --redis redis://queue-host:6379 /srv/segvol/dicom/case3 --series 1.2.3.4 --text liver --out /srv/segvol/out/case3-liver.dcm",
        "segvol submit --redis redis://queue-host:6379 --manifest /srv/segvol/jobs.jsonl --wait --json",
      ]),
    )
    .action((image: string | undefined, o: SubmitOpts) => runSubmit(image, o));
}
