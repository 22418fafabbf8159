// `segvol status`: a queue's job counts and its failed jobs with their reasons.
import type { Command } from "commander";
import { DEFAULT_QUEUE } from "../queue/connection.js";
import { formatStatus, queueStatus } from "../queue/status.js";
import { examples } from "./help.js";
import { parsePositiveInt } from "./parse.js";

interface StatusOpts {
  redis: string;
  queue: string;
  failed: string;
  json?: boolean;
}

async function runStatus(o: StatusOpts): Promise<void> {
  const status = await queueStatus(o.redis, o.queue, parsePositiveInt("--failed", o.failed));
  process.stdout.write(o.json ? JSON.stringify(status) + "\n" : formatStatus(status));
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("print a job queue's counts (waiting, active, completed, failed, …) and its failed jobs with their reasons")
    .requiredOption("--redis <url>", "the Redis of the queue (redis://host:port)")
    .option("--queue <name>", "the BullMQ queue", DEFAULT_QUEUE)
    .option("--failed <n>", "list at most this many failed jobs, newest first", "50")
    .option("--json", "print {queue, counts, failed: [{id, input, out, reason, attempts, finishedOn}]} on stdout")
    .addHelpText("after", examples(["segvol status --redis redis://queue-host:6379", "segvol status --redis redis://queue-host:6379 --json"]))
    .action((o: StatusOpts) => runStatus(o));
}
