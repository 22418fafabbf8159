// The BullMQ side of `segvol worker`: takes jobs from the queue, checks
// their data, hands them to the segmentation (given by the caller, which
// holds the loaded model), reports progress and leaves the summary as the
// job's result. What it guarantees:
//
// - A job whose data or input is bad (JobInputError) fails at once with the
//   error's message as its reason; BullMQ does not retry it
//   (UnrecoverableError). Other errors (the GPU, a full disk) are retried as
//   the job's attempts allow.
// - A worker that dies mid-job (SIGKILL, a lost machine) stops renewing the
//   job's lock; after the lock expires, the next stalled check of any worker
//   puts the job back in the queue and another worker runs it from the
//   start. Outputs are written atomically, so the dead worker left nothing
//   partial at their paths. `stalledIntervalMs` sets both the lock's duration
//   and the check's interval: a killed worker's job is taken again within
//   about twice that.
// - Redis restarts: the connection reconnects (connection.ts) and the worker
//   carries on; errors meanwhile are logged, not fatal.
// - close() (SIGTERM) takes no new job, lets the current ones finish, and
//   returns.
import { UnrecoverableError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { connectRedis, redactUrl } from "./connection.js";
import { describeInput, JobInputError, parseJob, type JobProgress, type SegmentJob } from "./job.js";

/** Runs one job; `progress` reports its stage and windows; resolves to the job's result (its summary). */
export type SegmentProcessor = (job: SegmentJob, progress: (p: JobProgress) => void) => Promise<unknown>;

export interface QueueWorkerOptions {
  redis: string;
  queue: string;
  /** Jobs run at once by this worker (default 1). */
  concurrency: number;
  /** Job lock duration and stalled-check interval in ms (BullMQ's default: 30000). */
  stalledIntervalMs: number;
  /** This worker's name, recorded on the jobs it runs (job.processedBy). */
  name: string;
  /** One line per event (job taken, progress stage, done, failed, connection errors). */
  log: (line: string) => void;
}

export interface QueueWorker {
  /** Takes no new jobs, waits for the running ones, closes the connection. */
  close(): Promise<void>;
}

function progressReporter(job: Job, log: (line: string) => void): (p: JobProgress) => void {
  let lastStage = "";
  return (p) => {
    // Not awaited: progress must not hold the segmentation up; a lost update (Redis restarting) is harmless.
    job.updateProgress({ ...p }).catch(() => {});
    if (p.stage !== lastStage || p.done === p.total) log(`job ${job.id}: ${p.stage} ${p.done}/${p.total}`);
    lastStage = p.stage;
  };
}

/** BullMQ's processor around the segmentation: data checks, progress, and which failures are final. */
function processorFor(run: SegmentProcessor, log: (line: string) => void) {
  return async (job: Job): Promise<unknown> => {
    try {
      const data = parseJob(job.data);
      log(`job ${job.id}: started (attempt ${job.attemptsStarted}): ${describeInput(data.input)} → ${data.outputs.out}`);
      const started = performance.now();
      const result = await run(data, progressReporter(job, log));
      log(`job ${job.id}: completed in ${((performance.now() - started) / 1000).toFixed(2)} s`);
      return result;
    } catch (e) {
      const message = (e as Error).message;
      log(`job ${job.id}: failed: ${message}`);
      if (e instanceof JobInputError) throw new UnrecoverableError(message);
      throw e;
    }
  };
}

/** Starts taking jobs from `opts.queue`; resolves once connected to Redis. */
export async function startQueueWorker(opts: QueueWorkerOptions, run: SegmentProcessor): Promise<QueueWorker> {
  const connection: Redis = await connectRedis(opts.redis, { persistent: true, name: opts.name });
  const worker = new Worker(opts.queue, processorFor(run, opts.log), {
    connection,
    name: opts.name,
    concurrency: opts.concurrency,
    lockDuration: opts.stalledIntervalMs,
    stalledInterval: opts.stalledIntervalMs,
    autorun: true,
  });
  let lastError = "";
  worker.on("error", (e) => {
    // Connection errors repeat while Redis is away: log each kind once.
    if (e.message !== lastError) opts.log(`redis ${redactUrl(opts.redis)}: ${e.message} (retrying)`);
    lastError = e.message;
  });
  connection.on("ready", () => {
    if (lastError) opts.log(`redis ${redactUrl(opts.redis)}: connected again`);
    lastError = "";
  });
  await worker.waitUntilReady();
  opts.log(`worker ${opts.name}: waiting for jobs on queue ${opts.queue} at ${redactUrl(opts.redis)} (concurrency ${opts.concurrency})`);
  return {
    close: async () => {
      await worker.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
