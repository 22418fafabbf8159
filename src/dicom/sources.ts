// Where a series' files come from: a folder on disk (searched recursively),
// or parts already in memory (a DICOMweb response). Reading is bounded: a
// file larger than maxFileBytes is refused before it is read.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { DicomError } from "./errors.js";

/** One DICOM file: its name for messages, and its bytes on demand (a folder's files are read twice: headers, then pixels). */
export interface DicomSource {
  name: string;
  bytes(): Uint8Array;
}

/** How deep a folder is searched, and how many files it may hold. */
const MAX_DEPTH = 8;
const MAX_FILES = 100_000;

/**
 * The files under `dir`, sorted by path (the order is only for messages: the
 * volume's order comes from the geometry). Names starting with "." are
 * skipped (.DS_Store, editors' files), as are folders below MAX_DEPTH.
 */
export function folderSources(dir: string, maxFileBytes: number): DicomSource[] {
  let top: ReturnType<typeof statSync>;
  try {
    top = statSync(dir);
  } catch (e) {
    throw new DicomError(`cannot read the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, dir);
  }
  if (!top.isDirectory()) throw new DicomError("not a folder", dir);
  const files: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (entry.name.startsWith(".")) continue;
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        if (depth < MAX_DEPTH) walk(path, depth + 1);
      } else if (entry.isFile()) {
        files.push(path);
        if (files.length > MAX_FILES) throw new DicomError(`more than ${MAX_FILES} files: point at one series' folder`, dir);
      }
    }
  };
  walk(dir, 0);
  if (files.length === 0) throw new DicomError("no files in the folder", dir);
  return files.map((path) => ({ name: path, bytes: () => readBounded(path, maxFileBytes) }));
}

function readBounded(path: string, maxFileBytes: number): Uint8Array {
  const size = statSync(path).size;
  if (size > maxFileBytes) throw new DicomError(`${size} bytes, more than the ${maxFileBytes} a DICOM slice may have here (maxFileBytes)`, path);
  return readFileSync(path);
}

/** Parts already in memory, named `${prefix} part N`. */
export function memorySources(parts: readonly Uint8Array[], prefix: string): DicomSource[] {
  return parts.map((p, n) => ({ name: `${prefix} part ${n + 1}`, bytes: () => p }));
}
