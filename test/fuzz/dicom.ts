// The DICOM fuzz target's seeds and format-aware mutations. Seeds are CT
// slices and series built with the tests' own dcmjs writer
// (test/helpers/dicom_series.ts) and a DICOM-SEG from src/dicom/seg.ts, with
// fixed UIDs so that every process builds the same bytes. The mutations walk
// the file's data elements (a small scanner of their own, never the reader
// under test) and change tags, VRs, lengths, delimiters, the preamble and
// "DICM", the transfer syntax, the image attributes and the pixel data's
// length; a deflated dataset is inflated, changed and deflated again.
import dcmjs from "dcmjs";
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import { encodeDicomSeg } from "../../src/dicom/seg.js";
import { readSeriesFrom } from "../../src/dicom/series.js";
import { memorySources } from "../../src/dicom/sources.js";
import { naturalize } from "../helpers/dicom_seg.js";
import { buildSeries, part10, TS, type SeriesSpec } from "../helpers/dicom_series.js";
import { concat, interestingInts, putInt, type Mutator, type Rng } from "./mutate.js";

const { DicomMetaDictionary } = dcmjs.data;

/** Another file of the same series, read with the mutated one. */
export interface Neighbour {
  name: string;
  bytes: Uint8Array;
}

export interface DicomSeed {
  label: string;
  bytes: Uint8Array;
  /** Valid files of the same series (names without a folder), read before (`before`) and after the mutated one. */
  before: Neighbour[];
  after: Neighbour[];
}

// ---------------------------------------------------------------- seeds

const UID_ROOT = "1.2.826.0.1.3680043.10.1119";

function spec(dims: [number, number, number], extra: Partial<SeriesSpec> = {}): SeriesSpec {
  const [I, J, K] = dims;
  return {
    dims,
    hu: Int16Array.from({ length: I * J * K }, (_, x) => ((x * 37) % 300) - 1000),
    origin: [-10.5, 20, 30],
    rowDir: [1, 0, 0],
    colDir: [0, 1, 0],
    pixelSpacing: [0.75, 0.8],
    sliceStep: [0, 0, 2.5],
    studyUid: `${UID_ROOT}.1`,
    seriesUid: `${UID_ROOT}.2`,
    frameOfReferenceUid: `${UID_ROOT}.3`,
    ...extra,
  };
}

/** Slices with fixed SOP instance UIDs (buildSeries draws random ones). */
function slices(s: SeriesSpec, edit?: (k: number, ds: Record<string, unknown>) => void): Uint8Array[] {
  return buildSeries({
    ...s,
    edit: (k, ds) => {
      ds.SOPInstanceUID = `${UID_ROOT}.4.${k}`;
      edit?.(k, ds);
    },
  }).slices.map((sl) => sl.bytes);
}

/** A DICOM-SEG of a 3-slice series, its new UIDs and dates replaced by fixed ones. */
function segSeed(): Uint8Array {
  const files = slices(spec([4, 3, 3]));
  const series = readSeriesFrom(memorySources(files, "seed"), "seed");
  const mask = Uint8Array.from({ length: 4 * 3 * 3 }, (_, x) => (x % 5 === 0 ? 1 : 0));
  const { bytes } = encodeDicomSeg(series, [{ label: "liver", description: "liver", mask }, { label: "spleen", mask: mask.map((m) => 1 - m) }]);
  const ds = naturalize(bytes);
  ds.SeriesInstanceUID = `${UID_ROOT}.5`;
  ds.SOPInstanceUID = `${UID_ROOT}.6`;
  for (const key of Object.keys(ds)) if (/(Date|Time)$/.test(key) && typeof ds[key] === "string") ds[key] = key.endsWith("Date") ? "20240102" : "101500";
  return part10(ds, TS.explicit);
}

