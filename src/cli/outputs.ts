// Output files are checked before any work, so that a run which could not
// write its result fails in its first second rather than after the whole
// segmentation: a wrong extension, a missing or read-only folder, a folder
// in the file's place, or an input named as the output.
import { closeSync, existsSync, openSync, statSync, unlinkSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { assertNotInput } from "../io/atomic.js";

/** The names writeNifti accepts (gzip for .nii.gz). */
export const NIFTI_EXTENSIONS = [".nii.gz", ".nii"] as const;

export interface OutputFileCheck {
  /** The flag that names the file, for messages (e.g. "--out"). */
  flag: string;
  /** Accepted endings, lower case (e.g. NIFTI_EXTENSIONS). */
  extensions: readonly string[];
  /** Files the run reads, which it must not write over. */
  inputs?: readonly string[];
}

/** Throws, naming the flag, unless `path` can be written as the command's output. */
export function checkOutputFile(path: string, check: OutputFileCheck): void {
  const { flag, extensions } = check;
  if (!extensions.some((e) => path.toLowerCase().endsWith(e))) {
    throw new Error(`${flag} ${path}: the name must end in ${extensions.join(" or ")}`);
  }
  assertNotInput(path, check.inputs, flag);
  if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`${flag} ${path}: is a folder`);
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${flag} ${path}: folder ${dir} does not exist`);
  // Permission bits do not tell (root, read-only mounts, ACLs): create and
  // remove a file there, as the atomic writer will.
  const probe = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.probe`);
  try {
    closeSync(openSync(probe, "wx"));
    unlinkSync(probe);
  } catch (e) {
    throw new Error(`${flag} ${path}: cannot write in folder ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
