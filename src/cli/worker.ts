// `segvol worker`: runs queued segment calls (src/queue) with one model kept
// loaded, so that the GPU's compiled kernels and weights stay warm across
// jobs. A job is turned back into segment's flags and run through segment's
// own checks (checkRequest), readers (a DICOM folder: segment_dicom.ts),
// pipeline options and writers (writeMasks, writeDicomOutputs; atomic), so that a job writes exactly what `segvol segment` would.
//
// The worker runs in the CLI's own process, not in the child that other
// commands run in (quiet_stderr.ts): SIGKILL must stop the worker itself
// (an orphaned child would go on holding jobs), and SIGTERM reaches it
// directly. Dawn's two adapter notices therefore appear once on stderr.
import type { Command } from "commander";
import { hostname } from "node:os";
import { generatePhantom } from "../demo/phantom.js";
import { DEFAULT_QUEUE } from "../queue/connection.js";
import { checkFinite } from "../io/nifti.js";
import { readJobInput } from "../queue/inputs.js";
import { JobInputError, type JobProgress, type SegmentJob } from "../queue/job.js";
import { startQueueWorker } from "../queue/worker.js";
import { SegVol, type Precision } from "../segvol/model.js";
import type { SegmentResult, Vec3 } from "../segvol/pipeline/types.js";
import { releaseGpu } from "../tensor/device.js";
import { examples } from "./help.js";
import { parsePositiveInt, precisionOption } from "./parse.js";
import { checkRequest, dicomSummary, pipelineOptions, summarize, writeMasks, writeSidecar, type SegmentOpts, type SegmentSummary } from "./segment.js";
import { readSegmentInput, writeDicomOutputs, type SegmentInput } from "./segment_dicom.js";

interface WorkerOpts {
  redis: string;
  weights: string;
  precision: Precision;
  queue: string;
  concurrency: string;
  stalledInterval: string;
  name?: string;
}

/** The job as segment's parsed flags, with this worker's weights. */
export function segmentOptsOf(job: SegmentJob, weights: string): SegmentOpts {
  const o: SegmentOpts = { weights, out: job.outputs.out, zoomIn: job.options.zoomIn, overlap: job.options.overlap, maxVoxels: job.options.maxVoxels, progress: false };
  if (job.outputs.logits !== undefined) o.logits = job.outputs.logits;
  if (job.prompts.text) o.text = job.prompts.text;
  if (job.prompts.box !== undefined) o.box = job.prompts.box;
  if (job.prompts.point) o.point = job.prompts.point;
  if (job.prompts.allowUnknownText) o.allowUnknownText = true;
  if (job.input.kind === "dicom" && job.input.series !== undefined) o.series = job.input.series;
  return o;
}

/** Runs `fn` after every earlier call has settled: one segmentation on the GPU at a time, whatever the concurrency. */
function serializer(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
}

/** `fn`'s errors as JobInputError: what fails there is the request itself, and would fail again. */
async function asInputError<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw e instanceof JobInputError ? e : new JobInputError((e as Error).message);
  }
}

/**
 * The job's image: a NIfTI through the queue's reader (no leak on a corrupt
 * .nii.gz), a DICOM folder through segment's own (readSegmentInput, then
 * checkFinite, as segment); a bad series fails the job with its DicomError's message.
 */
async function readInput(job: SegmentJob, o: SegmentOpts, maxVoxels: number): Promise<SegmentInput> {
  if (job.input.kind === "nifti") return { vol: await readJobInput(job.input, maxVoxels), dicom: null, client: null };
  const folder = job.input.path;
  return asInputError(async () => {
    const input = await readSegmentInput(folder, o, maxVoxels);
    checkFinite(input.vol);
    return input;
  });
}

