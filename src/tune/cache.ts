// The tuned winners' cache: one JSON document per adapter, kept on disk in
// Node (cache_store.node.ts: $SEGVOL_CACHE_DIR, else
// $XDG_CACHE_HOME/segvol-webgpu, else ~/.cache/segvol-webgpu) and in
// IndexedDB in a page (cache_store.browser.ts). Nothing read back is
// trusted: a document of another version or adapter, or one that does not
// parse, is ignored with a warning, and each entry must name a variant that
// is among the op's current candidates on this device at the dimensions it
// was tuned at, and its precision (f32, or f16 where the device has
// shader-f16); the others are dropped with a warning. Version 2 added the
// precision: a version-1 document (its winners all timed at f32) is
// ignored with the version warning rather than migrated, so that one
// reader checks one format; `segvol tune` rebuilds it.
import { attentionCandidates } from "../kernels/attention.js";
import { gemmCandidates } from "../kernels/conv_gemm.js";
import { matmulCandidates } from "../kernels/matmul.js";
import { deviceProfile, setDeviceProfile, tunedKey, type DeviceProfile, type TunedOp } from "../kernels/profile.js";
import type { Precision } from "../kernels/precision.js";
import type { AdapterSummary } from "../tensor/device.js";
import { gpu } from "../tensor/device.js";
import { readCacheText, writeCacheText, type CacheLocation } from "./cache_store.node.js";
import type { TuneResult } from "./tuner.js";

/** The cache format's version: a document of another version is ignored. */
export const TUNE_CACHE_VERSION = 2;

/** What identifies an adapter: a winner on one is only a guess on another. */
export interface AdapterIdentity {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

/** One winner: the op, the precision and dimensions it was timed at, the variant. */
export interface TunedEntry {
  op: TunedOp;
  precision: Precision;
  dims: number[];
  variant: object;
}

export interface TuneCache {
  version: number;
  adapter: AdapterIdentity;
  entries: TunedEntry[];
}

export function adapterIdentity(a: AdapterSummary): AdapterIdentity {
  return { vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description };
}

/** FNV-1a of a string, as 8 hex digits: tells apart identities that the readable part cuts to the same text. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** The adapter's cache name: its identity made file-name safe (cut to 80 characters) and a hash of the whole. */
export function cacheName(id: AdapterIdentity): string {
  const text = [id.vendor, id.architecture, id.device, id.description].join("-");
  const safe = text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 80);
  return `tuned-${safe || "adapter"}-${fnv1a(JSON.stringify(id))}.json`;
}

/** The candidates `op` offers at `dims` on the profile's device. */
function candidatesFor(op: TunedOp, dims: readonly number[], p: DeviceProfile): object[] {
  if (op === "matmul") return matmulCandidates(dims[0]!, dims[1]!, dims[2]!, p);
  if (op === "attention") return attentionCandidates(p);
  return gemmCandidates(p);
}

