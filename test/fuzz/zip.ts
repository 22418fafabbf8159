// Zip and pickle-aware mutations for torch.save checkpoints. A checkpoint's
// entries are CRC-checked, so a byte flipped inside data.pkl mostly meets a
// CRC mismatch and never reaches the unpickler; these mutators change an
// entry's contents and rebuild the archive around it (sizes and CRCs right),
// edit one header field at a time, or cut the archive where a truncated
// download would end.
import { crc32, deflateRawSync, inflateRawSync } from "node:zlib";
import { concat, GENERIC, interestingInts, putInt, type Mutator, type Rng } from "./mutate.js";

interface Entry {
  name: string;
  data: Uint8Array;
  deflate: boolean;
}

const SIG = { local: 0x04034b50, central: 0x02014b50, descriptor: 0x08074b50, eocd: 0x06054b50, locator64: 0x07064b50 };

/** The entries of a well-formed archive, or null (a mutated input often is not one). */
export function readZip(b: Uint8Array): Entry[] | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let eocd = -1;
  for (let i = b.byteLength - 22; i >= Math.max(0, b.byteLength - 22 - 0xffff); i--) {
    if (v.getUint32(i, true) === SIG.eocd) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return null;
  const count = v.getUint16(eocd + 10, true);
  let p = v.getUint32(eocd + 16, true);
  const entries: Entry[] = [];
  const dec = new TextDecoder();
  try {
    for (let i = 0; i < count; i++) {
      if (v.getUint32(p, true) !== SIG.central) return null;
      const method = v.getUint16(p + 10, true);
      const csize = v.getUint32(p + 20, true);
      const nameLen = v.getUint16(p + 28, true);
      const name = dec.decode(b.subarray(p + 46, p + 46 + nameLen));
      const local = v.getUint32(p + 42, true);
      const start = local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true);
      if ((method !== 0 && method !== 8) || start + csize > b.byteLength) return null;
      const raw = b.slice(start, start + csize);
      const data = method === 8 ? new Uint8Array(inflateRawSync(raw, { maxOutputLength: 1 << 20 })) : raw;
      entries.push({ name, data, deflate: method === 8 });
      p += 46 + nameLen + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
    }
  } catch {
    return null; // out-of-range offsets, bad deflate data
  }
  return entries;
}

/**
 * A zip of `entries` as torch.save writes one: local headers without sizes,
 * each entry's data followed by a data descriptor (which is how the
 * truncation report finds data.pkl when the directory is lost), no zip64.
 */
export function writeZip(entries: readonly Entry[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const body = e.deflate ? new Uint8Array(deflateRawSync(e.data)) : e.data;
    const crc = crc32(e.data) >>> 0;
    const method = e.deflate ? 8 : 0;
    const lh = new Uint8Array(30);
    const lv = new DataView(lh.buffer);
    lv.setUint32(0, SIG.local, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, 0x08, true); // sizes and CRC in the data descriptor
    lv.setUint16(8, method, true);
    lv.setUint16(26, name.byteLength, true);
    const dd = new Uint8Array(16);
    const dv = new DataView(dd.buffer);
    dv.setUint32(0, SIG.descriptor, true);
    dv.setUint32(4, crc, true);
    dv.setUint32(8, body.byteLength, true);
    dv.setUint32(12, e.data.byteLength, true);
    const ch = new Uint8Array(46);
    const cv = new DataView(ch.buffer);
    cv.setUint32(0, SIG.central, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(8, 0x08, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.byteLength, true);
    cv.setUint32(24, e.data.byteLength, true);
    cv.setUint16(28, name.byteLength, true);
    cv.setUint32(42, offset, true);
    parts.push(lh, name, body, dd);
    centrals.push(ch, name);
    offset += 30 + name.byteLength + body.byteLength + 16;
  }
  const cd = concat(...centrals);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, SIG.eocd, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cd.byteLength, true);
  ev.setUint32(16, offset, true);
  return concat(...parts, cd, end);
}

// Header fields worth breaking: [offset, width] within each record.
const FIELDS: Record<"local" | "central" | "eocd", [string, number, 2 | 4][]> = {
  local: [["flags", 6, 2], ["method", 8, 2], ["crc", 14, 4], ["csize", 18, 4], ["size", 22, 4], ["nameLen", 26, 2], ["extraLen", 28, 2]],
  central: [
    ["flags", 8, 2], ["method", 10, 2], ["crc", 16, 4], ["csize", 20, 4], ["size", 24, 4], ["nameLen", 28, 2],
    ["extraLen", 30, 2], ["commentLen", 32, 2], ["localOffset", 42, 4],
  ],
  eocd: [["diskEntries", 8, 2], ["entries", 10, 2], ["cdSize", 12, 4], ["cdOffset", 16, 4], ["commentLen", 20, 2]],
};

