// Connections to Redis, for BullMQ. Workers and `submit --wait` keep theirs
// across Redis restarts: ioredis reconnects (every ≤ 2 s, for ever) and holds
// commands meanwhile, which BullMQ requires of its workers
// (maxRetriesPerRequest: null). The one-shot commands (submit, status) give
// up after a few seconds with a clear message instead of hanging.
import type { Redis } from "ioredis";

/**
 * The ioredis package, loaded when a queue command first connects: the rest
 * of the CLI runs without it.
 */
async function ioredis(): Promise<typeof import("ioredis")> {
  try {
    return await import("ioredis");
  } catch (e) {
    throw new Error(`the job queue needs the ioredis package (npm install ioredis): ${(e as Error).message}`);
  }
}

/** The BullMQ queue's name unless --queue says otherwise. */
export const DEFAULT_QUEUE = "segvol";

/** The URL with any password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}

/** Throws unless `url` is a redis:// or rediss:// URL. */
export function checkRedisUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--redis ${redactUrl(url)}: not a URL (expected redis://host:port or rediss://host:port)`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new Error(`--redis ${redactUrl(url)}: expected a redis:// or rediss:// URL`);
}

export interface ConnectOptions {
  /** Reconnect for ever (workers, --wait); otherwise give up after about 5 s. */
  persistent: boolean;
  /** The client's name in Redis (CLIENT LIST), e.g. "segvol-worker". */
  name: string;
}

/** A connected ioredis client; rejects with a message naming the URL if Redis cannot be reached. */
export async function connectRedis(url: string, opts: ConnectOptions): Promise<Redis> {
  checkRedisUrl(url);
  const { Redis: Client } = await ioredis();
  const client = new Client(url, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    connectionName: opts.name,
    retryStrategy: (times) => (opts.persistent || times <= 10 ? Math.min(times * 100, 2000) : null),
  });
  // Errors while reconnecting are reported by the owner (the worker logs them); an unhandled 'error' would end the process.
  let lastError: Error | undefined;
  client.on("error", (e: Error) => (lastError = e));
  try {
    await client.connect();
  } catch (e) {
    client.disconnect();
    // connect() rejects with "Connection is closed"; the socket's error says why.
    throw new Error(`cannot reach Redis at ${redactUrl(url)}: ${(lastError ?? (e as Error)).message}`);
  }
  return client;
}
