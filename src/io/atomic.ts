// Atomic file output: the bytes go to a temporary file in the destination's
// own folder (same filesystem, so rename is atomic), are flushed, then renamed
// over the destination. A crash or an error mid-write leaves either the old
// file or nothing, never a partial output. Writing over a given input file is
// refused, so a mistyped `--out` cannot destroy the user's scan.
//
// A writer killed mid-write (kill -9) leaves its temp file behind; the next
// write to the same folder removes such files (removeStaleTemps).
import {
  basename,
  closeSync,
  createHash,
  dirname,
  existsSync,
  fsyncSync,
  hostname,
  join,
  lstatSync,
  openSync,
  randomBytes,
  readdirSync,
  readlinkSync,
  renameSync,
  resolve,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from "../node/host.node.js";

export class OutputPathError extends Error {
  override name = "OutputPathError";
}

export interface AtomicWriteOptions {
  /** Paths that must not be overwritten (the inputs of the run). */
  inputPath?: string | readonly string[] | undefined;
  /** Names the writer in error messages (e.g. "writeNifti"). */
  what?: string;
}

/** Throws if `path` names the same file as one of the inputs (also through links). */
export function assertNotInput(path: string, inputs: string | readonly string[] | undefined, what = "write"): void {
  if (inputs === undefined) return;
  const list = typeof inputs === "string" ? [inputs] : inputs;
  const out = resolve(path);
  for (const input of list) {
    if (resolve(input) === out || sameFile(input, path)) {
      throw new OutputPathError(`${what}: refusing to write ${path}: it is the input file ${input}`);
    }
  }
}

function sameFile(a: string, b: string): boolean {
  if (!existsSync(a) || !existsSync(b)) return false;
  const sa = statSync(a);
  const sb = statSync(b);
  return sa.dev === sb.dev && sa.ino === sb.ino;
}

/**
 * Which process table a temp file's pid belongs to: this host and, on Linux,
 * this pid namespace (a container has its own). Folders can be shared with
 * other containers or hosts, whose pids we cannot look up.
 */
export function pidTableTag(): string {
  let ns = "";
  try {
    ns = readlinkSync("/proc/self/ns/pid");
  } catch {
    // no /proc (macOS, Windows): the host name alone
  }
  return createHash("sha256").update(`${hostname()}\0${ns}`).digest("hex").slice(0, 8);
}
let pidTable: string | null = null;
/** This process's pid table tag, computed on first use (a browser bundle loads this module but never writes files). */
const pidTableOnce = (): string => (pidTable ??= pidTableTag());

// `.<name>.<pid>.<pid table>-<random>.tmp`, beside the destination.
const TEMP_NAME = /^\..+\.(\d{1,7})\.([0-9a-f]{8})-[0-9a-f]{8}\.tmp$/;
/**
 * Bytes of the destination's name a temp name keeps: file systems allow
 * 255-byte names, and the temp name adds up to 36 (the dot, the pid, the
 * tags, `.tmp`), so a destination named near the limit still gets a temp
 * file beside it.
 */
const TEMP_NAME_KEEP_BYTES = 200;

/** The longest prefix of `name` within `maxBytes` of UTF-8, never splitting a character. */
function utf8Prefix(name: string, maxBytes: number): string {
  const utf8 = new TextEncoder();
  let bytes = 0;
  let out = "";
  for (const ch of name) {
    bytes += utf8.encode(ch).length;
    if (bytes > maxBytes) break;
    out += ch;
  }
  return out;
}

/** The temp file that process `pid` of this host writes `path` through. */
export function tempPathFor(path: string, pid = process.pid): string {
  const name = utf8Prefix(basename(path), TEMP_NAME_KEEP_BYTES);
  return join(dirname(resolve(path)), `.${name}.${pid}.${pidTableOnce()}-${randomBytes(4).toString("hex")}.tmp`);
}

/** Whether `pid` is a live process here; EPERM (someone else's process) counts as alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Removes temp files in `dir` that writers killed mid-write left behind:
 * only names of our own pattern, written from this host and pid namespace
 * (the pid table tag), by a pid other than ours that no longer exists
 * (kill(pid, 0) → ESRCH). A live writer's file is never touched: its pid
 * exists. If a dead writer's pid has been reused, the file merely waits for a
 * later write. Files from other containers or hosts sharing the folder are
 * left alone, since their pids mean nothing here. Clean-up is best effort: it
 * never fails the write.
 */
export function removeStaleTemps(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || m[2] !== pidTableOnce()) continue;
    const pid = Number(m[1]);
    if (pid <= 0 || pid === process.pid || alive(pid)) continue;
    const file = join(dir, name);
    try {
      if (lstatSync(file).isFile()) unlinkSync(file);
    } catch {
      // gone already (another writer cleaned it), or not ours to remove
    }
  }
}

/** Writes `chunks` (in order) to `path` atomically; first removes temp files that killed writers left in its folder. */
export function writeFileAtomic(path: string, chunks: Uint8Array | readonly Uint8Array[], opts: AtomicWriteOptions = {}): void {
  const what = opts.what ?? "write";
  assertNotInput(path, opts.inputPath, what);
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new OutputPathError(`${what}: cannot write ${path}: folder ${dir} does not exist`);
  }
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new OutputPathError(`${what}: cannot write ${path}: it is a folder`);
  }
  removeStaleTemps(dir);
  const tmp = tempPathFor(path);
  const parts = chunks instanceof Uint8Array ? [chunks] : chunks;
  let fd = -1;
  try {
    fd = openSync(tmp, "wx", 0o644);
    for (const part of parts) {
      let off = 0;
      while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    if (existsSync(tmp)) unlinkSync(tmp);
    throw new OutputPathError(`${what}: writing ${path} failed: ${(e as Error).message}`);
  }
}

/**
 * Moves a finished temp folder to `out`. A previous `out` is swapped aside
 * first and put back if the move fails, so `out` is always either the old
 * complete folder or the new one, never half of either.
 */
export function replaceDir(tmp: string, out: string): void {
  if (!existsSync(out)) {
    renameSync(tmp, out);
    return;
  }
  const old = `${tmp}.old`;
  renameSync(out, old);
  try {
    renameSync(tmp, out);
  } catch (e) {
    renameSync(old, out);
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
}