export function dicomSeeds(): DicomSeed[] {
  const name = (n: number) => `neighbour-${n}.dcm`;
  const one = (label: string, bytes: Uint8Array): DicomSeed => ({ label, bytes, before: [], after: [] });
  const single = (ts: string) => slices(spec([4, 3, 1], { transferSyntax: ts }))[0]!;
  const seeds = [
    one("CT slice, Explicit VR Little Endian", single(TS.explicit)),
    one("CT slice, Implicit VR Little Endian", single(TS.implicit)),
    one("CT slice, Explicit VR Big Endian", single(TS.bigEndian)),
    one("CT slice, Deflated Explicit VR Little Endian", single(TS.deflated)),
    one(
      "8-bit unsigned MONOCHROME1 slice, slope 0.5",
      slices(spec([5, 2, 1], { slope: 0.5, intercept: -3 }), (_k, ds) => {
        Object.assign(ds, { BitsAllocated: 8, BitsStored: 8, HighBit: 7, PixelRepresentation: 0, PhotometricInterpretation: "MONOCHROME1" });
        ds.PixelData = [Uint8Array.from({ length: 10 }, (_, i) => i * 25).buffer];
        ds._vrMap = { PixelData: "OB" };
      })[0]!,
    ),
    one(
      "non-image object (no Pixel Data, a sequence), Implicit VR Little Endian",
      slices(spec([4, 3, 1], { transferSyntax: TS.implicit }), (_k, ds) => {
        delete ds.PixelData;
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11";
        ds.Modality = "SR";
        ds.ReferencedImageSequence = [0, 1].map((n) => ({ ReferencedSOPClassUID: "1.2.840.10008.5.1.4.1.1.2", ReferencedSOPInstanceUID: `${UID_ROOT}.7.${n}` }));
      })[0]!,
    ),
    one("DICOM-SEG (nested sequences, 1-bit frames)", segSeed()),
  ];
  const explicit3 = slices(spec([4, 3, 3], { seriesUid: `${UID_ROOT}.8` }));
  seeds.push({ label: "middle slice of a 3-slice series, Explicit VR LE", bytes: explicit3[1]!, before: [{ name: name(0), bytes: explicit3[0]! }], after: [{ name: name(2), bytes: explicit3[2]! }] });
  const implicit3 = slices(spec([4, 3, 3], { seriesUid: `${UID_ROOT}.9`, transferSyntax: TS.implicit }));
  seeds.push({ label: "first slice of a 3-slice series, Implicit VR LE", bytes: implicit3[0]!, before: [], after: [1, 2].map((k) => ({ name: name(k), bytes: implicit3[k]! })) });
  return seeds;
}

// ---------------------------------------------------------------- scanning

const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);
const UNDEFINED = 0xffffffff;

/** One data element (or item / delimiter) as the scanner found it. */
export interface Element {
  at: number;
  group: number;
  element: number;
  /** Explicit VR, or null (implicit, items). */
  vr: string | null;
  lengthAt: number;
  lengthWidth: 2 | 4;
  length: number;
  valueAt: number;
  le: boolean;
  /** Nesting depth (0: the meta group or the dataset's top level). */
  depth: number;
  meta: boolean;
}

export interface Scan {
  elements: Element[];
  syntax: string;
  /** Where the dataset starts (after the meta group). */
  metaEnd: number;
}

const isPart10 = (b: Uint8Array) => b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;
const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

function implicitVr(group: number, element: number): string | undefined {
  const key = `(${group.toString(16).padStart(4, "0")},${element.toString(16).padStart(4, "0")})`.toUpperCase();
  return (DicomMetaDictionary as unknown as { dictionary: Record<string, { vr?: string }> }).dictionary[key]?.vr;
}

/**
 * The elements of a Part 10 file, flat, in file order, with their nesting
 * depth. Never throws: it stops where the bytes stop making sense.
 */
