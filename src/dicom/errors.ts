// What src/dicom throws: one class, its message naming the file (or the
// server) and what is wrong with it, so that the CLI prints one clear line.

/** A DICOM input that is refused (corrupt, unsupported, inconsistent), or a failed DICOMweb exchange. */
export class DicomError extends Error {
  override name = "DicomError";
  /** The file (or URL) the error is about, when there is one. */
  readonly source: string | undefined;
  constructor(message: string, source?: string) {
    super(source === undefined ? message : `${source}: ${message}`);
    this.source = source;
  }
}

/** The message of anything thrown (dcmjs throws strings as well as Errors), at most 200 characters. */
export function describeThrown(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** A value from a file, for a message: at most `max` characters (a corrupt file can hold megabytes where a UID belongs). */
export function shown(v: unknown, max = 64): string {
  const text = typeof v === "string" ? v : (JSON.stringify(v) ?? String(v));
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
