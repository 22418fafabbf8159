// cache_store.node.ts's twin in the browser build: the tune cache in
// IndexedDB (database `segvol-webgpu`, store `tuned`, one record per
// adapter's cache name). The DOM types are not in this package's lib, so
// the few used are declared here.
import type * as node from "./cache_store.node.js";

export type CacheLocation = node.CacheLocation;

interface Request<T> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface OpenRequest extends Request<Database> {
  onupgradeneeded: (() => void) | null;
}
interface Database {
  objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(store: string, mode: "readonly" | "readwrite"): { objectStore(name: string): Store };
  close(): void;
}
interface Store {
  get(key: string): Request<unknown>;
  put(value: string, key: string): Request<unknown>;
}

const DB = "segvol-webgpu";
const STORE = "tuned";

function settle<T>(req: Request<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function open(): Promise<Database> {
  const idb = (globalThis as { indexedDB?: { open(name: string, version: number): OpenRequest } }).indexedDB;
  if (!idb) throw new Error("tune cache: this page has no IndexedDB");
  const req = idb.open(DB, 1);
  req.onupgradeneeded = () => {
    if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
  };
  return settle(req);
}

/** The folder of the Node store; a page has none. */
export function cacheDir(): string {
  return `indexeddb:${DB}/${STORE}`;
}

export async function readCacheText(name: string): Promise<string | null> {
  const db = await open();
  try {
    const value = await settle(db.transaction(STORE, "readonly").objectStore(STORE).get(name));
    return typeof value === "string" ? value : null;
  } finally {
    db.close();
  }
}

export async function writeCacheText(name: string, text: string): Promise<string> {
  const db = await open();
  try {
    await settle(db.transaction(STORE, "readwrite").objectStore(STORE).put(text, name));
    return `${cacheDir()}/${name}`;
  } finally {
    db.close();
  }
}

// The two modules must keep the same exports, with the same types.
type Browser = typeof import("./cache_store.browser.js");
({}) as Browser satisfies typeof node;
({}) as typeof node satisfies Browser;