export function scanDicom(b: Uint8Array): Scan | null {
  if (!isPart10(b)) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const elements: Element[] = [];
  let syntax = "";
  let at = 132;
  // The meta group: explicit VR little endian, group 0002.
  while (at + 8 <= b.length && v.getUint16(at, true) === 2) {
    const el = v.getUint16(at + 2, true);
    const vr = ascii(b, at + 4, at + 6);
    const long = LONG_VRS.has(vr);
    if (long && at + 12 > b.length) break;
    const length = long ? v.getUint32(at + 8, true) : v.getUint16(at + 6, true);
    const valueAt = at + (long ? 12 : 8);
    elements.push({ at, group: 2, element: el, vr, lengthAt: at + (long ? 8 : 6), lengthWidth: long ? 4 : 2, length, valueAt, le: true, depth: 0, meta: true });
    if (length === UNDEFINED || valueAt + length > b.length) return { elements, syntax, metaEnd: b.length };
    if (el === 0x10) syntax = ascii(b, valueAt, valueAt + length).replace(/[\0 ]+$/, "");
    at = valueAt + length;
  }
  const metaEnd = at;
  const le = syntax !== TS.bigEndian;
  const explicit = syntax !== TS.implicit;
  // Open sequences and items: their end offset, or null for undefined length.
  const open: (number | null)[] = [];
  while (at + 8 <= b.length && elements.length < 20_000) {
    while (open.length > 0 && open[open.length - 1] !== null && at >= open[open.length - 1]!) open.pop();
    const group = v.getUint16(at, le), el = v.getUint16(at + 2, le);
    const depth = open.length;
    if (group === 0xfffe) {
      const length = v.getUint32(at + 4, le);
      elements.push({ at, group, element: el, vr: null, lengthAt: at + 4, lengthWidth: 4, length, valueAt: at + 8, le, depth, meta: false });
      if (el === 0xe000) open.push(length === UNDEFINED ? null : at + 8 + length);
      else if (open.length > 0) open.pop(); // an item or sequence delimiter closes what is open
      at += 8;
      continue;
    }
    let vr: string | null = null, length: number, lengthAt: number, lengthWidth: 2 | 4, valueAt: number;
    if (explicit) {
      vr = ascii(b, at + 4, at + 6);
      const long = LONG_VRS.has(vr);
      if (long && at + 12 > b.length) break;
      lengthAt = at + (long ? 8 : 6);
      lengthWidth = long ? 4 : 2;
      length = long ? v.getUint32(lengthAt, le) : v.getUint16(lengthAt, le);
      valueAt = at + (long ? 12 : 8);
    } else {
      lengthAt = at + 4;
      lengthWidth = 4;
      length = v.getUint32(lengthAt, le);
      valueAt = at + 8;
    }
    elements.push({ at, group, element: el, vr, lengthAt, lengthWidth, length, valueAt, le, depth, meta: false });
    const sq = (vr ?? implicitVr(group, el)) === "SQ" || (!explicit && length === UNDEFINED);
    if (sq || length === UNDEFINED) {
      // A sequence (or encapsulated pixel data): its items follow.
      open.push(length === UNDEFINED ? null : valueAt + length);
      at = valueAt;
    } else {
      if (valueAt + length > b.length) break;
      at = valueAt + length;
    }
  }
  return { elements, syntax, metaEnd };
}

const tagOf = (e: Element) => (e.group << 16) | e.element;
const hex = (n: number) => n.toString(16).padStart(8, "0").toUpperCase();
const tagName = (t: number) => `(${hex(t).slice(0, 4)},${hex(t).slice(4)})`;

/** The length field of `e` set to `value`. */
function setLength(b: Uint8Array, e: Element, value: bigint): Uint8Array {
  const out = b.slice();
  putInt(out, e.lengthAt, e.lengthWidth, value, e.le);
  return out;
}

/** The value of `e` replaced by `value` (its length field, and the meta group's length if it is in the meta group, fixed). */
function replaceValue(b: Uint8Array, scan: Scan, e: Element, value: Uint8Array): Uint8Array {
  const padded = value.length % 2 === 1 ? concat(value, Uint8Array.of(e.vr === "UI" ? 0 : 0x20)) : value;
  const max = e.lengthWidth === 2 ? 0xffff : 0xfffffffe;
  if (padded.length > max) return b;
  const out = concat(b.subarray(0, e.valueAt), padded, b.subarray(Math.min(b.length, e.valueAt + e.length)));
  putInt(out, e.lengthAt, e.lengthWidth, BigInt(padded.length), e.le);
  if (e.meta) fixMetaLength(out, scan, padded.length - e.length);
  return out;
}

/** Adds `delta` to the meta group length (0002,0000), when the file has one. */
function fixMetaLength(b: Uint8Array, scan: Scan, delta: number): void {
  const gl = scan.elements.find((x) => x.meta && x.element === 0);
  if (!gl || gl.length !== 4 || gl.valueAt + 4 > b.length) return;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  v.setUint32(gl.valueAt, (v.getUint32(gl.valueAt, true) + delta) >>> 0, true);
}

/** An element encoded as the dataset around it is (explicit or implicit, byte order). */
function encodeElement(syntax: string, group: number, element: number, vr: string, value: Uint8Array): Uint8Array {
  const le = syntax !== TS.bigEndian;
  const explicit = syntax !== TS.implicit;
  const long = LONG_VRS.has(vr);
  const head = new Uint8Array(explicit ? (long ? 12 : 8) : 8);
  putInt(head, 0, 2, BigInt(group), le);
  putInt(head, 2, 2, BigInt(element), le);
  if (!explicit) putInt(head, 4, 4, BigInt(value.length), le);
  else {
    head[4] = vr.charCodeAt(0);
    head[5] = vr.charCodeAt(1);
    if (long) putInt(head, 8, 4, BigInt(value.length), le);
    else putInt(head, 6, 2, BigInt(value.length), le);
  }
  return concat(head, value);
}

