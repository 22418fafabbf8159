// Redis restarts under a running worker: the worker reconnects and finishes
// the queue (Redis keeps the queue in its append-only file), and `submit
// --wait` follows the jobs across the restart.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/redis.js";
import { tempFolderWith } from "../helpers/temp.js";
import { requireBuild, segvolAsync, useQueue, useRedis, useWorkers, writePhantoms } from "./harness.js";

describe("segment job queue across a Redis restart", () => {
  const dir = tempFolderWith("segvol-queue-restart", {});
  const redis = useRedis({ persistent: true });
  const q = useQueue(redis);
  const startWorker = useWorkers();
  let images: string[];

  beforeAll(() => {
    requireBuild();
    images = writePhantoms(join(dir, "ph"), [400, 401, 402, 403, 404, 405]);
    mkdirSync(join(dir, "out"));
  });

  it("the worker reconnects and finishes every job; --wait follows them through", async () => {
    const worker = await startWorker(redis.url, "R", ["--concurrency", "2"]);
    const manifest = images.map((p, n) => JSON.stringify([p, "--text", "liver", "--out", `out/r${n}.nii.gz`])).join("\n");
    writeFileSync(join(dir, "jobs.jsonl"), manifest + "\n");
    const waiting = segvolAsync(["submit", "--redis", redis.url, "--manifest", join(dir, "jobs.jsonl"), "--wait"], dir);

    // Restart Redis once the worker has finished a job and is on the next ones.
    await waitFor("a completed job", async () => ((await q.queue.getJobCounts("completed")).completed >= 1) || undefined, 120_000, 100);
    await redis.stop();
    const from = worker.lines.length;
    await worker.waitForLine(/redis .*\(retrying\)/, 60_000, from);
    await redis.start();
    await worker.waitForLine(/redis .*connected again/, 60_000, from);

    const submitted = await waiting.done;
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(submitted.stdout.match(/^job \d+ completed: /gm)).toHaveLength(6);
    expect((await q.queue.getJobCounts("completed")).completed).toBe(6);
    expect(worker.proc.exitCode).toBeNull();
    for (let n = 0; n < 6; n++) expect(readFileSync(join(dir, "out", `r${n}.nii.gz`)).length).toBeGreaterThan(0);
  }, 400_000);
});
