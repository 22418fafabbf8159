// One DICOM Part 10 file, parsed by dcmjs. A file is untrusted data: its
// size is bounded before it is read, the transfer syntax checked before its
// dataset is parsed, and anything the parser throws becomes a DicomError
// naming the file (dcmjs throws strings as well as Errors, and may fail deep
// inside on a corrupt length).
import dcmjs, { type DenaturalizedDataset, type DicomDict, type NaturalizedDataset } from "dcmjs";
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

/**
 * Parses a DICOM Part 10 file: the header only (up to Pixel Data, whose
 * presence is recorded) or, with `pixels`, the whole dataset. Throws a
 * DicomError naming `name` on anything that is not a readable file in a
 * supported transfer syntax.
 */
export function parseDicom(bytes: Uint8Array, name: string, opts: { pixels?: boolean } = {}): ParsedDicom {
  if (!isPart10(bytes)) throw new DicomError("not a DICOM Part 10 file (no \"DICM\" after the 128-byte preamble)", name);
  const buffer = ownBuffer(bytes);
  // The meta group first: a transfer syntax we cannot decode is named as such,
  // not reported as whatever the parser makes of its dataset.
  const transferSyntax = readPart10(() => DicomMessage.readFile(buffer, { untilTag: "0002FFFF", stopOnGreaterTag: true, noCopy: true }), name).meta;
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
  return { name, transferSyntax, dataset, hasPixelData };
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