// ---------------------------------------------------------------- deflate

/** A mutation of the dataset applied inside a deflated file: inflated, changed, deflated again. */
function insideDeflate(m: (b: Uint8Array, scan: Scan, rng: Rng) => { bytes: Uint8Array; what: string } | null): Mutator {
  return (b, rng) => {
    const scan = scanDicom(b);
    if (!scan) return null;
    if (scan.syntax !== TS.deflated) return m(b, scan, rng);
    let body: Uint8Array;
    try {
      body = new Uint8Array(inflateRawSync(b.subarray(scan.metaEnd), { maxOutputLength: 1 << 22 }));
    } catch {
      return null;
    }
    const plain = concat(b.subarray(0, scan.metaEnd), body);
    const inner = scanDicom(plain);
    if (!inner) return null;
    // The inflated dataset is explicit VR little endian.
    const step = m(plain, { ...inner, syntax: TS.explicit }, rng);
    if (!step) return null;
    const after = scanDicom(step.bytes)?.metaEnd ?? scan.metaEnd;
    return { bytes: concat(step.bytes.subarray(0, after), deflateRawSync(step.bytes.subarray(after), { level: 1 })), what: `${step.what}, deflated again` };
  };
}

let zerosBlock: Uint8Array | null = null;
/**
 * A deflate stream that inflates to `mb` MiB of zeros after the dataset:
 * byte-aligned non-final blocks (sync flush) of 1 MiB of zeros each, about
 * 1 KB apiece, then a final empty block. A small file, a large inflation.
 */
function deflateBomb(body: Uint8Array, mb: number): Uint8Array {
  zerosBlock ??= new Uint8Array(deflateRawSync(new Uint8Array(1 << 20), { finishFlush: constants.Z_SYNC_FLUSH }));
  const head = new Uint8Array(deflateRawSync(body, { finishFlush: constants.Z_SYNC_FLUSH }));
  const parts = [head, ...Array.from({ length: mb }, () => zerosBlock!), new Uint8Array(deflateRawSync(new Uint8Array(0)))];
  return concat(...parts);
}

/** Damage to a deflated dataset's stream, a bomb, or a plain dataset deflated (its transfer syntax changed to say so). */
const deflateWrapper: Mutator = (b, rng) => {
  const scan = scanDicom(b);
  if (!scan) return null;
  const op = rng.below(5);
  if (scan.syntax !== TS.deflated || op === 0) {
    const ts = scan.elements.find((e) => e.meta && e.element === 0x10);
    if (!ts || scan.syntax === TS.deflated || scan.syntax === TS.bigEndian || scan.syntax === TS.implicit) return null;
    const withTs = replaceValue(b, scan, ts, new TextEncoder().encode(TS.deflated));
    const metaEnd = scanDicom(withTs)?.metaEnd ?? 0;
    return { bytes: concat(withTs.subarray(0, metaEnd), deflateRawSync(withTs.subarray(metaEnd))), what: "dataset deflated, transfer syntax set to Deflated" };
  }
  const body = b.subarray(scan.metaEnd);
  if (op === 1) {
    const at = scan.metaEnd + rng.below(body.length);
    return { bytes: b.slice(0, at), what: `deflate stream cut at ${at}` };
  }
  if (op === 2) {
    let plain: Uint8Array;
    try {
      plain = new Uint8Array(inflateRawSync(body, { maxOutputLength: 1 << 22 }));
    } catch {
      return null;
    }
    const mb = rng.pick([65, 300, 1500]);
    return { bytes: concat(b.subarray(0, scan.metaEnd), deflateBomb(plain, mb)), what: `deflate bomb: the dataset then ${mb} MiB of zeros` };
  }
  if (op === 3) return { bytes: concat(b, rng.bytes(rng.range(1, 64))), what: "random bytes after the deflate stream" };
  return { bytes: concat(b.subarray(0, scan.metaEnd), new Uint8Array(deflateRawSync(body.subarray(0, 0))), body), what: "an empty final deflate block before the stream" };
};

// ---------------------------------------------------------------- mutators

