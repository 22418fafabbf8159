// multipart/related bodies (RFC 2387), as DICOMweb sends series (WADO-RS)
// and receives instances (STOW-RS). A response is split as it arrives
// (MultipartSplitter): each part's bytes are copied once, into the part.
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

/**
 * Splits a multipart body as it arrives: push() each chunk, end() after the
 * last. A part's body is copied once into its own buffer when its closing
 * boundary is seen, and the chunks it came in are dropped, so the whole
 * response is never held twice (as one body and as parts). Only the part in
 * progress is held as chunks, plus the last few bytes of the one before it
 * (a boundary can straddle two chunks).
 */
export class MultipartSplitter {
  readonly parts: Part[] = [];
  private readonly delim: Buffer;
  private readonly next: Buffer;
  /** Bytes not yet placed: the preamble, or a part's delimiter line and headers. */
  private head: Buffer = Buffer.alloc(0);
  /** The body of the part in progress, as it came; null outside a body. */
  private body: Buffer[] | null = null;
  private bodyLength = 0;
  private state: "preamble" | "after-boundary" | "headers" | "body" | "done" = "preamble";

  constructor(
    boundary: string,
    private readonly source: string,
  ) {
    this.delim = Buffer.from(`--${boundary}`);
    this.next = Buffer.from(`\r\n--${boundary}`);
  }

  push(chunk: Uint8Array): void {
    let rest: Buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (rest.length > 0 && this.state !== "done") rest = this.state === "body" ? this.inBody(rest) : this.inHead(rest);
  }

  /** The parts; refuses a body that does not end with the closing delimiter. */
  end(): Part[] {
    if (this.state === "done") return this.parts;
    if (this.state === "preamble") throw new DicomError("multipart body without its boundary", this.source);
    // In a body, the part in progress is already listed (with no bytes yet).
    if (this.state === "body") throw new DicomError(`multipart part ${this.parts.length} is not closed by the boundary (truncated response?)`, this.source);
    throw new DicomError(`multipart part ${this.parts.length + 1} has no end of headers (truncated response?)`, this.source);
  }

  /** Preamble, delimiter line and headers: small, so gathered in one buffer. Returns what is left of `rest`. */
  private inHead(rest: Buffer): Buffer {
    const from = Math.max(0, this.head.length - CRLF2.length - this.delim.length);
    this.head = this.head.length === 0 ? rest : Buffer.concat([this.head, rest]);
    if (this.state === "preamble") {
      const at = this.head.indexOf(this.delim, from);
      if (at < 0) return this.keepHead();
      this.head = this.head.subarray(at + this.delim.length);
      this.state = "after-boundary";
    }
    if (this.state === "after-boundary") {
      if (this.head.length < 2) return this.keepHead();
      if (this.head[0] === 0x2d && this.head[1] === 0x2d) {
        this.state = "done"; // "--": the closing delimiter
        return Buffer.alloc(0);
      }
      this.state = "headers";
    }
    const headStart = this.head.indexOf("\r\n");
    const headEnd = headStart < 0 ? -1 : this.head.indexOf(CRLF2, headStart);
    if (headEnd < 0) return this.keepHead();
    // When the headers are empty, the blank line follows the delimiter's CRLF directly.
    const headers = headEnd > headStart ? partHeaders(this.head.subarray(headStart + 2, headEnd).toString("latin1")) : {};
    this.parts.push({ headers, body: new Uint8Array(0) });
    const after = this.head.subarray(headEnd + 4);
    this.head = Buffer.alloc(0);
    this.body = [];
    this.bodyLength = 0;
    this.state = "body";
    return after;
  }

  /** Keeps the head gathered so far (bounded: a header block is a few hundred bytes), consuming the chunk. */
  private keepHead(): Buffer {
    if (this.head.length > MAX_HEAD) {
      const what = this.state === "preamble" ? "a preamble" : `part ${this.parts.length + 1}'s headers`;
      throw new DicomError(`multipart ${what} of more than ${MAX_HEAD} bytes`, this.source);
    }
    this.head = Buffer.from(this.head); // its own copy: not a view pinning the chunk
    return Buffer.alloc(0);
  }

  /** A body's bytes: searched for the next boundary, including across the previous chunk's end. */
  private inBody(rest: Buffer): Buffer {
    const body = this.body!;
    const carry = Math.min(this.bodyLength, this.next.length - 1);
    const tail = carry > 0 ? lastBytes(body, carry) : Buffer.alloc(0);
    const at = (carry > 0 ? Buffer.concat([tail, rest]) : rest).indexOf(this.next);
    if (at < 0) {
      body.push(rest);
      this.bodyLength += rest.length;
      return Buffer.alloc(0);
    }
    // The body ends `carry - at` bytes before this chunk (when the boundary began in the previous one), or `at - carry` bytes into it.
    const length = this.bodyLength - carry + at;
    const whole = Buffer.concat([...body, rest.subarray(0, Math.max(0, at - carry))], length);
    this.parts[this.parts.length - 1]!.body = new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength);
    this.body = null;
    this.state = "after-boundary";
    return rest.subarray(at - carry + this.next.length);
  }
}

/** The last `n` bytes of `chunks` (which hold at least n), copying no more than that. */
function lastBytes(chunks: readonly Buffer[], n: number): Buffer {
  const out = Buffer.alloc(n);
  let need = n;
  for (let i = chunks.length - 1; need > 0; i--) {
    const c = chunks[i]!;
    const take = Math.min(need, c.length);
    c.copy(out, need - take, c.length - take);
    need -= take;
  }
  return out;
}

/** The most bytes a preamble or a part's header block may take before its end is seen. */
const MAX_HEAD = 64 * 1024;

/** Splits a whole multipart body on `boundary`; refuses a body that does not end with the closing delimiter. */
export function parseMultipart(body: Uint8Array, boundary: string, source: string): Part[] {
  const split = new MultipartSplitter(boundary, source);
  split.push(body);
  return split.end();
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
