// One DICOM Part 10 file, parsed by dcmjs. A file is untrusted data: its
// size is bounded before it is read, the transfer syntax checked before its
// dataset is parsed, and anything the parser throws becomes a DicomError
// naming the file (dcmjs throws strings as well as Errors, and may fail deep
// inside on a corrupt length). A deflated dataset is inflated here, to a
// bound, and handed to dcmjs as Explicit VR Little Endian: dcmjs inflates
// without any (a 1 MB file can inflate to gigabytes).
import dcmjs, { type DenaturalizedDataset, type DicomDict, type NaturalizedDataset } from "dcmjs";
import { inflateRawSync } from "node:zlib";
import { DicomError, describeThrown } from "./errors.js";

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

/** The transfer syntaxes whose pixel data this library reads: all uncompressed, plus deflate (a lossless zlib stream over the whole dataset). */
export const SUPPORTED_TRANSFER_SYNTAXES: Readonly<Record<string, string>> = Object.freeze({
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian (retired)",
});

/** Compressed pixel syntaxes, named in the refusal (dcmjs reads their fragments but decodes none of them). */
const COMPRESSED: Readonly<Record<string, string>> = {
  "1.2.840.10008.1.2.5": "RLE Lossless",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline",
  "1.2.840.10008.1.2.4.51": "JPEG Extended",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
  "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
  "1.2.840.10008.1.2.4.202": "HTJ2K Lossless RPCL",
  "1.2.840.10008.1.2.4.203": "HTJ2K",
};

/** A file larger than this is refused unread: a single-frame 4096×4096 16-bit image is 32 MiB. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 2 ** 20;

export interface ParsedDicom {
  /** The file, for messages. */
  name: string;
  transferSyntax: string;
  /** The file's size, its dataset inflated if it was deflated: a bound on what its Pixel Data can hold. */
  byteLength: number;
  /** The dataset keyed by keyword; PixelData is absent when only the header was read. */
  dataset: Record<string, unknown>;
  /** Whether the dataset has a Pixel Data element (7FE0,0010). */
  hasPixelData: boolean;
}

/** Runs `fn` with dcmjs's loggers silenced (it logs about VRs and unknown tags, on its root logger and a "validation" child of its own level). */
export function quietly<T>(fn: () => T): T {
  const loggers = [dcmjs.log, dcmjs.log.getLogger("validation.dcmjs")];
  const levels = loggers.map((l) => l.getLevel());
  for (const l of loggers) l.setLevel("silent", false);
  try {
    return fn();
  } finally {
    loggers.forEach((l, n) => l.setLevel(levels[n]!, false));
  }
}

/** The bytes as an ArrayBuffer of their own length (dcmjs reads whole ArrayBuffers). */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** Whether the bytes carry the Part 10 preamble ("DICM" at 128). */
export function isPart10(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

const DEFLATED = "1.2.840.10008.1.2.1.99";
const EXPLICIT_LE = "1.2.840.10008.1.2.1";
/** VRs whose length field is 4 bytes, after 2 reserved ones (PS3.5 7.1.2). */
const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);

/** Where the meta group ends, from its group length (0002,0000), which dcmjs requires; null when it is missing or past the end. */
function metaEnd(bytes: Uint8Array): number | null {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 144 || v.getUint32(132, true) !== 0x00000002 || bytes[136] !== 0x55 || bytes[137] !== 0x4c || v.getUint16(138, true) !== 4) return null;
  const end = 144 + v.getUint32(140, true);
  return end <= bytes.length ? end : null;
}

/**
 * The meta group's TransferSyntaxUID element (the last one, as dcmjs keeps
 * it): where its length field and value lie; null if the walk does not fit.
 */
function transferSyntaxElement(bytes: Uint8Array, end: number): { vr: string; lengthAt: number; at: number; length: number } | null {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let found: { vr: string; lengthAt: number; at: number; length: number } | null = null;
  let at = 144;
  for (; at + 8 <= end; ) {
    const vr = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!);
    const long = LONG_VRS.has(vr);
    const lengthAt = at + (long ? 8 : 6);
    if (lengthAt + (long ? 4 : 2) > end) return null;
    const length = long ? v.getUint32(lengthAt, true) : v.getUint16(lengthAt, true);
    const valueAt = lengthAt + (long ? 4 : 2);
    if (valueAt + length > end) return null;
    if (v.getUint16(at, true) === 2 && v.getUint16(at + 2, true) === 0x10) found = { vr, lengthAt, at: valueAt, length };
    at = valueAt + length;
  }
  return at === end ? found : null;
}

/**
 * A deflated file as the same file in Explicit VR Little Endian: the
 * dataset inflated (refused past `maxBytes`), the meta group's
 * TransferSyntaxUID rewritten and its group length fixed. Null when the meta
 * group does not name the deflated syntax: dcmjs then never inflates.
 */
