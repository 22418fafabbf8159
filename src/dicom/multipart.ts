// multipart/related bodies (RFC 2387), as DICOMweb sends series (WADO-RS)
// and receives instances (STOW-RS). Parts are views into the body: no copy.
import { randomBytes } from "node:crypto";
import { DicomError } from "./errors.js";

/** The boundary parameter of a multipart Content-Type (quoted or not). */
export function boundaryOf(contentType: string, source: string): string {
  if (!/^\s*multipart\/related\b/i.test(contentType)) throw new DicomError(`expected a multipart/related response, got Content-Type "${contentType.slice(0, 100)}"`, source);
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = m?.[1] ?? m?.[2];
  if (!b || b.length > 200) throw new DicomError(`multipart response without a usable boundary (Content-Type "${contentType.slice(0, 100)}")`, source);
  return b;
}

export interface Part {
  headers: Record<string, string>;
  body: Uint8Array;
}

const CRLF2 = Buffer.from("\r\n\r\n");

function partHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Splits a multipart body on `boundary`; refuses a body that does not end with the closing delimiter. */
export function parseMultipart(body: Uint8Array, boundary: string, source: string): Part[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delim = Buffer.from(`--${boundary}`);
  const next = Buffer.from(`\r\n--${boundary}`);
  let at = buf.indexOf(delim);
  if (at < 0) throw new DicomError("multipart body without its boundary", source);
  const parts: Part[] = [];
  for (;;) {
    at += delim.length;
    if (buf[at] === 0x2d && buf[at + 1] === 0x2d) return parts; // "--": the closing delimiter
    const headStart = buf.indexOf("\r\n", at);
    const headEnd = headStart < 0 ? -1 : buf.indexOf(CRLF2, headStart);
    if (headEnd < 0) throw new DicomError(`multipart part ${parts.length + 1} has no end of headers (truncated response?)`, source);
    const end = buf.indexOf(next, headEnd + 4);
    if (end < 0) throw new DicomError(`multipart part ${parts.length + 1} is not closed by the boundary (truncated response?)`, source);
    // When the headers are empty, the blank line follows the delimiter's CRLF directly.
    const headers = headEnd > headStart ? partHeaders(buf.subarray(headStart + 2, headEnd).toString("latin1")) : {};
    parts.push({ headers, body: body.subarray(headEnd + 4, end) });
    at = end + 2;
  }
}

/** A multipart/related body of DICOM instances, and its Content-Type. */
export function buildMultipart(instances: readonly Uint8Array[]): { body: Uint8Array; contentType: string } {
  const boundary = `segvol-${randomBytes(12).toString("hex")}`;
  const chunks: Uint8Array[] = [];
  for (const inst of instances) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${inst.byteLength}\r\n\r\n`), inst, Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}
