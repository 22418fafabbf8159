// What the queue tests share: workers as separate processes running the
// built CLI (`node bin/segvol.js worker`), the CLI's other commands, small
// phantoms, and a BullMQ view of the queue for the assertions.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { Job, Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { writePhantom } from "../../src/demo/phantom.js";
import { DEFAULT_QUEUE } from "../../src/queue/connection.js";
import { exited, startRedisServer, stopProcess, StopWaiting, waitFor, type RedisServer } from "../helpers/redis.js";

export const ROOT = resolve(__dirname, "..", "..");
export const BIN = join(ROOT, "bin", "segvol.js");
export const DEMO = join(ROOT, "weights", "demo");
/** The smallest phantom the tests use: the demo model's window is 32×64×64; this runs in one zoom-in window. */
export const PHANTOM_DIMS: [number, number, number] = [32, 32, 16];
/** Lock duration and stalled-check interval of the test workers: a killed worker's job is retried within ~2× this. */
export const STALLED_MS = 4000;

const ENV = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" };

/** The tests run the bundle, as a user does: it must have been built. */
export function requireBuild(): void {
  if (!existsSync(join(ROOT, "dist", "cli.js"))) throw new Error("the queue tests run bin/segvol.js: build it first (npm run build)");
}

/** `segvol ...args` (the built CLI), to its end. */
export function segvol(args: string[], cwd = ROOT): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: "utf8", env: ENV, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Background commands (segvolAsync) of this test file, stopped after it if still running (useWorkers). */
const background = new Set<ChildProcess>();

/** `segvol ...args` started in the background; resolves with its outputs when it ends. */
export function segvolAsync(args: string[], cwd = ROOT): { proc: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd, env: ENV, stdio: ["ignore", "pipe", "pipe"] });
  background.add(proc);
  let stdout = "", stderr = "";
  proc.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  proc.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  return { proc, done: exited(proc).then(({ code }) => ({ code, stdout, stderr })) };
}

/** A `segvol worker` process and the lines it has printed (stdout and stderr). */
export class WorkerProc {
  readonly lines: string[] = [];
  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    let partial = "";
    const take = (s: string) => {
      const parts = (partial + s).split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
    };
    proc.stdout!.setEncoding("utf8").on("data", take);
    proc.stderr!.setEncoding("utf8").on("data", take);
  }

  /** Starts a worker process (see useWorkers). */
  static spawn(redis: string, name: string, extra: string[] = []): WorkerProc {
    const args = [BIN, "worker", "--redis", redis, "--weights", DEMO, "--name", name, "--stalled-interval", String(STALLED_MS), ...extra];
    return new WorkerProc(name, spawn(process.execPath, args, { cwd: ROOT, env: ENV, stdio: ["ignore", "pipe", "pipe"] }));
  }

  /** The first line from index `from` on that matches `re`, waiting for it; fails early if the worker exits. */
  async waitForLine(re: RegExp, timeoutMs = 120_000, from = 0): Promise<{ match: RegExpMatchArray; index: number }> {
    return waitFor(`worker ${this.name}: a line matching ${re}`, () => {
      for (let i = from; i < this.lines.length; i++) {
        const match = this.lines[i]!.match(re);
        if (match) return { match, index: i };
      }
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new StopWaiting(`worker ${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}):\n${this.lines.join("\n")}`);
      return undefined;
    }, timeoutMs);
  }

  exited() {
    return exited(this.proc);
  }
}

/**
 * Starts `segvol worker`s for this test file: the returned function spawns
 * one and resolves once it takes jobs. Every worker still running after the
 * file's tests is SIGKILLed, and background commands (segvolAsync) are
 * stopped. Call where hooks are declared.
 */
export function useWorkers(): (redis: string, name: string, extra?: string[]) => Promise<WorkerProc> {
  const started: WorkerProc[] = [];
  afterAll(async () => {
    for (const w of started) w.proc.kill("SIGKILL");
    await Promise.all(started.map((w) => w.exited()));
    // SIGTERM: the CLI passes it on to the child that runs the command.
    await Promise.all([...background].map((p) => stopProcess(p)));
  });
  return async (redis, name, extra = []) => {
    const w = WorkerProc.spawn(redis, name, extra);
    started.push(w);
    await w.waitForLine(/waiting for jobs/, 180_000);
    return w;
  };
}

export interface QueueView {
  queue: Queue;
  job(id: string): Promise<Job>;
}

/** The queue on `redis`, read as BullMQ sees it, for the assertions; opened before the tests, closed after. Call where hooks are declared. */
export function useQueue(redis: RedisServer): QueueView {
  let connection: Redis | undefined;
  let queue: Queue | undefined;
  beforeAll(() => {
    connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    connection.on("error", () => {});
    queue = new Queue(DEFAULT_QUEUE, { connection });
    queue.on("error", () => {}); // while a test restarts Redis
  });
  afterAll(async () => {
    await queue?.close();
    connection?.disconnect();
  });
  return {
    get queue() {
      if (!queue) throw new Error("useQueue: opened in beforeAll");
      return queue;
    },
    async job(id) {
      const job = await Job.fromId(this.queue, id);
      if (!job) throw new Error(`job ${id} is not in the queue`);
      return job;
    },
  };
}

/**
 * A redis-server for this test file: started before its tests, stopped (and
 * its folder removed) after them, whether they passed or not. Call it where
 * hooks are declared (a describe block or the file's top level); the
 * returned object is usable from the tests and hooks that follow.
 * `persistent`: an append-only file (fsync always), so that a restart keeps
 * the queue.
 */
export function useRedis(opts: { persistent?: boolean } = {}): RedisServer {
  let server: RedisServer | undefined;
  const started = () => {
    if (!server) throw new Error("useRedis: the server is started in beforeAll; use it from a test or a later hook");
    return server;
  };
  beforeAll(async () => {
    server = await startRedisServer(opts);
  }, 60_000);
  afterAll(async () => {
    if (!server) return;
    await server.stop();
    rmSync(server.dir, { recursive: true, force: true });
  });
  return {
    get url() {
      return started().url;
    },
    get port() {
      return started().port;
    },
    get dir() {
      return started().dir;
    },
    stop: () => started().stop(),
    start: () => started().start(),
  };
}



/** Writes phantoms `seeds` (PHANTOM_DIMS) into dir/imagesTr; returns their paths. */
export function writePhantoms(dir: string, seeds: readonly number[]): string[] {
  mkdirSync(dir, { recursive: true });
  return seeds.map((seed) => join(dir, "imagesTr", `${writePhantom(dir, seed, { dims: PHANTOM_DIMS }).name}.nii.gz`));
}