/** A variant's fields as sorted JSON, so that field order does not matter when comparing. */
function canonical(v: object): string {
  return JSON.stringify(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const DIMS_PER_OP: Record<TunedOp, number> = { matmul: 3, attention: 4, gemm: 3 };

/**
 * `e` as an entry of this device, its variant the matching candidate itself
 * (so its fields come in the kernel's order, which keys its pipeline), or
 * why it is not one.
 */
export function checkEntry(e: unknown, p: DeviceProfile): { entry: TunedEntry } | { problem: string } {
  const problem = (text: string) => ({ problem: text });
  if (e === null || typeof e !== "object") return problem("not an object");
  const { op, precision, dims, variant } = e as Partial<TunedEntry>;
  if (op !== "matmul" && op !== "attention" && op !== "gemm") return problem(`unknown op ${JSON.stringify(op)}`);
  if (precision !== "f32" && precision !== "f16") return problem(`${op}: precision must be "f32" or "f16", got ${JSON.stringify(precision)}`);
  if (precision === "f16" && !p.f16) return problem(`${op}: an f16 winner, and this device has no shader-f16`);
  const n = DIMS_PER_OP[op];
  if (!Array.isArray(dims) || dims.length !== n || !dims.every((d) => Number.isSafeInteger(d) && d >= 1)) return problem(`${op}: dims must be ${n} positive integers`);
  if (variant === null || typeof variant !== "object" || Array.isArray(variant)) return problem(`${op} ${dims.join("×")}: variant is not an object`);
  const wanted = canonical(variant);
  const match = candidatesFor(op, dims, p).find((c) => canonical(c) === wanted);
  if (!match) return problem(`${op} ${dims.join("×")}: ${JSON.stringify(variant)} is not among this device's candidates`);
  return { entry: { op, precision, dims: [...dims], variant: match } };
}

/**
 * The entries of a cache document that hold on this adapter and device;
 * `warn` hears why a document or an entry is ignored.
 */
export function parseTuneCache(text: string, id: AdapterIdentity, p: DeviceProfile, warn: (why: string) => void): TunedEntry[] {
  let doc: Partial<TuneCache>;
  try {
    doc = JSON.parse(text) as Partial<TuneCache>;
  } catch (e) {
    warn(`the tune cache is not JSON (${(e as Error).message}); ignored`);
    return [];
  }
  if (doc === null || typeof doc !== "object") {
    warn("the tune cache is not a JSON object; ignored");
    return [];
  }
  if (doc.version !== TUNE_CACHE_VERSION) {
    warn(`the tune cache has version ${JSON.stringify(doc.version)}, this build reads ${TUNE_CACHE_VERSION}; ignored`);
    return [];
  }
  if (JSON.stringify(doc.adapter) !== JSON.stringify(id)) {
    warn(`the tune cache was written for another adapter (${JSON.stringify(doc.adapter)}); ignored`);
    return [];
  }
  if (!Array.isArray(doc.entries)) {
    warn("the tune cache has no entries list; ignored");
    return [];
  }
  const ok: TunedEntry[] = [];
  for (const e of doc.entries as unknown[]) {
    const checked = checkEntry(e, p);
    if ("problem" in checked) warn(`tune cache entry dropped: ${checked.problem}`);
    else ok.push(checked.entry);
  }
  return ok;
}

/** The profile's tuned table with `entries` merged in (later entries of a bucket win). */
export function withEntries(p: DeviceProfile, entries: readonly TunedEntry[]): DeviceProfile["tuned"] {
  const tuned: Record<string, object> = { ...p.tuned };
  for (const e of entries) tuned[tunedKey(e.op, e.dims, e.precision)] = e.variant;
  return tuned;
}

/** The cache entries of tuning results: each winner at the dimensions it was timed at. */
export function entriesOf(results: readonly TuneResult[]): TunedEntry[] {
  return results.flatMap((r) => (r.winner ? [{ op: r.op, precision: r.precision, dims: r.dims, variant: r.winner }] : []));
}

export interface CacheOptions {
  location?: CacheLocation;
  warn?: (why: string) => void;
}

const warnOnStderr = (why: string) => console.warn(`segvol: ${why}`);

/**
 * Reads this adapter's cached winners and installs them in the device
 * profile; returns how many were installed. A cache that cannot be read is
 * a warning, never an error: the heuristics still work.
 */
export async function loadTunedChoices(opts: CacheOptions = {}): Promise<number> {
  const warn = opts.warn ?? warnOnStderr;
  const id = adapterIdentity(gpu().adapter);
  let text: string | null;
  try {
    text = await readCacheText(cacheName(id), opts.location);
  } catch (e) {
    warn(`the tune cache cannot be read (${(e as Error).message}); ignored`);
    return 0;
  }
  if (text === null) return 0;
  const entries = parseTuneCache(text, id, deviceProfile(), warn);
  setDeviceProfile({ tuned: withEntries(deviceProfile(), entries) });
  return entries.length;
}

/**
 * Writes `entries` to this adapter's cache, merged over what it held (valid
 * entries only; a bucket's new winner replaces its old one). Returns where
 * it wrote.
 */
export async function saveTunedChoices(entries: readonly TunedEntry[], opts: CacheOptions = {}): Promise<string> {
  const id = adapterIdentity(gpu().adapter);
  const name = cacheName(id);
  const old = await readCacheText(name, opts.location);
  const kept = old === null ? [] : parseTuneCache(old, id, deviceProfile(), opts.warn ?? warnOnStderr);
  const merged = new Map<string, TunedEntry>();
  for (const e of [...kept, ...entries]) merged.set(tunedKey(e.op, e.dims, e.precision), e);
  const doc: TuneCache = { version: TUNE_CACHE_VERSION, adapter: id, entries: [...merged.values()] };
  return writeCacheText(name, JSON.stringify(doc, null, 1) + "\n", opts.location);
}