/** An element of the dataset (or, rarely, the meta group), biased toward the image attributes. */
function pickElement(scan: Scan, rng: Rng, filter: (e: Element) => boolean = () => true): Element | null {
  const all = scan.elements.filter(filter);
  if (all.length === 0) return null;
  const dataset = all.filter((e) => !e.meta);
  if (dataset.length > 0 && rng.chance(0.85)) {
    const image = dataset.filter((e) => e.group === 0x0028 || e.group === 0x7fe0 || e.group === 0x0020);
    return rng.pick(image.length > 0 && rng.chance(0.4) ? image : dataset);
  }
  return rng.pick(all);
}

const ODD_TAGS = [0x7fe00010, 0xfffee000, 0xfffee00d, 0xfffee0dd, 0x00020010, 0x00080000, 0x00090010, 0x00091001, 0x00000000, 0xffffffff, 0x00280010, 0x00280008, 0x0020000e, 0x00080016];

const dicomTag: Mutator = insideDeflate((b, scan, rng) => {
  const e = pickElement(scan, rng);
  if (!e) return null;
  const others = scan.elements.filter((x) => x !== e && !x.meta);
  const to = others.length > 0 && rng.chance(0.4) ? tagOf(rng.pick(others)) : rng.pick(ODD_TAGS);
  const out = b.slice();
  putInt(out, e.at, 2, BigInt(to >>> 16), e.le);
  putInt(out, e.at + 2, 2, BigInt(to & 0xffff), e.le);
  return { bytes: out, what: `tag ${tagName(tagOf(e))} at ${e.at} → ${tagName(to >>> 0)}` };
});

/** Two top-level elements swapped (tags out of order), or one deleted or duplicated. */
const dicomOrder: Mutator = insideDeflate((b, scan, rng) => {
  const top = scan.elements.filter((e) => !e.meta && e.depth === 0 && e.group !== 0xfffe);
  if (top.length < 2) return null;
  const ends = new Map(top.map((e, n) => [e, n + 1 < top.length ? top[n + 1]!.at : b.length]));
  const x = rng.pick(top);
  const range = (e: Element) => b.subarray(e.at, ends.get(e)!);
  const op = rng.below(3);
  if (op === 0) return { bytes: concat(b.subarray(0, x.at), b.subarray(ends.get(x)!)), what: `element ${tagName(tagOf(x))} deleted` };
  if (op === 1) return { bytes: concat(b.subarray(0, ends.get(x)!), range(x), b.subarray(ends.get(x)!)), what: `element ${tagName(tagOf(x))} duplicated` };
  const y = rng.pick(top);
  if (y === x) return null;
  const [p, q] = x.at < y.at ? [x, y] : [y, x];
  return {
    bytes: concat(b.subarray(0, p.at), range(q), b.subarray(ends.get(p)!, q.at), range(p), b.subarray(ends.get(q)!)),
    what: `elements ${tagName(tagOf(p))} and ${tagName(tagOf(q))} swapped`,
  };
});

const VRS = ["SQ", "OB", "OW", "UN", "UT", "US", "UL", "SS", "SL", "FL", "FD", "DS", "IS", "CS", "UI", "AT", "OF", "SV", "  ", "\0\0", "ZZ", "ob"];

const dicomVr: Mutator = insideDeflate((b, scan, rng) => {
  const e = pickElement(scan, rng, (x) => x.vr !== null);
  if (!e) return null;
  const vr = rng.pick(VRS);
  const out = b.slice();
  out[e.at + 4] = vr.charCodeAt(0);
  out[e.at + 5] = vr.charCodeAt(1);
  return { bytes: out, what: `VR of ${tagName(tagOf(e))} ${e.vr} → ${JSON.stringify(vr)}` };
});

const dicomLength: Mutator = insideDeflate((b, scan, rng) => {
  const e = pickElement(scan, rng);
  if (!e) return null;
  const rest = b.length - e.valueAt;
  const choices: bigint[] = [0n, BigInt(e.length + 1), BigInt(Math.max(0, e.length - 1)), BigInt(e.length + 2), BigInt(rest), BigInt(rest + 1), ...interestingInts(e.lengthWidth, b.length)];
  if (e.lengthWidth === 4) choices.push(0xffffffffn, 0xffffffffn, 0xfffffffen, 0x80000000n);
  const value = rng.pick(choices);
  return { bytes: setLength(b, e, value), what: `length of ${tagName(tagOf(e))} at ${e.at} ${e.length} → ${value}` };
});

