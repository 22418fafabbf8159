// Explains a truncated torch.save zip in terms of the tensor it cuts. A zip's
// directory sits at the end, so a cut-off download loses it; but torch writes
// `<dir>/data.pkl` first and then one `<dir>/data/<key>` entry per storage, so
// the pickle usually survives and the last local header names the storage
// the file ends in. Torch's local headers carry no sizes (data descriptors
// follow the data), hence the scans below. Best effort: any surprise falls
// back to the plain "truncated" message.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { quoted } from "./quote.js";
import { MAX_PICKLE_BYTES, StorageRef, TensorRef, TORCH_GLOBALS } from "./torch_pickle.js";
import { PyTuple, unpickle } from "./unpickle.js";

const LOCAL = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const DESCRIPTOR = Buffer.from([0x50, 0x4b, 0x07, 0x08]);
const BACK_SCAN_LIMIT = 512 * 1024 * 1024; // backward, 16 MB at a time, for the last header
/**
 * The most values the search for a storage's tensors visits. Each object is
 * visited once (pickles share objects through the memo), so this is only
 * reached by a pickle near MAX_PICKLE_OBJECTS; the report then names no tensor.
 */
export const MAX_WALK_VISITS = 1 << 20;

/** Up to `len` bytes at `pos` (fewer at the end of the file; none before 0 or past it). */
function readAt(fd: number, pos: number, len: number): Buffer {
  if (pos < 0 || len <= 0) return Buffer.alloc(0);
  const b = Buffer.alloc(len);
  let done = 0;
  while (done < len) {
    const n = readSync(fd, b, done, len - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return b.subarray(0, done);
}

/** The pickle bytes of the first entry, if its data descriptor is found. */
function firstPickle(fd: number, size: number): { dir: string; pkl: Buffer } | null {
  const h = readAt(fd, 0, 30);
  if (h.length < 30 || !h.subarray(0, 4).equals(LOCAL)) return null;
  const nameLen = h.readUInt16LE(26);
  const extraLen = h.readUInt16LE(28);
  const name = readAt(fd, 30, nameLen).toString("utf8");
  const m = /^([^/]+\/)data\.pkl$/.exec(name);
  if (!m) return null;
  const start = 30 + nameLen + extraLen;
  if (start >= size) return null; // the file ends inside the header
  // The pickle is small (≈100 kB for SegVol): read a growing prefix until its
  // descriptor shows up — the first "PK\7\8" whose size field equals the distance to it.
  for (let len = 1 << 20; ; len *= 4) {
    const chunk = readAt(fd, start, Math.min(size - start, len, MAX_PICKLE_BYTES));
    for (let q = chunk.indexOf(DESCRIPTOR); q >= 0 && q + 16 <= chunk.length; q = chunk.indexOf(DESCRIPTOR, q + 1)) {
      // A zip64 descriptor's 8-byte size starts with the same 4 bytes (q < 2^32), so one test finds both forms.
      if (chunk.readUInt32LE(q + 8) === q) {
        return { dir: m[1]!, pkl: chunk.subarray(0, q) };
      }
    }
    if (chunk.length < len) return null; // reached the end of the file or the scan limit
  }
}

/** The name of the last local header in the file (the entry the cut falls in). */
function lastEntry(fd: number, size: number, dir: string): string | null {
  const step = 16 * 1024 * 1024;
  for (let end = size; end > 0 && size - end < BACK_SCAN_LIMIT; end -= step) {
    const from = Math.max(0, end - step - 512); // overlap: a header may straddle chunks
    const chunk = readAt(fd, from, end - from);
    for (let q = chunk.lastIndexOf(LOCAL); q >= 0; q = q > 0 ? chunk.lastIndexOf(LOCAL, q - 1) : -1) {
      if (q + 30 > chunk.length) continue;
      const nameLen = chunk.readUInt16LE(q + 26);
      const name = chunk.subarray(q + 30, q + 30 + nameLen).toString("utf8");
      if (name.startsWith(dir) && name.length === nameLen) return name;
    }
  }
  return null;
}

/**
 * Stored keys of the tensors whose storage is `entry` (the first `max`), and
 * how many values the search visited. Shared objects are visited once:
 * walking every path through them would double the work per nesting level.
 * An explicit stack, not recursion: nesting depth is the file's choice.
 */
export function tensorsOf(root: unknown, entry: string, max = 3): { names: string[]; visits: number } {
  const names: string[] = [];
  const seen = new Set<unknown>();
  const todo: [unknown, string][] = [[root, ""]];
  let visits = 0;
  while (todo.length > 0 && names.length < max && visits < MAX_WALK_VISITS) {
    const [v, key] = todo.pop()!;
    visits++;
    if (v instanceof TensorRef) {
      // A leaf, looked at under every key that holds it (tied weights have two names).
      if (v.storage.entry === entry) names.push(key);
      continue;
    }
    // Primitives have no children; they may pass through `seen` unharmed.
    if (seen.has(v)) continue;
    seen.add(v);
    // Children pushed in reverse, so they are visited in file order.
    const children: [unknown, string][] =
      v instanceof Map
        ? [...v].map(([k, x]) => [x, typeof k === "string" ? k : String(k)])
        : Array.isArray(v) || v instanceof PyTuple
          ? (Array.isArray(v) ? v : v.items).map((x, i) => [x, `${key}[${i}]`])
          : [];
    for (let i = children.length - 1; i >= 0; i--) todo.push(children[i]!);
  }
  return { names, visits };
}

/**
 * A one-line description of where a truncated checkpoint ends, e.g.
 * `it ends inside "archive/data/37", the storage of tensor "model.x.weight"`;
 * null when the file does not look like a cut torch zip.
 */
export function describeTruncation(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return null;
  }
  try {
    const size = fstatSync(fd).size;
    const first = firstPickle(fd, size);
    if (!first) return `the file (${size} bytes) ends before the end of its first entry`;
    const entry = lastEntry(fd, size, first.dir);
    if (!entry) return `the file (${size} bytes) lost its zip directory at the end`;
    if (entry === `${first.dir}data.pkl`) return `the file (${size} bytes) ends right after the tensor index (data.pkl): no tensor data survived`;
    let names: string[] = []; // stays empty where the pickle cannot be read
    try {
      const root = unpickle(first.pkl, {
        globals: TORCH_GLOBALS,
        source: path,
        // Only the entry matters here (tensorsOf compares entries); dtype and size are placeholders.
        persistentLoad: (pid) => new StorageRef(`${first.dir}data/${String(pid instanceof PyTuple ? pid.items[2] : undefined)}`, "F32", 0),
      });
      names = tensorsOf(root, entry).names;
    } catch {
      // a cut or refused pickle: the report names no tensor
    }
    const what = names.length ? `, the storage of tensor${names.length > 1 ? "s" : ""} ${names.map(quoted).join(", ")}` : "";
    return `the file (${size} bytes) ends inside entry ${quoted(entry)}${what}`;
  } finally {
    closeSync(fd);
  }
}
