// What `segvol status` prints: the queue's job counts, and the failed jobs
// with their reasons (newest first).
import { Queue } from "bullmq";
import { connectRedis } from "./connection.js";
import { describeInput, parseJob } from "./job.js";

export interface FailedJob {
  id: string;
  /** The job's input and output, when its data is a valid job. */
  input?: string;
  out?: string;
  reason: string;
  attempts: number;
  finishedOn?: number;
}

export interface QueueStatus {
  queue: string;
  counts: Record<string, number>;
  failed: FailedJob[];
}

const STATES = ["waiting", "active", "delayed", "prioritized", "waiting-children", "completed", "failed"] as const;

function describeFailed(job: { id?: string; data: unknown; failedReason: string; attemptsMade: number; finishedOn?: number }): FailedJob {
  const f: FailedJob = { id: job.id ?? "?", reason: job.failedReason, attempts: job.attemptsMade };
  if (job.finishedOn !== undefined) f.finishedOn = job.finishedOn;
  try {
    const data = parseJob(job.data);
    f.input = describeInput(data.input);
    f.out = data.outputs.out;
  } catch {
    // a malformed job: its reason says so
  }
  return f;
}

/** The queue's counts and up to `maxFailed` failed jobs, newest first. */
export async function queueStatus(redis: string, queue: string, maxFailed = 50): Promise<QueueStatus> {
  const connection = await connectRedis(redis, { persistent: false, name: "segvol-status" });
  const q = new Queue(queue, { connection });
  try {
    const counts = await q.getJobCounts(...STATES);
    const failed = await q.getFailed(0, maxFailed - 1);
    return { queue, counts, failed: failed.map(describeFailed) };
  } finally {
    await q.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}

/** The status as lines for a person: counts on one line, then one line per failed job. */
export function formatStatus(s: QueueStatus): string {
  const counts = STATES.filter((k) => (s.counts[k] ?? 0) > 0 || ["waiting", "active", "completed", "failed"].includes(k)).map((k) => `${k} ${s.counts[k] ?? 0}`);
  const lines = [`queue ${s.queue}: ${counts.join(", ")}`];
  if (s.failed.length > 0) lines.push(`failed jobs (newest first${s.failed.length < (s.counts.failed ?? 0) ? `, ${s.failed.length} of ${s.counts.failed}` : ""}):`);
  for (const f of s.failed) {
    const what = f.input ? `${f.input} → ${f.out}` : "(malformed job)";
    lines.push(`  job ${f.id}: ${what}: ${f.reason} (${f.attempts} attempt${f.attempts === 1 ? "" : "s"})`);
  }
  return lines.join("\n") + "\n";
}
