// Atomic file output: the bytes go to a temporary file in the destination's
// own folder (same filesystem, so rename is atomic), are flushed, then renamed
// over the destination. A crash or an error mid-write leaves either the old
// file or nothing, never a partial output. Writing over a given input file is
// refused, so a mistyped `--out` cannot destroy the user's scan.
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";

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

/** Writes `chunks` (in order) to `path` atomically. */
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
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
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
