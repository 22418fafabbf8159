// The zip reader and the torch checkpoint on top of it, field by field (issue
// 24, mutation testing): every field of the end record, the zip64 records, the
// central directory and the local headers gets an archive where it alone is
// wrong (or at its limit), built byte by byte in test/weights/craft.ts, and the
// test asserts the check that refuses it (error class and words) and what it
// spared: nothing inflated, no file descriptor left open, the file unchanged.
import { closeSync, openSync, readdirSync, readFileSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { isContiguous, TensorRef, TorchZipCheckpoint } from "../../src/weights/torch_pickle.js";
import { ZipArchive, ZipError, ZipTruncatedError } from "../../src/weights/torch_zip.js";
import { PickleError } from "../../src/weights/unpickle.js";
import { buildZip, f32Bytes, P, stateDictPickle, type CraftTensor, type ZipEntrySpec, type ZipOptions } from "./craft.js";
import { tempDir, thrown } from "./util.js";

const dir = tempDir("zip-fields");
let files = 0;

function write(bytes: Uint8Array): string {
  const p = join(dir, `z${files++}.zip`);
  writeFileSync(p, bytes);
  return p;
}

const openFds = (): number => readdirSync("/proc/self/fd").length;

/** Opening `bytes` fails with `cls` and a message `words` matches; no descriptor stays open, the file is unchanged. */
function refusedOpen(bytes: Uint8Array, cls: new (message: string) => Error, words: RegExp, open: (p: string) => unknown = (p) => ZipArchive.open(p)): Error {
  const p = write(bytes);
  const fds = openFds();
  const e = thrown(() => open(p));
  expect(e, e.message).toBeInstanceOf(cls);
  expect(e.name).toBe(cls.name);
  expect(e.message.startsWith(`${p}: `), e.message).toBe(true);
  expect(e.message).toMatch(words);
  expect(openFds()).toBe(fds);
  expect(readFileSync(p).equals(Buffer.from(bytes))).toBe(true);
  return e;
}

const entry = (name: string, data: number[] | Uint8Array, more: Partial<ZipEntrySpec> = {}): ZipEntrySpec => ({ name, data: data instanceof Uint8Array ? data : Uint8Array.from(data), ...more });
const zip = (entries: ZipEntrySpec[], opts?: ZipOptions): Buffer => buildZip(entries, opts).bytes;

/** A zip64 extra field (id 1) holding `values` as 64-bit integers. */
function zip64Extra(...values: bigint[]): Buffer {
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(1, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(v, 4 + 8 * i));
  return b;
}

describe("zip magic", () => {
  it("is exactly PK\\3\\4 in the first four bytes", () => {
    const magic = [0x50, 0x4b, 0x03, 0x04];
    expect(ZipArchive.hasZipMagic(Uint8Array.from(magic))).toBe(true);
    expect(ZipArchive.hasZipMagic(Uint8Array.from([...magic, 0]))).toBe(true);
    expect(ZipArchive.hasZipMagic(Uint8Array.from(magic.slice(0, 3)))).toBe(false);
    for (let i = 0; i < 4; i++) {
      const b = Uint8Array.from(magic);
      b[i] ^= 0x01;
      expect(ZipArchive.hasZipMagic(b), `byte ${i}`).toBe(false);
    }
  });
});

describe("zip files", () => {
  it("names a file it cannot open", () => {
    const p = join(dir, "missing.zip");
    const e = thrown(() => ZipArchive.open(p));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toMatch(new RegExp(`^${p}: cannot open: ENOENT`));
  });

  it("reads an entry whose data ends exactly at the end of the file (its local header after the directory)", () => {
    const { bytes, directoryOffset } = buildZip([entry("a", [1, 2, 3])]);
    const local = bytes.subarray(0, directoryOffset);
    const tail = Buffer.from(bytes.subarray(directoryOffset)); // directory entry + end record
    const cdSize = tail.length - 22;
    tail.writeUInt32LE(tail.length, 42); // the local header now follows the end record
    tail.writeUInt32LE(0, cdSize + 16); // the directory starts the file
    const z = ZipArchive.open(write(Buffer.concat([tail, local])));
    expect([...z.read("a", 3)]).toEqual([1, 2, 3]);
    z.close();
  });
});

describe("zip end records", () => {
  const empty = (): Buffer => zip([]);

  it("opens an empty archive of exactly 22 bytes (its end record at offset 0)", () => {
    const b = empty();
    expect(b.length).toBe(22);
    const z = ZipArchive.open(write(b));
    expect(z.names()).toEqual([]);
    z.close();
  });

  it("refuses 21 bytes as too short, and 22 bytes without an end record as truncated", () => {
    refusedOpen(empty().subarray(0, 21), ZipError, /: file is 21 bytes, too short for a zip archive \(truncated\?\)$/);
    const e = refusedOpen(Buffer.alloc(22, 0x20), ZipTruncatedError, /: no zip end-of-central-directory record \(truncated file\?\)$/);
    expect(e).toBeInstanceOf(ZipError);
  });

  it("refuses a directory that lies past the end of the file as truncated, whatever its size", () => {
    const b = empty();
    b.writeUInt32LE(1, 12); // size 1 at offset 22: one byte past the end
    b.writeUInt32LE(22, 16);
    refusedOpen(b, ZipTruncatedError, /: central directory \[22, 23\) lies outside the 22-byte file \(truncated\?\)$/);
    const c = empty();
    c.writeUInt32LE(0xffffffff, 12);
    c.writeUInt32LE(0, 16);
    refusedOpen(c, ZipTruncatedError, /: central directory \[0, 4294967295\) lies outside the 22-byte file/);
  });

  it("reads a directory that ends exactly at the end of the file", () => {
    const b = empty();
    b.writeUInt32LE(22, 12); // the end record itself, listing no entries
    const z = ZipArchive.open(write(b));
    expect(z.names()).toEqual([]);
    z.close();
  });

  it("refuses a directory over 16 MiB before reading it, and reads one of exactly 16 MiB", () => {
    const MiB = 1024 * 1024;
    for (const [cdSize, ok] of [
      [16 * MiB, true],
      [16 * MiB + 1, false],
    ] as const) {
      const p = join(dir, `bigdir${cdSize}.zip`);
      writeFileSync(p, "");
      truncateSync(p, cdSize + 22); // sparse: zeros, then the end record
      const eocd = zip([]);
      eocd.writeUInt32LE(cdSize, 12);
      const fd = openSync(p, "r+");
      writeSync(fd, eocd, 0, 22, cdSize);
      closeSync(fd);
      if (ok) {
        const z = ZipArchive.open(p);
        expect(z.names()).toEqual([]);
        z.close();
      } else {
        const e = thrown(() => ZipArchive.open(p));
        expect(e).toBeInstanceOf(ZipError);
        expect(e).not.toBeInstanceOf(ZipTruncatedError);
        expect(e.message).toBe(`${p}: central directory of ${cdSize} bytes is larger than the ${16 * MiB} a checkpoint needs (corrupt or malicious file)`);
      }
    }
  });

  it("takes the entry count and directory place from the zip64 record", () => {
    const b = zip([entry("a", [1, 2, 3]), entry("b", [4])], { zip64: true });
    const z = ZipArchive.open(write(b));
    expect(z.names()).toEqual(["a", "b"]);
    expect([...z.read("a", 3)]).toEqual([1, 2, 3]);
    z.close();
  });

  it("finds a zip64 locator at the very start of the end-of-file scan", () => {
    // locator (20) | end record (22) | zip64 record (56): the zip64 record lists nothing, the classic one claims an entry.
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(42n, 8);
    const eocd = zip([]);
    eocd.writeUInt16LE(1, 10);
    eocd.writeUInt32LE(46, 12);
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    const z = ZipArchive.open(write(Buffer.concat([loc, eocd, rec])));
    expect(z.names()).toEqual([]);
    z.close();
  });

  it("refuses a zip64 record with a bad signature, or one placed outside the file", () => {
    const b = zip([entry("a", [1])], { zip64: true });
    const rec = b.length - 22 - 20 - 56;
    const bad = Buffer.from(b);
    bad[rec] ^= 0xff;
    refusedOpen(bad, ZipError, /: bad zip64 end-of-central-directory signature \(corrupt file\)$/);
    const far = Buffer.from(b);
    far.writeBigUInt64LE(BigInt(b.length), b.length - 22 - 20 + 8);
    refusedOpen(far, ZipError, new RegExp(`: "zip64 end of central directory": bytes \\[${b.length}, ${b.length + 56}\\) lie outside the ${b.length}-byte file \\(truncated\\?\\)$`));
  });
});

describe("zip central directory entries", () => {
  it("refuses a count of entries the directory does not hold", () => {
    const b = zip([entry("a", [1])]);
    b.writeUInt16LE(2, b.length - 22 + 10);
    refusedOpen(b, ZipError, /: central directory entry 1 is corrupt$/);
    const c = zip([entry("a", [1])]);
    c.writeUInt32LE(0x12345678, c.length - 22 - 47 - 0); // first entry's signature (46 + name 1 byte before the end record)
    refusedOpen(c, ZipError, /: central directory entry 0 is corrupt$/);
  });

  it("reads an entry that fills the directory exactly (no name, no extra, no comment)", () => {
    const z = ZipArchive.open(write(zip([entry("", [7])])));
    expect(z.names()).toEqual([""]);
    expect([...z.read("", 1)]).toEqual([7]);
    z.close();
  });

  it("steps over each entry's name, extra field and comment to the next", () => {
    const z = ZipArchive.open(write(zip([entry("a", [1], { comment: Buffer.from("first"), centralExtra: Buffer.from([9, 9, 0, 0]) }), entry("b", [2, 3], { comment: Buffer.from("x") })])));
    expect(z.names()).toEqual(["a", "b"]);
    expect([...z.read("b", 2)]).toEqual([2, 3]);
    z.close();
  });

  it("refuses an entry whose name, extra field or comment runs past the directory", () => {
    const cases: [number, string][] = [
      [28, "name"],
      [30, "extra"],
      [32, "comment"],
    ];
    for (const [field] of cases) {
      const { bytes, directoryOffset } = buildZip([entry("ab", [1])]);
      bytes.writeUInt16LE(bytes.readUInt16LE(directoryOffset + field) + 1, directoryOffset + field);
      refusedOpen(bytes, ZipError, /: central directory entry 0 runs past the directory$/);
    }
  });

  it("reads zip64 sizes and offsets from the extra field, in the order the format gives", () => {
    const data = [1, 2, 3, 4];
    // all three saturated: size, compressed size, header offset, in that order
    const all = buildZip([entry("pad", [0, 0]), entry("w", data, { size: 0xffffffff, centralExtra: zip64Extra(4n, 4n, 35n) })]);
    all.bytes.writeUInt32LE(0xffffffff, all.directoryOffset + 49 + 20); // compressed size
    all.bytes.writeUInt32LE(0xffffffff, all.directoryOffset + 49 + 42); // header offset
    expect(all.localOffsets[1]).toBe(35);
    const z = ZipArchive.open(write(all.bytes));
    expect(z.entry("w")).toMatchObject({ size: 4, compressedSize: 4, headerOffset: 35 });
    expect([...z.read("w", 4)]).toEqual(data);
    z.close();
    // only the header offset saturated: its value comes first
    const one = buildZip([entry("pad", [0, 0]), entry("w", data, { headerOffset: 0xffffffff, centralExtra: zip64Extra(35n) })]);
    const z1 = ZipArchive.open(write(one.bytes));
    expect(z1.entry("w")).toMatchObject({ size: 4, compressedSize: 4, headerOffset: 35 });
    z1.close();
    // an unknown extra field first, then the zip64 one
    const other = Buffer.concat([Buffer.from([0x55, 0x54, 2, 0, 7, 7]), zip64Extra(4n)]);
    const z2 = ZipArchive.open(write(zip([entry("w", data, { size: 0xffffffff, centralExtra: other })])));
    expect(z2.entry("w").size).toBe(4);
    expect([...z2.read("w", 4)]).toEqual(data);
    z2.close();
  });

  it("refuses a zip64 field too short for the values it must hold, and values beyond 2^53", () => {
    // size and compressed size saturated, one 64-bit value given
    const { bytes, directoryOffset } = buildZip([entry("w", [1, 2, 3, 4], { size: 0xffffffff, centralExtra: zip64Extra(4n) })]);
    bytes.writeUInt32LE(0xffffffff, directoryOffset + 20);
    refusedOpen(bytes, ZipError, /: entry "w": zip64 extra field too short$/);
    refusedOpen(zip([entry("w", [1], { size: 0xffffffff, centralExtra: zip64Extra(2n ** 60n) })]), ZipError, /: entry "w": size 1152921504606847000 is beyond any file$/);
    const huge = buildZip([entry("w", [1], { headerOffset: 0xffffffff, centralExtra: zip64Extra(2n ** 53n) })]);
    refusedOpen(huge.bytes, ZipError, /: entry "w": header offset 9007199254740992 is beyond any file$/);
  });

  it("refuses an unknown compression method, and a stored entry whose two sizes differ", () => {
    refusedOpen(zip([entry("w", [1], { centralMethod: 12 })]), ZipError, /: entry "w": unsupported compression method 12$/);
    refusedOpen(zip([entry("w", [1, 2], { size: 3 })]), ZipError, /: entry "w": stored entry with 2 stored bytes but size 3$/);
  });

  it("refuses a local header offset whose 30 bytes pass the end of the file; at the limit it opens and the read finds no header", () => {
    const size = zip([entry("w", [1])]).length;
    refusedOpen(zip([entry("w", [1], { headerOffset: size - 29 })]), ZipError, new RegExp(`: entry "w": local header offset ${size - 29} is outside the file \\(truncated\\?\\)$`));
    const z = ZipArchive.open(write(zip([entry("w", [1], { headerOffset: size - 30 })])));
    const e = thrown(() => z.read("w", 1));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toMatch(/: entry "w": bad local header signature \(corrupt file\)$/);
    z.close();
  });

  it("refuses entries whose local header and data overlap another's, wherever the directory lists them", () => {
    const { bytes, localOffsets } = buildZip([entry("ab", [1, 2, 3]), entry("c", [4])]);
    // "c"'s header moved onto the last byte of "ab"'s data: 30 + 2 (name) + 3 (data) = 35 bytes from 0.
    expect(localOffsets[1]).toBe(35);
    const cd = bytes.length - 22 - 47;
    bytes.writeUInt32LE(34, cd + 42);
    refusedOpen(bytes, ZipError, /: entries "ab" and "c" overlap \(corrupt or malicious file\)$/);
    const z = ZipArchive.open(write(zip([entry("ab", [1, 2, 3]), entry("c", [4]), entry("d", [5, 6])], { reverseCentral: true })));
    expect(z.names()).toEqual(["d", "c", "ab"]);
    expect([...z.read("ab", 3), ...z.read("c", 1), ...z.read("d", 2)]).toEqual([1, 2, 3, 4, 5, 6]);
    z.close();
  });
});

describe("zip entry reads", () => {
  it("refuses a missing entry by name", () => {
    const p = write(zip([entry("a", [1])]));
    const z = ZipArchive.open(p);
    const e = thrown(() => z.entry("b"));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toBe(`${p}: no entry "b" in the archive`);
    z.close();
  });

  it("reads an entry of exactly its limit, refuses one byte more, and reads an empty entry", () => {
    const z = ZipArchive.open(write(zip([entry("a", [1, 2, 3]), entry("e", [])])));
    expect([...z.read("a", 3)]).toEqual([1, 2, 3]);
    expect(thrown(() => z.read("a", 2)).message).toMatch(/entry "a" holds 3 bytes, more than the 2 such an entry may hold/);
    expect(z.read("e", 0).byteLength).toBe(0);
    expect(z.readRange("e", 0, 0).byteLength).toBe(0);
    z.close();
  });

  it("refuses ranges outside an entry before reading, and checks the CRC only on a whole-entry read", () => {
    const p = write(zip([entry("a", [1, 2, 3, 4], { crc: 0x1234 })]));
    const z = ZipArchive.open(p);
    for (const [start, len] of [
      [-1, 2],
      [0, -1],
      [2, 3],
      [4, 1],
    ]) {
      const e = thrown(() => z.readRange("a", start!, len!));
      expect(e).toBeInstanceOf(ZipError);
      expect(e.message).toBe(`${p}: entry "a": range [${start}, ${start! + len!}) is outside its 4 bytes`);
    }
    expect([...z.readRange("a", 1, 3)]).toEqual([2, 3, 4]);
    expect([...z.readRange("a", 0, 3)]).toEqual([1, 2, 3]);
    expect(thrown(() => z.readRange("a", 0, 4)).message).toBe(`${p}: entry "a": CRC mismatch (corrupt file)`);
    z.close();
  });

  it("closes its file once, however often close() is called, and refuses reads after it", () => {
    const p = write(zip([entry("a", [1, 2])]));
    const before = openFds();
    const z = ZipArchive.open(p);
    expect(openFds()).toBe(before + 1);
    z.close();
    expect(openFds()).toBe(before);
    z.close();
    const e = thrown(() => z.read("a", 2));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toBe(`${p}: read of "local header of a" after close()`);
  });

  it("refuses a file cut short after it was opened", () => {
    const p = write(zip([entry("a", [1, 2, 3, 4])]));
    const z = ZipArchive.open(p);
    truncateSync(p, 32);
    const e = thrown(() => z.readRange("a", 0, 4));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toBe(`${p}: "a": file ended early (truncated?)`);
    z.close();
  });

  it("refuses data that the local header's own extra field pushes past the end of the file", () => {
    const b = zip([entry("a", [1, 2, 3, 4])]);
    b.writeUInt16LE(b.length - 30 - 1 - 4 + 1, 28); // data would start 4 bytes before the end, and needs 4 + 1 ... one past
    const p = write(b);
    const z = ZipArchive.open(p);
    const e = thrown(() => z.read("a", 4));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toMatch(new RegExp(`^${p}: entry "a": data \\[\\d+, ${b.length + 1}\\) runs past the end of the ${b.length}-byte file \\(truncated\\?\\)$`));
    z.close();
  });
});

describe("zip deflated entries", () => {
  const values = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

  it("refuses a size past deflate's best ratio before inflating, and takes one at the ratio to the inflater", () => {
    const stream = deflateRawSync(new Uint8Array(100));
    const c = stream.length;
    const over = zip([entry("a", new Uint8Array(0), { raw: stream, deflate: true, size: c * 1032 + 1025 })]);
    const z = ZipArchive.open(write(over));
    expect(thrown(() => z.read("a", 1 << 30)).message).toMatch(new RegExp(`entry "a": claims ${c * 1032 + 1025} bytes from ${c} compressed \\(corrupt or malicious\\)$`));
    expect(z.inflations).toBe(0);
    z.close();
    for (const size of [c * 1032 + 1024, c * 1032 + 1000]) {
      const at = ZipArchive.open(write(zip([entry("a", new Uint8Array(0), { raw: stream, deflate: true, size })])));
      expect(thrown(() => at.read("a", 1 << 30)).message).toMatch(new RegExp(`entry "a": inflated to 100 bytes, the directory says ${size}$`));
      expect(at.inflations).toBe(1);
      at.close();
    }
  });

  it("refuses stored bytes past what deflate makes of the size, and takes a stream at that bound to the inflater", () => {
    const size = 2048;
    const bound = size + (size >> 10) + 1024;
    for (const [len, words] of [
      [bound + 1, /claims 2048 bytes from 3075 compressed/],
      [bound, /corrupt deflate data/],
    ] as const) {
      const z = ZipArchive.open(write(zip([entry("a", new Uint8Array(0), { raw: new Uint8Array(len).fill(0xff), deflate: true, size })])));
      expect(thrown(() => z.read("a", size)).message).toMatch(words);
      z.close();
    }
  });

  it("says a stream is corrupt when zlib cannot read it, and a bomb when it inflates past the declared size", () => {
    const z = ZipArchive.open(write(zip([entry("a", new Uint8Array(8), { raw: Buffer.from([0xff, 0xff, 0xff, 0xff]), deflate: true })])));
    const e = thrown(() => z.read("a", 8));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toMatch(/entry "a": corrupt deflate data: /);
    z.close();
    const bomb = ZipArchive.open(write(zip([entry("b", new Uint8Array(8), { raw: deflateRawSync(new Uint8Array(5000)), deflate: true })])));
    expect(thrown(() => bomb.read("b", 8)).message).toMatch(/entry "b": inflates to more than the 8 bytes its directory entry declares \(zip bomb or corrupt file\)$/);
    bomb.close();
  });

  it("earns no inflate allowance for stored entries", () => {
    const entries = [entry("x", values(40, 1), { deflate: true }), entry("y", values(40, 2), { deflate: true }), entry("s", new Uint8Array(4000))];
    const z = ZipArchive.open(write(zip(entries)), 40); // room for one inflated entry at a time
    // 2 deflated entries of 40 bytes: 160 bytes may be inflated, i.e. 4 inflations; the stored entry adds none.
    for (const name of ["x", "y", "x", "y"]) z.readRange(name, 0, 4);
    expect(z.inflations).toBe(4);
    expect(thrown(() => z.readRange("x", 0, 4)).message).toMatch(/inflated again and again \(160 bytes so far/);
    z.close();
  });

  it("keeps two entries that fill the inflate budget exactly", () => {
    const a = values(100, 1);
    const b = values(100, 2);
    const z = ZipArchive.open(write(zip([entry("a", a, { deflate: true }), entry("b", b, { deflate: true })])), 200);
    for (const n of ["a", "b", "a", "b"]) expect([...z.readRange(n, 0, 100)]).toEqual([...(n === "a" ? a : b)]);
    expect(z.inflations).toBe(2);
    z.close();
  });
});

describe("torch zip checkpoints, field by field", () => {
  const t = (over: Partial<CraftTensor> = {}): CraftTensor => ({ name: "w", storage: "0", numel: 4, shape: [4], ...over });

  /** A checkpoint "a/data.pkl" of `pkl`, storages "a/data/<i>" (f32 values or raw bytes), and extra entries. */
  function ckpt(pkl: Buffer, storages: (number[] | ZipEntrySpec)[], extra: ZipEntrySpec[] = []): Buffer {
    return zip([
      entry("a/data.pkl", pkl),
      ...storages.map((s, i) => (Array.isArray(s) ? entry(`a/data/${i}`, f32Bytes(s)) : { ...s, name: `a/data/${i}` })),
      ...extra,
    ]);
  }
  const refusedCkpt = (bytes: Buffer, words: RegExp): Error => refusedOpen(bytes, PickleError, words, (p) => TorchZipCheckpoint.open(p));

  it("wants exactly one <dir>/data.pkl at the archive's top level", () => {
    const pkl = stateDictPickle([t()]);
    refusedCkpt(zip([entry("a/b/data.pkl", pkl)]), /expected one <dir>\/data\.pkl in the zip \(a torch\.save checkpoint\), found none$/);
    refusedCkpt(zip([entry("a/data.pkl.bak", pkl)]), /found none$/);
    refusedCkpt(zip([entry("data.pkl", pkl)]), /found none$/);
    refusedCkpt(zip([entry("a/data.pkl", pkl), entry("b/data.pkl", pkl)]), /found "a\/data\.pkl", "b\/data\.pkl"$/);
    refusedCkpt(zip(["a", "b", "c", "d"].map((d) => entry(`${d}/data.pkl`, pkl))), /found "a\/data\.pkl", "b\/data\.pkl", "c\/data\.pkl"$/);
  });

  it("reads little-endian storages and refuses big-endian ones", () => {
    const pkl = stateDictPickle([t()]);
    const ok = TorchZipCheckpoint.open(write(ckpt(pkl, [[1, 2, 3, 4]], [entry("a/byteorder", Buffer.from("little\n"))])));
    expect(ok.root).toBeInstanceOf(Map);
    ok.close();
    refusedCkpt(ckpt(pkl, [[1, 2, 3, 4]], [entry("a/byteorder", Buffer.from("big"))]), /: storages are "big"-endian; re-save the checkpoint on a little-endian machine$/);
  });

  /** The pickle of one tensor whose persistent id is `pid` (the tuple's items, pickled). */
  const withPid = (pid: Buffer): Buffer =>
    Buffer.concat([
      P.proto(2),
      P.global("torch._utils", "_rebuild_tensor_v2"),
      P.op(P.MARK, P.MARK),
      pid,
      P.op(P.TUPLE, P.BINPERSID),
      P.int(0),
      Buffer.concat([P.op(P.MARK), P.int(1), P.op(P.TUPLE)]),
      Buffer.concat([P.op(P.MARK), P.int(1), P.op(P.TUPLE)]),
      P.op(P.TUPLE, P.REDUCE, P.STOP),
    ]);
  const S = P.str("storage");
  const F = P.global("torch", "FloatStorage");

  it("refuses each malformed persistent id by its own check", () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.concat([P.op(P.NONE), F, P.str("0"), P.str("cpu"), P.int(4)]), /: unsupported persistent id tuple\(5\)$/],
      [Buffer.concat([S, F, P.str("0"), P.str("cpu")]), /: unsupported persistent id tuple\(4\)$/],
      [Buffer.concat([S, F, P.str("0"), P.str("cpu"), P.int(4), P.int(4)]), /: unsupported persistent id tuple\(6\)$/],
      [Buffer.concat([S, P.op(P.NONE), P.str("0"), P.str("cpu"), P.int(4)]), /: unsupported storage type None$/],
      [Buffer.concat([S, P.str("FloatStorage"), P.str("0"), P.str("cpu"), P.int(4)]), /: unsupported storage type string$/],
      [Buffer.concat([S, P.global("collections", "OrderedDict"), P.str("0"), P.str("cpu"), P.int(4)]), /: unsupported storage type global collections\.OrderedDict$/],
      [Buffer.concat([S, F, P.int(0), P.str("cpu"), P.int(4)]), /: malformed storage id \(key number, numel 4\)$/],
      [Buffer.concat([S, F, P.str("0"), P.str("cpu"), P.int(-1)]), /: malformed storage id \(key "0", numel -1\)$/],
      [Buffer.concat([S, F, P.str("0"), P.str("cpu"), P.text(0x49, "123456789012345678901")]), /: malformed storage id \(key "0", numel 123456789012345678901\)$/],
      [Buffer.concat([S, F, P.str("0"), P.str("cpu"), P.str("4")]), /: malformed storage id \(key "0", numel string\)$/],
      [Buffer.concat([S, F, P.str("9"), P.str("cpu"), P.int(4)]), /: storage "9" has no entry "a\/data\/9" in the zip \(truncated or corrupt file\)$/],
    ];
    for (const [pid, words] of cases) refusedCkpt(ckpt(withPid(pid), [[1, 2, 3, 4]]), words);
    // the same id, well formed, opens
    const ok = TorchZipCheckpoint.open(write(ckpt(withPid(Buffer.concat([S, F, P.str("0"), P.str("cpu"), P.int(4)])), [[1, 2, 3, 4]])));
    expect(ok.root).toBeInstanceOf(TensorRef);
    ok.close();
  });

  it("accepts a stored storage larger than its elements need, refuses a deflated one whose size differs", () => {
    const pkl = stateDictPickle([t({ numel: 2, shape: [2] })]);
    const ck = TorchZipCheckpoint.open(write(ckpt(pkl, [[1, 2, 3, 4]])));
    const w = (ck.root as Map<string, TensorRef>).get("w")!;
    expect([...new Float32Array(ck.readContiguous(w, "w").buffer)]).toEqual([1, 2]);
    ck.close();
    refusedCkpt(ckpt(pkl, [{ name: "", data: f32Bytes([1, 2, 3, 4]), deflate: true }]), /: deflated storage "0" claims 16 bytes, its 2 F32 elements take 8 \(corrupt or malicious file\)$/);
  });

  /** Opens a one-tensor checkpoint and reads the tensor. */
  function readOne(tensor: CraftTensor, storage: Uint8Array): Uint8Array {
    const ck = TorchZipCheckpoint.open(write(ckpt(stateDictPickle([tensor]), [{ name: "", data: storage }])));
    try {
      return ck.readContiguous((ck.root as Map<string, TensorRef>).get("w")!, "w");
    } finally {
      ck.close();
    }
  }

  it("reads an empty tensor as no bytes, wherever its offset points", () => {
    expect(readOne(t({ numel: 4, shape: [0], offset: 9 }), f32Bytes([1, 2, 3, 4])).byteLength).toBe(0);
    expect(readOne(t({ numel: 4, shape: [2, 0], stride: [0, 1], offset: 4 }), f32Bytes([1, 2, 3, 4])).byteLength).toBe(0);
  });

  it("reads a view that reaches its storage's last element, refuses one that reaches one past it", () => {
    expect([...new Float32Array(readOne(t({ numel: 4, shape: [2], offset: 2 }), f32Bytes([1, 2, 3, 4])).buffer)]).toEqual([3, 4]);
    const p = write(ckpt(stateDictPickle([t({ numel: 4, shape: [2], offset: 3 })]), [[1, 2, 3, 4]]));
    const ck = TorchZipCheckpoint.open(p);
    const e = thrown(() => ck.readContiguous((ck.root as Map<string, TensorRef>).get("w")!, "w"));
    expect(e).toBeInstanceOf(PickleError);
    expect(e.message).toBe(`${p}: tensor "w": view (offset 3, size [2], stride [1]) reaches element 4 of a 4-element storage`);
    ck.close();
  });

  it("gathers transposed views of 1-, 2-, 4- and 8-byte elements into C order", () => {
    // storage: a 2x3 matrix m[i][j] = 10 i + j in C order; the view is its 3x2 transpose.
    const m = [0, 1, 2, 10, 11, 12];
    const want = [0, 10, 1, 11, 2, 12];
    const cases: [string, number, (xs: number[]) => Uint8Array, (b: Uint8Array) => number[]][] = [
      ["ByteStorage", 1, (xs) => Uint8Array.from(xs), (b) => [...b]],
      ["ShortStorage", 2, (xs) => new Uint8Array(Int16Array.from(xs).buffer), (b) => [...new Int16Array(b.buffer)]],
      ["FloatStorage", 4, (xs) => f32Bytes(xs), (b) => [...new Float32Array(b.buffer)]],
      ["DoubleStorage", 8, (xs) => new Uint8Array(Float64Array.from(xs.map((x) => x + 0.25)).buffer), (b) => [...new Float64Array(b.buffer)].map((x) => x - 0.25)],
      ["LongStorage", 8, (xs) => new Uint8Array(BigInt64Array.from(xs.map((x) => BigInt(x) - 2n ** 40n)).buffer), (b) => [...new BigInt64Array(b.buffer)].map((x) => Number(x + 2n ** 40n))],
    ];
    for (const [storageType, size, enc, dec] of cases) {
      const got = readOne(t({ storageType, numel: 6, shape: [3, 2], stride: [1, 3] }), enc(m));
      expect(got.byteLength, storageType).toBe(6 * size);
      expect(dec(got), storageType).toEqual(want);
    }
  });

  it("tells contiguous strides from others, whatever the stride of a dimension of size 1", () => {
    expect(isContiguous([2, 3], [3, 1])).toBe(true);
    expect(isContiguous([1, 3], [99, 1])).toBe(true);
    expect(isContiguous([2, 1, 3], [3, 7, 1])).toBe(true);
    expect(isContiguous([], [])).toBe(true);
    expect(isContiguous([2, 3], [1, 2])).toBe(false);
    expect(isContiguous([2, 3], [4, 1])).toBe(false);
    expect(isContiguous([3], [2])).toBe(false);
  });

  it("closes its archive: reads after close() are refused", () => {
    const p = write(ckpt(stateDictPickle([t()]), [[1, 2, 3, 4]]));
    const ck = TorchZipCheckpoint.open(p);
    const w = (ck.root as Map<string, TensorRef>).get("w")!;
    ck.close();
    const e = thrown(() => ck.readContiguous(w, "w"));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toMatch(/after close\(\)$/);
  });
});
