// A minimal zip reader for PyTorch checkpoints (`torch.save` since 1.6 writes
// an uncompressed zip: `<dir>/data.pkl`, `<dir>/data/<key>` storages, ...).
// Only what such files use: the central directory (with zip64 extensions),
// stored and deflated entries. Entry bytes are read on demand at their file
// offset, so a large checkpoint is never loaded as a whole. The file is
// untrusted: every offset is checked against the file size before use, and
// no entry inflates past the size its caller allows (see read, readRange).
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { crc32, inflateRawSync } from "node:zlib";
import { quoted } from "./quote.js";

export class ZipError extends Error {
  override name = "ZipError";
}

/** The archive's directory is missing or cut off: the file was truncated (or is not a zip). */
export class ZipTruncatedError extends ZipError {
  override name = "ZipTruncatedError";
}

export interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflated
  compressedSize: number;
  size: number;
  crc: number;
  /** Offset of the entry's local header. */
  headerOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOC = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

/**
 * The largest central directory read. torch.save lists one short entry per
 * storage (about 100 bytes; SegVol's ~480 storages take 50 kB), so 16 MiB
 * holds 160,000 storages while bounding the memory the listing can take.
 */
const MAX_DIRECTORY_BYTES = 16 * 1024 * 1024;

/**
 * Deflated entries are inflated whole, once, and kept for the tensors that
 * view them; this bounds the inflated bytes held at once (each entry too).
 * torch.save writes uncompressed zips: only re-zipped checkpoints are
 * deflated, and SegVol's largest storage (the CLIP token embedding) is 101 MB.
 */
export const MAX_INFLATED_BYTES = 256 * 1024 * 1024;

export class ZipArchive {
  private fd: number | null;
  readonly size: number;
  private readonly byName = new Map<string, ZipEntry>();
  private readonly dataOffsets = new Map<string, number>();
  /** Inflated deflated entries, least recently used first, `maxInflatedBytes` in all. */
  private readonly inflatedCache = new Map<string, Uint8Array>();
  private inflatedBytes = 0;
  private inflationCount = 0;
  /** Bytes inflated so far, and the most this archive may inflate in all (see inflate). */
  private inflatedTotal = 0;
  private inflateAllowance = 0;

  private constructor(
    readonly path: string,
    fd: number,
    private readonly maxInflatedBytes: number,
  ) {
    this.fd = fd;
    this.size = fstatSync(fd).size;
  }