function inflated(bytes: Uint8Array, name: string, maxBytes: number): Uint8Array | null {
  const end = metaEnd(bytes);
  // With a well-formed group length dcmjs reads the syntax inside [144, end).
  // Without one it may still go on (a group length of another VR, or past the
  // end): a file that mentions the deflated syntax anywhere is refused then.
  const mentions = (to: number) => Buffer.from(bytes.buffer, bytes.byteOffset + 132, to - 132).includes(DEFLATED, 0, "latin1");
  if (end === null) {
    if (mentions(bytes.length)) throw new DicomError("corrupt meta group: no well-formed group length (0002,0000), and a deflated transfer syntax", name);
    return null;
  }
  if (!mentions(end)) return null;
  // The deflated syntax's UID is in the meta group: it must be exactly the
  // TransferSyntaxUID's value, in a meta group that walks cleanly; anything
  // else is refused rather than left to dcmjs, which would inflate it unbounded.
  const ts = transferSyntaxElement(bytes, end);
  const uid = ts ? Buffer.from(bytes.buffer, bytes.byteOffset + ts.at, ts.length).toString("latin1").replace(/\0+$/, "") : "";
  if (!ts || ts.vr !== "UI" || uid !== DEFLATED) {
    throw new DicomError("corrupt meta group: it names the deflated transfer syntax, but not as one well-formed TransferSyntaxUID", name);
  }
  let body: Uint8Array;
  try {
    body = inflateRawSync(bytes.subarray(end), { maxOutputLength: Math.max(1, maxBytes) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new DicomError(`the deflated dataset inflates to more than ${maxBytes} bytes (maxFileBytes)`, name);
    }
    throw new DicomError(`corrupt deflated dataset (${describeThrown(e)})`, name);
  }
  const explicit = Buffer.from(`${EXPLICIT_LE}\0`, "latin1");
  const metaLength = end - ts.length + explicit.length;
  const out = new Uint8Array(metaLength + body.length);
  out.set(bytes.subarray(0, ts.at));
  out.set(explicit, ts.at);
  out.set(bytes.subarray(ts.at + ts.length, end), ts.at + explicit.length);
  out.set(body, metaLength);
  const v = new DataView(out.buffer);
  v.setUint16(ts.lengthAt, explicit.length, true);
  v.setUint32(140, metaLength - 144, true);
  return out;
}

/**
 * Parses a DICOM Part 10 file: the header only (up to Pixel Data, whose
 * presence is recorded) or, with `pixels`, the whole dataset. Throws a
 * DicomError naming `name` on anything that is not a readable file in a
 * supported transfer syntax. A deflated dataset may inflate to `maxBytes`
 * (default DEFAULT_MAX_FILE_BYTES).
 */
export function parseDicom(bytes: Uint8Array, name: string, opts: { pixels?: boolean; maxBytes?: number } = {}): ParsedDicom {
  if (!isPart10(bytes)) throw new DicomError("not a DICOM Part 10 file (no \"DICM\" after the 128-byte preamble)", name);
  const plain = inflated(bytes, name, opts.maxBytes ?? DEFAULT_MAX_FILE_BYTES);
  const buffer = ownBuffer(plain ?? bytes);
  // The meta group first: a transfer syntax we cannot decode is named as such,
  // not reported as whatever the parser makes of its dataset.
  let transferSyntax = readPart10(() => DicomMessage.readFile(buffer, { untilTag: "0002FFFF", stopOnGreaterTag: true, noCopy: true }), name).meta;
  if (plain) transferSyntax = DEFLATED;
  checkTransferSyntax(transferSyntax, name);
  const raw = readPart10(() => DicomMessage.readFile(buffer, opts.pixels ? { noCopy: true } : { untilTag: "7FE00010", noCopy: true }), name);
  let dataset: NaturalizedDataset;
  try {
    dataset = quietly(() => DicomMetaDictionary.naturalizeDataset(raw.dict));
  } catch (e) {
    throw new DicomError(`corrupt DICOM dataset (${describeThrown(e)})`, name);
  }
  const hasPixelData = "7FE00010" in raw.dict;
  if (!opts.pixels) delete dataset.PixelData;
  return { name, transferSyntax, byteLength: buffer.byteLength, dataset, hasPixelData };
}

/** Runs a dcmjs read, turning whatever it throws into a DicomError naming the file; returns the dict and the transfer syntax. */
function readPart10(read: () => DicomDict, name: string): { dict: DenaturalizedDataset; meta: string } {
  try {
    const r = quietly(read);
    return { dict: r.dict, meta: String(r.meta["00020010"]?.Value?.[0] ?? "").replace(/\0/g, "").trim() };
  } catch (e) {
    throw new DicomError(`corrupt or unreadable DICOM file (${describeThrown(e)})`, name);
  }
}

/** Refuses a transfer syntax whose pixel data this library cannot decode, naming it. */
export function checkTransferSyntax(uid: string, name: string): void {
  if (uid in SUPPORTED_TRANSFER_SYNTAXES) return;
  const supported = Object.entries(SUPPORTED_TRANSFER_SYNTAXES).map(([u, n]) => `${n} (${u})`).join(", ");
  const what = COMPRESSED[uid] ? `compressed transfer syntax ${COMPRESSED[uid]} (${uid})` : `transfer syntax ${uid || "(none)"}`;
  throw new DicomError(
    `${what} is not supported; supported: ${supported}. Decompress the series first (e.g. dcmtk's \`dcmdjpeg\`/\`dcmdrle\`, or \`gdcmconv --raw\`)`,
    name,
  );
}
