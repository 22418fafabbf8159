// Putting jobs on the queue and following them to the end (`segvol submit`,
// `--wait`).
import { Job, Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import { connectRedis } from "./connection.js";
import type { JobProgress, SegmentJob } from "./job.js";

/**
 * How often a job is tried when it fails for a reason other than its input
 * (a GPU error, a full disk): three times, 5 s then 10 s apart. A bad input
 * fails once (JobInputError); a stalled job is taken again as well (once,
 * BullMQ's maxStalledCount).
 */
export const JOB_ATTEMPTS = { attempts: 3, backoff: { type: "exponential", delay: 5000 } } as const;

/** Completed and failed jobs are kept (their results and reasons are what `status` and `--wait` read), the oldest dropped past these counts. */
const KEEP = { removeOnComplete: { count: 10000 }, removeOnFail: { count: 10000 } } as const;

/** Adds the jobs in one round trip; returns their ids, in order. */
export async function submitJobs(redis: string, queue: string, jobs: readonly SegmentJob[]): Promise<string[]> {
  const connection = await connectRedis(redis, { persistent: false, name: "segvol-submit" });
  const q = new Queue(queue, { connection });
  try {
    const added = await q.addBulk(jobs.map((data) => ({ name: "segment", data, opts: { ...JOB_ATTEMPTS, ...KEEP } })));
    return added.map((j) => j.id!);
  } finally {
    await q.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}

/** What following a job reports. */
export type JobEvent =
  | { id: string; kind: "progress"; progress: JobProgress }
  | { id: string; kind: "completed"; result: unknown }
  | { id: string; kind: "failed"; reason: string };

/** A job's final state (completed with its result, failed with its reason), or null while it may still run. */
async function finalState(q: Queue, id: string): Promise<JobEvent | null> {
  const job = await Job.fromId(q, id);
  if (!job) return { id, kind: "failed", reason: "the job is no longer in the queue (removed)" };
  const state = await job.getState();
  if (state === "completed") return { id, kind: "completed", result: job.returnvalue };
  if (state === "failed") return { id, kind: "failed", reason: job.failedReason };
  return null;
}

/** Settles each still-pending id that has reached its end. */
async function settle(q: Queue, pending: Set<string>, ids: readonly string[], emit: (e: JobEvent) => void): Promise<void> {
  for (const id of ids) {
    if (!pending.has(id)) continue;
    const end = await finalState(q, id);
    if (end && pending.delete(id)) emit(end);
  }
}

/**
 * Follows the jobs until each has completed or failed for good, calling
 * `emit` for progress and for each end; resolves with how many failed.
 * Events come from BullMQ's event stream; every `pollMs` the pending jobs'
 * states are also read, so that nothing is missed across a Redis restart.
 */
export async function followJobs(redis: string, queue: string, ids: readonly string[], emit: (e: JobEvent) => void, pollMs = 2000): Promise<number> {
  const connection: Redis = await connectRedis(redis, { persistent: true, name: "segvol-wait" });
  const eventsConnection: Redis = await connectRedis(redis, { persistent: true, name: "segvol-wait-events" });
  const q = new Queue(queue, { connection });
  const events = new QueueEvents(queue, { connection: eventsConnection });
  const pending = new Set(ids);
  let failed = 0;
  let wake = () => {};
  const end = (e: JobEvent) => {
    if (e.kind === "failed") failed++;
    emit(e);
    if (pending.size === 0) wake();
  };
  events.on("error", () => {}); // reconnecting: the poll covers the gap
  events.on("progress", ({ jobId, data }) => {
    if (pending.has(jobId) && typeof data === "object" && data !== null) emit({ id: jobId, kind: "progress", progress: data as JobProgress });
  });
  const check = (jobId: string) => void settle(q, pending, [jobId], end).catch(() => {});
  events.on("completed", ({ jobId }) => check(jobId));
  events.on("failed", ({ jobId }) => check(jobId));
  try {
    await events.waitUntilReady();
    while (pending.size > 0) {
      await settle(q, pending, [...pending], end).catch(() => {});
      if (pending.size > 0) {
        await new Promise<void>((r) => {
          const timer = setTimeout(r, pollMs);
          wake = () => (clearTimeout(timer), r());
        });
      }
    }
  } finally {
    await events.close();
    await q.close();
    for (const c of [connection, eventsConnection]) await c.quit().catch(() => c.disconnect());
  }
  return failed;
}