/** Item and sequence delimiters inserted or deleted; a sequence or item turned to undefined length (a valid rewrite). */
const dicomDelimiter: Mutator = insideDeflate((b, scan, rng) => {
  const le = scan.syntax !== TS.bigEndian;
  const op = rng.below(4);
  const seqs = scan.elements.filter((e) => !e.meta && e.length !== UNDEFINED && (e.vr === "SQ" || (e.group === 0xfffe && e.element === 0xe000)));
  if (op === 0 && seqs.length > 0) {
    const e = rng.pick(seqs);
    const end = e.valueAt + e.length;
    if (end > b.length) return null;
    const item = e.group === 0xfffe;
    const delim = new Uint8Array(8);
    putInt(delim, 0, 2, 0xfffen, le);
    putInt(delim, 2, 2, item ? 0xe00dn : 0xe0ddn, le);
    const out = concat(b.subarray(0, end), delim, b.subarray(end));
    putInt(out, e.lengthAt, 4, 0xffffffffn, le);
    return { bytes: out, what: `${item ? "item" : "sequence"} at ${e.at} turned to undefined length` };
  }
  const delims = scan.elements.filter((e) => e.group === 0xfffe);
  if (op === 1 && delims.length > 0) {
    const e = rng.pick(delims);
    return { bytes: concat(b.subarray(0, e.at), b.subarray(e.at + 8)), what: `delimiter (FFFE,${hex(e.element).slice(4)}) at ${e.at} deleted` };
  }
  if (op === 2) {
    // Sequences nested deep: undefined-length SQ and item pairs, never closed (or closed).
    const depth = rng.pick([50, 1000, 20_000]);
    const sq = encodeElement(scan.syntax, 0x0040, 0xa730, "SQ", new Uint8Array(0));
    const open = new Uint8Array(sq.length);
    open.set(sq);
    putInt(open, open.length - 4, 4, 0xffffffffn, le);
    const itemOpen = new Uint8Array(8);
    putInt(itemOpen, 0, 2, 0xfffen, le);
    putInt(itemOpen, 2, 2, 0xe000n, le);
    putInt(itemOpen, 4, 4, 0xffffffffn, le);
    const level = concat(open, itemOpen);
    const nested = new Uint8Array(level.length * depth);
    for (let n = 0; n < depth; n++) nested.set(level, n * level.length);
    const at = scan.elements.find((e) => !e.meta && e.depth === 0 && e.group > 0x0040)?.at ?? b.length;
    return { bytes: concat(b.subarray(0, at), nested, b.subarray(at)), what: `${depth} nested undefined-length sequences at ${at}` };
  }
  const starts = scan.elements.filter((e) => !e.meta);
  if (starts.length === 0) return null;
  const at = rng.pick(starts).at;
  const el = rng.pick([0xe000, 0xe00d, 0xe0dd]);
  const d = new Uint8Array(8);
  putInt(d, 0, 2, 0xfffen, le);
  putInt(d, 2, 2, BigInt(el), le);
  putInt(d, 4, 4, rng.pick([0n, 0xffffffffn, 4n, 0x10000n]), le);
  return { bytes: concat(b.subarray(0, at), d, b.subarray(at)), what: `delimiter (FFFE,${el.toString(16).toUpperCase()}) inserted at ${at}` };
});

/** The preamble, "DICM", and the meta group's length. */
const dicomMagic: Mutator = (b, rng) => {
  if (b.length < 132) return null;
  const op = rng.below(6);
  const out = b.slice();
  if (op === 0) {
    out[128 + rng.below(4)] = rng.pick([0x00, 0x64, 0x20, 0xff]);
    return { bytes: out, what: "\"DICM\" damaged" };
  }
  if (op === 1) return { bytes: b.slice(128), what: "no preamble (file starts with DICM)" };
  if (op === 2) return { bytes: b.slice(132), what: "no preamble nor DICM (a raw dataset)" };
  if (op === 3) {
    const at = rng.range(128, Math.min(b.length, 160));
    return { bytes: b.slice(0, at), what: `cut at ${at} (in the meta group's start)` };
  }
  if (op === 4) {
    out.set(rng.bytes(128));
    return { bytes: out, what: "random preamble" };
  }
  const scan = scanDicom(b);
  const gl = scan?.elements.find((e) => e.meta && e.element === 0);
  if (!gl) return null;
  const value = rng.pick(interestingInts(4, b.length));
  putInt(out, gl.valueAt, 4, value);
  return { bytes: out, what: `meta group length = ${value}` };
};