function findRecords(b: Uint8Array): { kind: keyof typeof FIELDS; at: number }[] {
  const out: { kind: keyof typeof FIELDS; at: number }[] = [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i + 4 <= b.byteLength; i++) {
    if (b[i] !== 0x50 || b[i + 1] !== 0x4b) continue;
    const sig = v.getUint32(i, true);
    if (sig === SIG.local) out.push({ kind: "local", at: i });
    else if (sig === SIG.central) out.push({ kind: "central", at: i });
    else if (sig === SIG.eocd) out.push({ kind: "eocd", at: i });
  }
  return out;
}

/** One field of a local header, central entry or end record set to an interesting value. */
const zipField: Mutator = (b, rng) => {
  const records = findRecords(b);
  if (records.length === 0) return null;
  const r = rng.pick(records);
  const [field, off, width] = rng.pick(FIELDS[r.kind]);
  if (r.at + off + width > b.byteLength) return null;
  const out = b.slice();
  const value = rng.pick(interestingInts(width, b.byteLength));
  putInt(out, r.at + off, width, value);
  return { bytes: out, what: `zip ${r.kind} header at ${r.at}: ${field} = ${value}` };
};

/** A zip64 locator before the end record, pointing anywhere. */
const zip64Locator: Mutator = (b, rng) => {
  const eocd = findRecords(b).filter((r) => r.kind === "eocd").pop();
  if (!eocd) return null;
  const loc = new Uint8Array(20);
  const v = new DataView(loc.buffer);
  v.setUint32(0, SIG.locator64, true);
  const target = rng.pick(interestingInts(8, b.byteLength).concat([BigInt(Math.max(0, eocd.at - 56))]));
  putInt(loc, 8, 8, target);
  const out = concat(b.subarray(0, eocd.at), loc, b.subarray(eocd.at));
  return { bytes: out, what: `insert a zip64 locator (record at ${target}) before the end record` };
};

/** Cut where a download would end: before the directory, inside the last entry, right after data.pkl. */
const truncateZip: Mutator = (b, rng) => {
  const records = findRecords(b);
  const central = records.find((r) => r.kind === "central");
  const locals = records.filter((r) => r.kind === "local");
  const points = [central?.at, locals.at(-1) ? locals.at(-1)!.at + rng.range(0, 200) : undefined, locals[1]?.at, Math.floor(b.byteLength * (0.5 + rng.below(50) / 100))];
  const at = rng.pick(points.filter((p): p is number => p !== undefined && p < b.byteLength));
  if (at === undefined) return null;
  return { bytes: b.slice(0, at), what: `truncate the zip to ${at} bytes` };
};

// Pickle opcodes with an argument: opcode → argument width in bytes.
const ARG_OPS: Record<number, 1 | 2 | 4 | 8> = {
  0x4a: 4, 0x4b: 1, 0x4d: 2, 0x8a: 1, 0x58: 4, 0x8c: 1, 0x68: 1, 0x6a: 4, 0x71: 1, 0x72: 4, 0x95: 8, 0x42: 4, 0x43: 1,
  0x8d: 8, 0x8e: 8, 0x80: 1, 0x54: 4, 0x55: 1,
};
// Opcode snippets that rearrange the stack, memo and containers.
const SNIPPETS = ["(", "t", "0", "2", "1", "h\x00", "h\x01", "j\xff\xff\xff\x7f", "q\x00", "e", "u", "s", "a", "l", "d", "}", "]", ")", ".",
  "\x94", "R", "b", "\x85", "\x86", "\x87", "N", "\x88", "K\xff", "J\xff\xff\xff\xff", "\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f",
  "X\xff\xff\xff\x7f", "\x8c\x05torch", "ctorch\nFloatStorage\n", "cos\nsystem\n", "\x93", "\x81", "\x95\x00\x00\x00\x00\x00\x00\x00\x00"];