  /** Opens and lists the archive; `maxInflatedBytes` bounds the inflated entries held at once. */
  static open(path: string, maxInflatedBytes = MAX_INFLATED_BYTES): ZipArchive {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new ZipError(`${path}: cannot open: ${(e as Error).message}`);
    }
    const z = new ZipArchive(path, fd, maxInflatedBytes);
    try {
      z.readCentralDirectory();
    } catch (e) {
      z.close();
      throw e;
    }
    return z;
  }

  /** True if the first bytes are a zip local header ("PK\3\4"). */
  static hasZipMagic(head: Uint8Array): boolean {
    return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): ZipEntry {
    const e = this.byName.get(name);
    if (!e) throw new ZipError(`${this.path}: no entry ${quoted(name)} in the archive`);
    return e;
  }

  /**
   * The whole (decompressed) entry, CRC-checked. An entry that holds more
   * than `limit` bytes is refused before any of it is read or inflated.
   */
  read(name: string, limit: number): Uint8Array {
    const e = this.entry(name);
    if (e.size > limit) {
      throw new ZipError(`${this.path}: entry ${quoted(name)} holds ${e.size} bytes, more than the ${limit} such an entry may hold (corrupt or malicious file)`);
    }
    const out = e.method === 0 ? this.readAt(this.dataOffset(e), e.size, name) : this.inflate(e);
    this.checkCrc(e, out);
    return out;
  }

  /**
   * Bytes [start, start+len) of an entry's contents, in a fresh buffer.
   * Stored entries are read directly at that offset (CRC-checked when the
   * range is the whole entry). A deflated entry is inflated whole, once,
   * and kept for later ranges: a checkpoint's tensors are often views of
   * one storage.
   */
  readRange(name: string, start: number, len: number): Uint8Array {
    const e = this.entry(name);
    if (start < 0 || len < 0 || start + len > e.size) {
      throw new ZipError(`${this.path}: entry ${quoted(name)}: range [${start}, ${start + len}) is outside its ${e.size} bytes`);
    }
    if (e.method !== 0) return this.inflated(e).slice(start, start + len);
    const out = this.readAt(this.dataOffset(e) + start, len, name);
    // A read of the whole entry (the usual one-tensor-per-storage case) is CRC-checked too.
    if (start === 0 && len === e.size) this.checkCrc(e, out);
    return out;
  }

  /** How many times entry data has been inflated (each deflated entry should be, once). */
  get inflations(): number {
    return this.inflationCount;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.inflatedCache.clear();
    this.inflatedBytes = 0;
  }

  /** A deflated entry's contents, from the cache or inflated (then cached). */
  private inflated(e: ZipEntry): Uint8Array {
    const hit = this.inflatedCache.get(e.name);
    if (hit) {
      this.inflatedCache.delete(e.name); // re-insert: now the most recently used
      this.inflatedCache.set(e.name, hit);
      return hit;
    }
    if (e.size > this.maxInflatedBytes) {
      throw new ZipError(
        `${this.path}: deflated entry ${quoted(e.name)} holds ${e.size} bytes, more than the ${this.maxInflatedBytes} this reader inflates in memory; save the checkpoint uncompressed (torch.save does)`,
      );
    }
    // Make room first, so the cache and the entry being inflated stay within the budget together.
    for (const [k, v] of this.inflatedCache) {
      if (this.inflatedBytes + e.size <= this.maxInflatedBytes) break;
      this.inflatedCache.delete(k);
      this.inflatedBytes -= v.byteLength;
    }
    const out = this.inflate(e);
    this.checkCrc(e, out);
    this.inflatedCache.set(e.name, out);
    this.inflatedBytes += out.byteLength;
    return out;
  }

  /** Inflates a deflated entry; zlib itself stops as soon as it passes the declared size. */
  private inflate(e: ZipEntry): Uint8Array {
    // Deflate cannot expand more than ~1032:1, nor grow data by more than ~0.03%
    // (zlib's deflateBound); claims beyond either are a zip bomb or corruption.
    if (e.size > e.compressedSize * 1032 + 1024 || e.compressedSize > e.size + (e.size >> 10) + 1024) {
      throw new ZipError(`${this.path}: entry ${quoted(e.name)}: claims ${e.size} bytes from ${e.compressedSize} compressed (corrupt or malicious)`);
    }
    // Each entry once, and as much again for entries dropped from the cache and
    // needed later: tensors that alternate between storages too large to keep
    // both would otherwise re-inflate them once per tensor.
    if (this.inflatedTotal + e.size > this.inflateAllowance) {
      throw new ZipError(
        `${this.path}: entry ${quoted(e.name)}: the archive's deflated entries were inflated again and again (${this.inflatedTotal} bytes so far, twice their size in all); save the checkpoint uncompressed (torch.save does)`,
      );
    }
    const raw = this.readAt(this.dataOffset(e), e.compressedSize, e.name);
    this.inflationCount++;
    this.inflatedTotal += e.size;
    let out: Buffer;
    try {
      // One output chunk one byte larger than the declared size: a stream that
      // keeps going fills it and trips maxOutputLength at once, and one that
      // ends in time comes back in that chunk, not copied into another.
      out = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size), chunkSize: Math.max(64, e.size + 1) });
    } catch (err) {
      if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new ZipError(`${this.path}: entry ${quoted(e.name)}: inflates to more than the ${e.size} bytes its directory entry declares (zip bomb or corrupt file)`);
      }
      throw new ZipError(`${this.path}: entry ${quoted(e.name)}: corrupt deflate data: ${(err as Error).message}`);
    }
    if (out.byteLength !== e.size) {
      throw new ZipError(`${this.path}: entry ${quoted(e.name)}: inflated to ${out.byteLength} bytes, the directory says ${e.size}`);
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  private checkCrc(e: ZipEntry, data: Uint8Array): void {
    if (crc32(data) >>> 0 !== e.crc) throw new ZipError(`${this.path}: entry ${quoted(e.name)}: CRC mismatch (corrupt file)`);
  }

  private readAt(pos: number, len: number, what: string): Uint8Array {
    if (this.fd === null) throw new ZipError(`${this.path}: read of ${quoted(what)} after close()`);
    if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(len) || pos < 0 || len < 0 || pos + len > this.size) {
      throw new ZipError(`${this.path}: ${quoted(what)}: bytes [${pos}, ${pos + len}) lie outside the ${this.size}-byte file (truncated?)`);
    }
    const buf = new Uint8Array(len); // fresh ArrayBuffer: aligned for typed views
    let done = 0;
    while (done < len) {
      const n = readSync(this.fd, buf, done, Math.min(len - done, 1 << 30), pos + done);
      if (n === 0) throw new ZipError(`${this.path}: ${quoted(what)}: file ended early (truncated?)`);
      done += n;
    }
    return buf;
  }

  /** Where an entry's data begins: after its local header (whose extra field may differ from the central one). */
  private dataOffset(e: ZipEntry): number {
    let off = this.dataOffsets.get(e.name);
    if (off !== undefined) return off;
    const h = this.readAt(e.headerOffset, 30, `local header of ${e.name}`);
    const v = new DataView(h.buffer);
    if (v.getUint32(0, true) !== SIG_LOCAL) throw new ZipError(`${this.path}: entry ${quoted(e.name)}: bad local header signature (corrupt file)`);
    off = e.headerOffset + 30 + v.getUint16(26, true) + v.getUint16(28, true);
    if (off + e.compressedSize > this.size) {
      throw new ZipError(`${this.path}: entry ${quoted(e.name)}: data [${off}, ${off + e.compressedSize}) runs past the end of the ${this.size}-byte file (truncated?)`);
    }
    this.dataOffsets.set(e.name, off);
    return off;
  }

  private readCentralDirectory(): void {
    const bad = (msg: string): never => {
      throw new ZipError(`${this.path}: ${msg}`);
    };
    // The end-of-central-directory record sits in the last 22..65557 bytes.
    const tailLen = Math.min(this.size, 22 + 0xffff);
    if (this.size < 22) bad(`file is ${this.size} bytes, too short for a zip archive (truncated?)`);
    const tailPos = this.size - tailLen;
    const tail = this.readAt(tailPos, tailLen, "end of central directory");
    const tv = new DataView(tail.buffer);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tv.getUint32(i, true) === SIG_EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new ZipTruncatedError(`${this.path}: no zip end-of-central-directory record (truncated file?)`);
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    // zip64: the locator sits right before the classic record.
    if (eocd >= 20 && tv.getUint32(eocd - 20, true) === SIG_EOCD64_LOC) {
      const rec64 = Number(tv.getBigUint64(eocd - 20 + 8, true));
      const r = this.readAt(rec64, 56, "zip64 end of central directory");
      const rv = new DataView(r.buffer);
      if (rv.getUint32(0, true) !== SIG_EOCD64) bad(`bad zip64 end-of-central-directory signature (corrupt file)`);
      count = Number(rv.getBigUint64(32, true));
      cdSize = Number(rv.getBigUint64(40, true));
      cdOffset = Number(rv.getBigUint64(48, true));
    }
    if (cdOffset + cdSize > this.size) {
      throw new ZipTruncatedError(`${this.path}: central directory [${cdOffset}, ${cdOffset + cdSize}) lies outside the ${this.size}-byte file (truncated?)`);
    }
    if (cdSize > MAX_DIRECTORY_BYTES) bad(`central directory of ${cdSize} bytes is larger than the ${MAX_DIRECTORY_BYTES} a checkpoint needs (corrupt or malicious file)`);
    const cd = this.readAt(cdOffset, cdSize, "central directory");
    const v = new DataView(cd.buffer);
    const dec = new TextDecoder("utf-8", { fatal: false });
    let p = 0;
    /** Each entry's local header and data, at least (its local extra field may add more). */
    const spans: [number, number, string][] = [];
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdSize || v.getUint32(p, true) !== SIG_CENTRAL) bad(`central directory entry ${i} is corrupt`);
      const method = v.getUint16(p + 10, true);
      const crc = v.getUint32(p + 16, true);
      let compressedSize = v.getUint32(p + 20, true);
      let size = v.getUint32(p + 24, true);
      const nameLen = v.getUint16(p + 28, true);
      const extraLen = v.getUint16(p + 30, true);
      const commentLen = v.getUint16(p + 32, true);
      let headerOffset = v.getUint32(p + 42, true);
      if (p + 46 + nameLen + extraLen + commentLen > cdSize) bad(`central directory entry ${i} runs past the directory`);
      const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // zip64 extra field (id 1): 64-bit values for the fields saturated at 0xffffffff, in this order.
      let q = p + 46 + nameLen;
      const extraEnd = q + extraLen;
      while (q + 4 <= extraEnd) {
        const id = v.getUint16(q, true);
        const len = v.getUint16(q + 2, true);
        if (q + 4 + len > extraEnd) bad(`entry ${quoted(name)}: an extra field of ${len} bytes runs past the entry's ${extraLen}-byte extra data`);
        if (id === 1) {
          let r = q + 4;
          const next = (): number => {
            if (r + 8 > q + 4 + len) bad(`entry ${quoted(name)}: zip64 extra field too short`);
            const x = Number(v.getBigUint64(r, true));
            r += 8;
            return x;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (headerOffset === 0xffffffff) headerOffset = next();
        }
        q += 4 + len;
      }
      for (const [what, x] of [["size", size], ["compressed size", compressedSize], ["header offset", headerOffset]] as const) {
        if (!Number.isSafeInteger(x)) bad(`entry ${quoted(name)}: ${what} ${x} is beyond any file`);
      }
      if (method !== 0 && method !== 8) bad(`entry ${quoted(name)}: unsupported compression method ${method}`);
      if (method === 0 && compressedSize !== size) bad(`entry ${quoted(name)}: stored entry with ${compressedSize} stored bytes but size ${size}`);
      if (headerOffset + 30 > this.size) bad(`entry ${quoted(name)}: local header offset ${headerOffset} is outside the file (truncated?)`);
      this.byName.set(name, { name, method, compressedSize, size, crc, headerOffset });
      spans.push([headerOffset, headerOffset + 30 + nameLen + compressedSize, name]);
      // Claims past deflate's ratio are refused when read; they earn no allowance.
      if (method === 8) this.inflateAllowance += 2 * Math.min(size, compressedSize * 1032 + 1024);
      p += 46 + nameLen + extraLen + commentLen;
    }
    // Entries sharing bytes are no zip a writer makes; they would let one
    // small deflate stream count as many storages.
    spans.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) {
      if (spans[i]![0] < spans[i - 1]![1]) bad(`entries ${quoted(spans[i - 1]![2])} and ${quoted(spans[i]![2])} overlap (corrupt or malicious file)`);
    }
  }
}
