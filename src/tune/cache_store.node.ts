// The tune cache's storage in Node: one file per adapter in the cache
// folder, written atomically (src/io/atomic.ts). The browser build uses
// cache_store.browser.ts (IndexedDB) instead.
import { writeFileAtomic } from "../io/atomic.js";
import { existsSync, homedir, join, mkdirSync, readFileSync } from "../node/host.node.js";

/** Where the cache lives: a folder in Node (default: cacheDir()); a page ignores it. */
export interface CacheLocation {
  dir?: string;
}

/** The folder: $SEGVOL_CACHE_DIR, else $XDG_CACHE_HOME/segvol-webgpu, else ~/.cache/segvol-webgpu. */
export function cacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.SEGVOL_CACHE_DIR) return env.SEGVOL_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "segvol-webgpu");
}

/** The cache's text under `name`, or null when there is none. */
export async function readCacheText(name: string, at: CacheLocation = {}): Promise<string | null> {
  const path = join(at.dir ?? cacheDir(), name);
  return existsSync(path) ? readFileSync(path, "utf8") : null;
}

/** Stores `text` under `name` (the folder is made if missing); returns the file's path. */
export async function writeCacheText(name: string, text: string, at: CacheLocation = {}): Promise<string> {
  const dir = at.dir ?? cacheDir();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileAtomic(path, new TextEncoder().encode(text), { what: "tune cache" });
  return path;
}