function latin1(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/**
 * Changes a pickle: an opcode's argument, an inserted opcode, or a
 * shared-reference DAG around the root (`cut`: worth a truncated archive,
 * whose report walks the pickle).
 */
function mutatePickle(pkl: Uint8Array, rng: Rng): { bytes: Uint8Array; what: string; cut?: boolean } | null {
  const kind = rng.below(4);
  if (kind === 0) {
    const sites: number[] = [];
    for (let i = 0; i < pkl.byteLength; i++) if (ARG_OPS[pkl[i]!] !== undefined) sites.push(i);
    if (sites.length === 0) return null;
    const at = rng.pick(sites);
    const width = ARG_OPS[pkl[at]!]!;
    if (at + 1 + width > pkl.byteLength) return null;
    const out = pkl.slice();
    const value = rng.pick(interestingInts(width, pkl.byteLength));
    putInt(out, at + 1, width, value);
    return { bytes: out, what: `pickle opcode 0x${pkl[at]!.toString(16)} at ${at}: argument ${value}` };
  }
  if (kind === 1) {
    const at = rng.below(pkl.byteLength + 1);
    const snippet = rng.pick(SNIPPETS);
    return { bytes: concat(pkl.subarray(0, at), latin1(snippet), pkl.subarray(at)), what: `pickle: insert ${JSON.stringify(snippet)} at ${at}` };
  }
  if (kind === 2) {
    // Before STOP: root → (root, dag), where dag = d nested pairs of one shared
    // object (DUP, TUPLE2): a tree walk that does not remember what it saw takes 2^d steps.
    const stop = pkl.lastIndexOf(0x2e);
    if (stop < 0) return null;
    const depth = rng.pick([8, 24, 40, 64]);
    const dag = "N" + "2\x86".repeat(depth) + "\x86";
    return { bytes: concat(pkl.subarray(0, stop), latin1(dag), pkl.subarray(stop)), what: `pickle: root wrapped with a shared-reference DAG of depth ${depth}`, cut: true };
  }
  const step = rng.pick(GENERIC)(pkl, rng);
  return step && { bytes: step.bytes, what: `pickle: ${step.what}` };
}

/** Rebuilds the archive around a changed entry (data.pkl half the time), so sizes and CRCs agree. */
const entryContent: Mutator = (b, rng) => {
  const entries = readZip(b);
  if (!entries || entries.length === 0) return null;
  const pkl = entries.findIndex((e) => e.name.endsWith("/data.pkl"));
  const i = pkl >= 0 && rng.chance(0.6) ? pkl : rng.below(entries.length);
  const e = entries[i]!;
  const step = i === pkl ? mutatePickle(e.data, rng) : rng.pick(GENERIC)(e.data, rng);
  if (!step) return null;
  entries[i] = { ...e, data: step.bytes };
  let out = writeZip(entries);
  let what = `entry "${e.name}": ${step.what}; rebuilt`;
  if (("cut" in step && step.cut) || rng.chance(0.3)) {
    // The truncated-download path reads the pickle without the directory.
    const cut = rng.range(Math.min(out.byteLength, 30 + e.name.length + step.bytes.byteLength + 16), out.byteLength - 1);
    out = out.slice(0, cut);
    what += `, truncated to ${cut} bytes`;
  }
  return { bytes: out, what };
};

/** Deletes, duplicates, renames or recompresses entries. */
const entryList: Mutator = (b, rng) => {
  const entries = readZip(b);
  if (!entries || entries.length === 0) return null;
  const i = rng.below(entries.length);
  const e = entries[i]!;
  const op = rng.below(4);
  let what: string;
  if (op === 0) {
    entries.splice(i, 1);
    what = `delete entry "${e.name}"`;
  } else if (op === 1) {
    entries.splice(rng.below(entries.length + 1), 0, { ...e });
    what = `duplicate entry "${e.name}"`;
  } else if (op === 2) {
    const name = rng.pick(["", "/", "x/data.pkl", "archive/data.pkl", `${e.name}/`, `../${e.name}`, e.name.replace(/data/, "DATA"), "a".repeat(300)]);
    entries[i] = { ...e, name };
    what = `rename entry "${e.name}" to ${JSON.stringify(name.slice(0, 40))}`;
  } else {
    for (const x of entries) x.deflate = !x.deflate;
    what = "switch every entry between stored and deflated";
  }
  return { bytes: writeZip(entries), what };
};

export const ZIP_MUTATORS: readonly Mutator[] = [zipField, zipField, zip64Locator, truncateZip, entryContent, entryContent, entryContent, entryList];