const SYNTAXES = [
  TS.implicit, TS.explicit, TS.deflated, TS.bigEndian, "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90", "",
  "1.2.840.10008.1.2.1\0", "1.2.840.10008.1.2 ", "1.2.840.10008.1.2.1.98", "1.2.840.10008.1.2.4.201", `1.${"2".repeat(300)}`, "\u00ff\u00fe",
];

const dicomSyntax: Mutator = (b, rng) => {
  const scan = scanDicom(b);
  const ts = scan?.elements.find((e) => e.meta && e.element === 0x10);
  if (!scan || !ts) return null;
  const uid = rng.pick(SYNTAXES);
  const out = replaceValue(b, scan, ts, new TextEncoder().encode(uid));
  if (rng.chance(0.1)) fixMetaLength(out, scan, -(out.length - b.length));
  return { bytes: out, what: `transfer syntax = ${JSON.stringify(uid.slice(0, 40))}` };
};

const enc = new TextEncoder();
const US_VALUES = [0, 1, 2, 3, 7, 8, 12, 15, 16, 17, 24, 32, 64, 255, 256, 16384, 23170, 32767, 32768, 65535];
/** Image attributes stored as US: Rows, Columns, BitsAllocated, BitsStored, HighBit, PixelRepresentation, SamplesPerPixel, PlanarConfiguration. */
const US_TAGS = [0x00280010, 0x00280011, 0x00280100, 0x00280101, 0x00280102, 0x00280103, 0x00280002, 0x00280006];
/** String-valued attributes the reader uses, with values that break it. */
const STRING_ATTRS: [number, string, string[]][] = [
  [0x00280008, "IS", ["0", "1", "2", "-1", "1e9", "abc", "", "2147483648", "1.5", " 1 "]],
  [0x00280004, "CS", ["RGB", "MONOCHROME1", "PALETTE COLOR", "YBR_FULL", "", "MONOCHROME2\\RGB"]],
  [0x00281053, "DS", ["0", "-0", "NaN", "1e400", "", "1\\2", "inf", "0.5", "1e-300", `${"1\\".repeat(500)}1`]],
  [0x00281052, "DS", ["-1024", "1e308", "NaN", "", "-1e400", "0.25"]],
  [0x00200032, "DS", ["0\\0\\0", "1\\2", "NaN\\0\\0", "1e400\\0\\0", "", "0\\0\\2.5", "0\\0\\5", "0.5\\0\\2.5", `${"1\\".repeat(600)}1`]],
  [0x00200037, "DS", ["1\\0\\0\\0\\1\\0", "1\\0\\0\\0\\0\\1", "0\\0\\0\\0\\0\\0", "1\\0\\0\\1\\0\\0", "0.7071\\0.7071\\0\\0\\1\\0", "1\\0\\0\\0\\1", "NaN\\0\\0\\0\\1\\0"]],
  [0x00280030, "DS", ["0\\0", "-1\\1", "1", "1e-300\\1e-300", "1e300\\1e300", "NaN\\1", ""]],
  [0x0020000e, "UI", ["", "1.2.3", `${UID_ROOT}.9`, `1.${"9".repeat(2000)}`]],
  [0x00080018, "UI", ["", "1.2.3", `${UID_ROOT}.4.0`]],
  [0x00200052, "UI", ["", "1.2.3"]],
  [0x00080060, "CS", ["MR", "", "SEG", "CT\\MR"]],
  [0x00080005, "CS", ["ISO_IR 192", "ISO_IR 6", "GB18030", "nonsense", "ISO_IR 100\\ISO 2022 IR 87", ""]],
];

/** Rows × Columns that a few hundred bytes can claim: up to the voxel bound, and past it. */
const SIZES: [number, number][] = [[16384, 16384], [23170, 23170], [32768, 16384], [65535, 65535], [8192, 8192], [1, 1], [0, 4], [3, 4], [4, 6]];

/** Rows and Columns set together (their values in place, as US in the file's byte order). */
function imageSize(b: Uint8Array, scan: Scan, rng: Rng): { bytes: Uint8Array; what: string } | null {
  const le = scan.syntax !== TS.bigEndian;
  const [rows, columns] = rng.pick(SIZES);
  const out = b.slice();
  let set = 0;
  for (const e of scan.elements) {
    if (e.meta || e.depth !== 0 || e.group !== 0x0028 || e.length !== 2 || e.valueAt + 2 > b.length) continue;
    if (e.element === 0x10) putInt(out, e.valueAt, 2, BigInt(rows), le);
    else if (e.element === 0x11) putInt(out, e.valueAt, 2, BigInt(columns), le);
    else continue;
    set++;
  }
  return set > 0 ? { bytes: out, what: `Rows × Columns = ${rows} × ${columns}` } : null;
}

