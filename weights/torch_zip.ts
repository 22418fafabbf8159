// A minimal zip reader for PyTorch checkpoints (`torch.save` since 1.6 writes
// an uncompressed zip: `<dir>/data.pkl`, `<dir>/data/<key>` storages, ...).
// Only what such files use: the central directory (with zip64 extensions),
// stored and deflated entries. Entry bytes are read on demand at their file
// offset, so a large checkpoint is never loaded as a whole. Every offset is
// checked against the file size before use: the file is untrusted.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { crc32, inflateRawSync } from "node:zlib";

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

export class ZipArchive {
  private fd: number | null;
  readonly size: number;
  private readonly byName = new Map<string, ZipEntry>();
  private readonly dataOffsets = new Map<string, number>();

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
    this.size = fstatSync(fd).size;
  }

  static open(path: string): ZipArchive {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new ZipError(`${path}: cannot open: ${(e as Error).message}`);
    }
    const z = new ZipArchive(path, fd);
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
    if (!e) throw new ZipError(`${this.path}: no entry "${name}" in the archive`);
    return e;
  }

  /** The whole (decompressed) entry, CRC-checked. */
  read(name: string): Uint8Array {
    const e = this.entry(name);
    const raw = this.readAt(this.dataOffset(e), e.compressedSize, name);
    let out: Uint8Array;
    if (e.method === 0) {
      out = raw;
    } else {
      // Deflate cannot expand more than ~1032:1; a larger claim is a zip bomb or corruption.
      if (e.size > e.compressedSize * 1032 + 1024) {
        throw new ZipError(`${this.path}: entry "${name}": claims ${e.size} bytes from ${e.compressedSize} compressed (corrupt or malicious)`);
      }
      try {
        out = new Uint8Array(inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) }));
      } catch (err) {
        throw new ZipError(`${this.path}: entry "${name}": corrupt deflate data: ${(err as Error).message}`);
      }
      if (out.byteLength !== e.size) {
        throw new ZipError(`${this.path}: entry "${name}": inflated to ${out.byteLength} bytes, the directory says ${e.size}`);
      }
    }
    if (crc32(out) >>> 0 !== e.crc) throw new ZipError(`${this.path}: entry "${name}": CRC mismatch (corrupt file)`);
    return out;
  }

  /**
   * Bytes [start, start+len) of an entry's contents. Stored entries are read
   * directly at that offset (CRC-checked when the range is the whole entry);
   * deflated ones are inflated whole first.
   */
  readRange(name: string, start: number, len: number): Uint8Array {
    const e = this.entry(name);
    if (start < 0 || len < 0 || start + len > e.size) {
      throw new ZipError(`${this.path}: entry "${name}": range [${start}, ${start + len}) is outside its ${e.size} bytes`);
    }
    if (e.method !== 0) return this.read(name).slice(start, start + len);
    const out = this.readAt(this.dataOffset(e) + start, len, name);
    // A read of the whole entry (the usual one-tensor-per-storage case) is CRC-checked too.
    if (start === 0 && len === e.size && crc32(out) >>> 0 !== e.crc) throw new ZipError(`${this.path}: entry "${name}": CRC mismatch (corrupt file)`);
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private readAt(pos: number, len: number, what: string): Uint8Array {
    if (this.fd === null) throw new ZipError(`${this.path}: read of "${what}" after close()`);
    if (pos < 0 || pos + len > this.size) {
      throw new ZipError(`${this.path}: "${what}": bytes [${pos}, ${pos + len}) lie outside the ${this.size}-byte file (truncated?)`);
    }
    const buf = new Uint8Array(len); // fresh ArrayBuffer: aligned for typed views
    let done = 0;
    while (done < len) {
      const n = readSync(this.fd, buf, done, Math.min(len - done, 1 << 30), pos + done);
      if (n === 0) throw new ZipError(`${this.path}: "${what}": file ended early (truncated?)`);
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
    if (v.getUint32(0, true) !== SIG_LOCAL) throw new ZipError(`${this.path}: entry "${e.name}": bad local header signature (corrupt file)`);
    off = e.headerOffset + 30 + v.getUint16(26, true) + v.getUint16(28, true);
    if (off + e.compressedSize > this.size) {
      throw new ZipError(`${this.path}: entry "${e.name}": data [${off}, ${off + e.compressedSize}) runs past the end of the ${this.size}-byte file (truncated?)`);
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
    const cd = this.readAt(cdOffset, cdSize, "central directory");
    const v = new DataView(cd.buffer);
    const dec = new TextDecoder("utf-8", { fatal: false });
    let p = 0;
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
        if (id === 1) {
          let r = q + 4;
          const next = (): number => {
            if (r + 8 > q + 4 + len) bad(`entry "${name}": zip64 extra field too short`);
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
      if (method !== 0 && method !== 8) bad(`entry "${name}": unsupported compression method ${method}`);
      if (method === 0 && compressedSize !== size) bad(`entry "${name}": stored entry with ${compressedSize} stored bytes but size ${size}`);
      if (headerOffset + 30 > this.size) bad(`entry "${name}": local header offset ${headerOffset} is outside the file (truncated?)`);
      this.byName.set(name, { name, method, compressedSize, size, crc, headerOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
  }
}