/** One job, as `segvol segment` runs it, on the loaded model. */
export function segmentJobRunner(model: SegVol, weights: string) {
  const gpu = serializer();
  return async (job: SegmentJob, progress: (p: JobProgress) => void): Promise<SegmentSummary> => {
    const started = performance.now();
    const image = job.input.path;
    const o = segmentOptsOf(job, weights);
    const req = await asInputError(() => checkRequest(image, o));
    const input = await readInput(job, o, req.maxVoxels);
    const vol = input.vol;
    let result: SegmentResult;
    try {
      result = await gpu(() =>
        model.segment({ dims: vol.dims as Vec3, data: vol.data }, req.targets, {
          ...pipelineOptions(req, o),
          onProgress: (done, total, stage) => progress({ stage, done, total }),
        }),
      );
    } catch (e) {
      // The pipeline's own checks (prompts outside the volume, a constant image) say "segment: …".
      if (/^segment: /.test((e as Error).message)) throw new JobInputError((e as Error).message);
      throw e;
    }
    // What segment writes, in its order: the mask or label map and the logits, a DICOM-SEG, then a label map's sidecar.
    const voxels = writeMasks(image, o, vol, result, req);
    const seg = await writeDicomOutputs(input, o, result, req.targets, image);
    const summary = { ...summarize(image, o, vol, result, voxels, started), ...dicomSummary(input, seg) };
    writeSidecar(image, o, req, summary);
    return summary;
  };
}

/**
 * Compiles the GPU kernels before the first job, as the demo does: a
 * zoom-out pass on a small CT phantom with a box and, for a model with a
 * text tower, a text prompt uses every kernel a job will. Kernel
 * compilation holds the event loop (seconds; much longer on a machine's very
 * first run): during a job it would stop the lock renewals, and the job
 * would be taken as stalled.
 */
export async function warmUp(model: SegVol): Promise<number> {
  const t0 = performance.now();
  const ph = generatePhantom(1, { dims: [32, 32, 16] });
  const box = { name: "box", box: [8, 8, 4, 23, 23, 11] as [number, number, number, number, number, number] };
  const targets = model.config.text && model.categories?.length ? [box, { name: "text", text: model.categories[0]! }] : [box];
  await model.segment({ dims: ph.dims, data: ph.image }, targets, { zoomIn: false });
  return Math.round(performance.now() - t0) / 1000;
}

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

async function runWorker(o: WorkerOpts): Promise<void> {
  const concurrency = parsePositiveInt("--concurrency", o.concurrency);
  const stalledIntervalMs = parsePositiveInt("--stalled-interval", o.stalledInterval);
  const name = o.name ?? `${hostname()}:${process.pid}`;
  const model = await SegVol.fromWeights(o.weights, { precision: o.precision });
  log(`compiled the GPU kernels in ${await warmUp(model)} s (model ${o.weights})`);
  let stopping = false;
  let stopped!: () => void;
  const done = new Promise<void>((r) => (stopped = r));
  try {
    const worker = await startQueueWorker({ redis: o.redis, queue: o.queue, concurrency, stalledIntervalMs, name, log }, segmentJobRunner(model, o.weights));
    const stop = (signal: string) => {
      if (stopping) return log(`${signal}: already stopping, after the jobs under way (SIGKILL stops at once; they are then run again elsewhere)`);
      stopping = true;
      log(`${signal}: finishing the current job, taking no new ones`);
      void worker.close().then(stopped, (e: Error) => (log(`closing: ${e.message}`), stopped()));
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    await done;
    log(`worker ${name}: stopped`);
  } finally {
    model.dispose();
    releaseGpu();
  }
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("take segment jobs from a Redis queue (BullMQ) and run them with one model kept loaded; SIGTERM finishes the current job, then exits")
    .requiredOption("--redis <url>", "the Redis to take jobs from (redis://host:port)")
    .requiredOption("--weights <dir>", "weights folder (written by `segvol convert`, or weights/demo), loaded once")
    .addOption(precisionOption())
    .option("--queue <name>", "the BullMQ queue", DEFAULT_QUEUE)
    .option("--concurrency <n>", "jobs held at once: their reading and writing overlap, the GPU runs one at a time", "1")
    .option("--stalled-interval <ms>", "job lock duration and stalled-job check interval: a job of a worker that died is run again after about twice this", "30000")
    .option("--name <name>", "this worker's name on the jobs it runs (default: host:pid)")
    .addHelpText(
      "after",
      examples([
        "segvol worker --redis redis://queue-host:6379 --weights weights/segvol",
        "segvol worker --redis redis://127.0.0.1:6379 --weights weights/demo --concurrency 2 --name gpu0",
      ]),
    )
    .action((o: WorkerOpts) => runWorker(o));
}