/** An image attribute set to a value that breaks the reader (inserted where it is missing). */
const dicomImageValue: Mutator = insideDeflate((b, scan, rng) => {
  const le = scan.syntax !== TS.bigEndian;
  const top = scan.elements.filter((e) => !e.meta && e.depth === 0 && e.group !== 0xfffe);
  if (top.length === 0) return null;
  let tag: number, vr: string, value: Uint8Array, shown: string;
  if (rng.chance(0.15)) return imageSize(b, scan, rng);
  if (rng.chance(0.45)) {
    tag = rng.pick(US_TAGS);
    vr = "US";
    const n = rng.pick(US_VALUES);
    value = new Uint8Array(2);
    putInt(value, 0, 2, BigInt(n), le);
    shown = String(n);
  } else {
    const [t, v, values] = rng.pick(STRING_ATTRS);
    tag = t;
    vr = v;
    shown = rng.pick(values);
    value = enc.encode(shown);
  }
  const what = `${tagName(tag)} = ${JSON.stringify(shown.slice(0, 40))}`;
  const e = top.find((x) => tagOf(x) === tag);
  if (e) return { bytes: replaceValue(b, scan, e, value), what };
  // Missing: inserted before the first element with a greater tag.
  const padded = value.length % 2 ? concat(value, Uint8Array.of(vr === "UI" ? 0 : 0x20)) : value;
  const at = top.find((x) => tagOf(x) >>> 0 > tag >>> 0)?.at ?? b.length;
  return { bytes: concat(b.subarray(0, at), encodeElement(scan.syntax, tag >>> 16, tag & 0xffff, vr, padded), b.subarray(at)), what: `${what} (inserted)` };
});

/** The Pixel Data element's length, or its value cut, doubled or encapsulated. */
const dicomPixelData: Mutator = insideDeflate((b, scan, rng) => {
  const e = scan.elements.find((x) => !x.meta && x.depth === 0 && x.group === 0x7fe0 && x.element === 0x10);
  if (!e) return null;
  const le = scan.syntax !== TS.bigEndian;
  const op = rng.below(4);
  if (op === 0) {
    const value = rng.pick([0n, 1n, BigInt(e.length - 1), BigInt(e.length + 1), BigInt(e.length * 2), 0xffffffffn, 0x7fffffffn, BigInt(b.length)]);
    return { bytes: setLength(b, e, value), what: `Pixel Data length ${e.length} → ${value}` };
  }
  const value = b.subarray(e.valueAt, Math.min(b.length, e.valueAt + e.length));
  if (op === 1) {
    const keep = rng.pick([0, 1, value.length >> 1, Math.max(0, value.length - 1), Math.max(0, value.length - 2)]);
    return { bytes: replaceValue(b, scan, e, value.subarray(0, keep)), what: `Pixel Data cut to ${keep} bytes (length fixed)` };
  }
  if (op === 2) return { bytes: replaceValue(b, scan, e, concat(value, value)), what: "Pixel Data doubled (length fixed)" };
  // Encapsulated: an empty offset table item, one fragment, a sequence delimiter.
  const item = (tag: number, body: Uint8Array) => {
    const h = new Uint8Array(8);
    putInt(h, 0, 2, 0xfffen, le);
    putInt(h, 2, 2, BigInt(tag), le);
    putInt(h, 4, 4, BigInt(body.length), le);
    return concat(h, body);
  };
  const frags = concat(item(0xe000, new Uint8Array(0)), item(0xe000, value), item(0xe0dd, new Uint8Array(0)));
  const out = concat(b.subarray(0, e.valueAt), frags, b.subarray(Math.min(b.length, e.valueAt + e.length)));
  putInt(out, e.lengthAt, e.lengthWidth, e.lengthWidth === 4 ? 0xffffffffn : 0xffffn, le);
  return { bytes: out, what: "Pixel Data encapsulated (undefined length, fragments)" };
});

/** The format-aware mutations, weighted. */
export const DICOM_MUTATORS: readonly Mutator[] = [
  dicomTag, dicomOrder, dicomVr, dicomVr, dicomLength, dicomLength, dicomLength, dicomDelimiter, dicomMagic, dicomSyntax,
  dicomImageValue, dicomImageValue, dicomImageValue, dicomImageValue, dicomPixelData, dicomPixelData, deflateWrapper,
];
