// A real redis-server for the queue tests and bench/queue.ts (Debian's,
// installed by scripts/setup.sh): on 127.0.0.1 only, on a free port, with its
// files in a temporary folder. No fixed sleeps: everything waits by polling,
// with a deadline. Free of the test runner, so that a benchmark can use it;
// the tests' hooks are in test/queue/harness.ts (useRedis).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

export const REDIS_SERVER = process.env.SEGVOL_REDIS_SERVER ?? "redis-server";

/** Thrown by a waitFor check: stop waiting at once (what it waits for can no longer happen). */
export class StopWaiting extends Error {}

/** Polls `check` every `everyMs` until it returns a value other than undefined/false, or throws after `timeoutMs` naming `what`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      if (e instanceof StopWaiting) throw e;
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A free TCP port on 127.0.0.1 (the kernel's choice; redis-server binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves when the process has exited (at once if it already has). */
export function exited(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  return new Promise((resolve) => p.once("exit", (code, signal) => resolve({ code, signal })));
}

/** Stops a process: `signal`, then SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(p: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill(signal);
  const timer = setTimeout(() => p.kill("SIGKILL"), graceMs);
  await exited(p);
  clearTimeout(timer);
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SHUTDOWN by SIGTERM: with persistence, it saves first). */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder (its data back when persistent). */
  start(): Promise<void>;
}

async function ping(port: number): Promise<boolean> {
  const c = new Redis({ host: "127.0.0.1", port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  c.on("error", () => {});
  try {
    await c.connect();
    return (await c.ping()) === "PONG";
  } finally {
    c.disconnect();
  }
}

/**
 * Starts redis-server on 127.0.0.1, on a free port, its files in a new
 * temporary folder (`dir`); the caller stops it and removes `dir` (tests:
 * useRedis in test/queue/harness.ts does both after the file). `persistent`:
 * an append-only file (fsync always), so that a restart keeps the data.
 */
export async function startRedisServer(opts: { persistent?: boolean } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "segvol-redis-"));
  const port = await freePort();
  const persistence = opts.persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", ...persistence, "--daemonize", "no", "--logfile", join(dir, "redis.log")];
  let proc: ChildProcess | null = null;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async start() {
      const p = spawn(REDIS_SERVER, args, { stdio: "ignore" });
      proc = p;
      // Should the test process die without its afterAll, the server goes with it.
      const orphan = () => p.kill("SIGKILL");
      process.once("exit", orphan);
      p.once("exit", () => process.off("exit", orphan));
      const failed = new Promise<never>((_, reject) => {
        p.once("error", (e) => reject(new Error(`cannot start ${REDIS_SERVER} (install it: bash scripts/setup.sh): ${e.message}`)));
        p.once("exit", (code) => reject(new Error(`${REDIS_SERVER} exited with ${code} at start (log: ${join(dir, "redis.log")})`)));
      });
      failed.catch(() => {});
      await Promise.race([waitFor(`redis-server on 127.0.0.1:${port}`, () => ping(port), 30_000), failed]);
    },
    async stop() {
      if (proc) await stopProcess(proc);
      proc = null;
    },
  };
  await server.start();
  return server;
}
