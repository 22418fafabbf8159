// Hand-built hostile inputs for the weight readers: pickles assembled opcode
// by opcode and zip archives laid out byte by byte, written independently of
// the readers (node:zlib deflates, Buffer writes the fields), so a test can
// say exactly which field lies.
import { crc32, deflateRawSync } from "node:zlib";

/** Pickle opcodes (pickletools' names) and an assembler for them. */
export const P = {
  proto: (v: number): Buffer => Buffer.from([0x80, v]),
  global: (module: string, name: string): Buffer => Buffer.from(`c${module}\n${name}\n`, "latin1"),
  /** STACK_GLOBAL (protocol 4): module and name pushed as strings first. */
  stackGlobal: (module: string, name: string): Buffer => Buffer.concat([P.str(module), P.str(name), Buffer.from([0x93])]),
  str: (s: string): Buffer => {
    const b = Buffer.from(s, "utf8");
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return Buffer.concat([Buffer.from([0x58]), len, b]); // BINUNICODE
  },
  int: (n: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = 0x4a; // BININT
    b.writeInt32LE(n, 1);
    return b;
  },
  put: (i: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = 0x72; // LONG_BINPUT
    b.writeUInt32LE(i, 1);
    return b;
  },
  get: (i: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = 0x6a; // LONG_BINGET
    b.writeUInt32LE(i, 1);
    return b;
  },
  op: (...codes: number[]): Buffer => Buffer.from(codes),
  /** A text-argument opcode (protocol 0: INT, LONG, FLOAT, PUT, GET): the opcode, the text, a newline. */
  text: (op: number, s: string): Buffer => Buffer.concat([Buffer.from([op]), Buffer.from(`${s}\n`, "latin1")]),
  /** A length-prefixed opcode: the opcode, the payload's length in `width` little-endian bytes, the payload. */
  sized: (op: number, width: 1 | 4 | 8, payload: Uint8Array, length: number | bigint = payload.length): Buffer => {
    const len = Buffer.alloc(width);
    if (width === 1) len.writeUInt8(Number(length));
    else if (width === 4) len.writeUInt32LE(Number(length));
    else len.writeBigUInt64LE(BigInt(length));
    return Buffer.concat([Buffer.from([op]), len, payload]);
  },
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  NONE: 0x4e,
  FALSE: 0x89,
  TUPLE: 0x74,
  EMPTY_TUPLE: 0x29,
  EMPTY_DICT: 0x7d,
  LIST: 0x6c,
  REDUCE: 0x52,
  SETITEMS: 0x75,
  BINPERSID: 0x51,
};

/** One tensor of a crafted state dict: a strided view of storage `key`. */
export interface CraftTensor {
  name: string;
  storage: string;
  storageType?: string; // default FloatStorage
  numel: number;
  offset?: number;
  shape: number[];
  stride?: number[];
}

function contiguousStride(shape: number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i]!;
  }
  return out;
}

/** `_rebuild_tensor_v2(persistent storage id, offset, size, stride, False, OrderedDict())` for one tensor. */
export function tensorPickle(t: CraftTensor): Buffer {
  const tuple = (xs: number[]): Buffer => Buffer.concat([P.op(P.MARK), ...xs.map(P.int), P.op(P.TUPLE)]);
  return Buffer.concat([
    P.global("torch._utils", "_rebuild_tensor_v2"),
    P.op(P.MARK),
    P.op(P.MARK),
    P.str("storage"),
    P.global("torch", t.storageType ?? "FloatStorage"),
    P.str(t.storage),
    P.str("cpu"),
    P.int(t.numel),
    P.op(P.TUPLE, P.BINPERSID),
    P.int(t.offset ?? 0),
    tuple(t.shape),
    tuple(t.stride ?? contiguousStride(t.shape)),
    P.op(P.FALSE),
    P.global("collections", "OrderedDict"),
    P.op(P.EMPTY_TUPLE, P.REDUCE),
    P.op(P.TUPLE, P.REDUCE),
  ]);
}

/** A torch state-dict pickle: `OrderedDict(name → tensor, ...)`. */
export function stateDictPickle(tensors: CraftTensor[]): Buffer {
  return Buffer.concat([
    P.proto(2),
    P.global("collections", "OrderedDict"),
    P.op(P.EMPTY_TUPLE, P.REDUCE, P.MARK),
    ...tensors.flatMap((t) => [P.str(t.name), tensorPickle(t)]),
    P.op(P.SETITEMS, P.STOP),
  ]);
}

export interface ZipEntrySpec {
  name: string;
  data: Uint8Array;
  /** Deflate the data (method 8); default stored. */
  deflate?: boolean;
  /** Bytes to store as the entry's data instead of `data` (or its deflated form). */
  raw?: Uint8Array;
  /** Overrides of what the headers claim. */
  size?: number;
  crc?: number;
  /** The local header's extra-field length (the extra bytes are zeros). */
  localExtraLen?: number;
  /** The central directory entry's extra field (e.g. a zip64 record). */
  centralExtra?: Buffer;
  /** As torch.save writes: sizes left out of the local header, in a data descriptor after the data. */
  descriptor?: boolean;
  /** The central directory entry's comment. */
  comment?: Buffer;
  /** Overrides of the central directory entry's fields: method, and the local header's offset. */
  centralMethod?: number;
  headerOffset?: number;
}

export interface ZipOptions {
  /** List the entries in the central directory last first. */
  reverseCentral?: boolean;
  /** End with a zip64 end-of-central-directory record and locator; the classic record's fields then say 0. */
  zip64?: boolean;
}

export interface ZipLayout {
  /** The whole archive. */
  bytes: Buffer;
  /** Offset of the central directory (where a cut loses the directory). */
  directoryOffset: number;
  /** Offsets of each entry's local header. */
  localOffsets: number[];
}

/** A zip archive (no data descriptors, no zip64), laid out by hand. */
export function buildZip(entries: ZipEntrySpec[], opts: ZipOptions = {}): ZipLayout {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  const localOffsets: number[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, "utf8");
    const stored = e.raw ?? (e.deflate ? deflateRawSync(e.data) : e.data);
    const size = e.size ?? e.data.length;
    const crc = e.crc ?? crc32(e.data) >>> 0;
    const method = e.deflate ? 8 : 0;
    const extraLen = e.localExtraLen ?? 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.descriptor ? 8 : 0, 6);
    local.writeUInt16LE(method, 8);
    if (!e.descriptor) {
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(stored.length, 18);
      local.writeUInt32LE(size, 22);
    }
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extraLen, 28);
    localOffsets.push(offset);
    const descriptor = Buffer.alloc(e.descriptor ? 16 : 0);
    if (e.descriptor) {
      descriptor.writeUInt32LE(0x08074b50, 0);
      descriptor.writeUInt32LE(crc, 4);
      descriptor.writeUInt32LE(stored.length, 8);
      descriptor.writeUInt32LE(size, 12);
    }
    const block = Buffer.concat([local, name, Buffer.alloc(extraLen), stored, descriptor]);
    parts.push(block);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(e.centralMethod ?? method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(stored.length, 20);
    c.writeUInt32LE(size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(e.centralExtra?.length ?? 0, 30);
    c.writeUInt16LE(e.comment?.length ?? 0, 32);
    c.writeUInt32LE(e.headerOffset ?? offset, 42);
    central.push(Buffer.concat([c, name, e.centralExtra ?? Buffer.alloc(0), e.comment ?? Buffer.alloc(0)]));
    offset += block.length;
  }
  if (opts.reverseCentral) central.reverse();
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  if (!opts.zip64) {
    eocd.writeUInt16LE(entries.length, 8);
    eocd.writeUInt16LE(entries.length, 10);
    eocd.writeUInt32LE(cd.length, 12);
    eocd.writeUInt32LE(offset, 16);
    return { bytes: Buffer.concat([...parts, cd, eocd]), directoryOffset: offset, localOffsets };
  }
  const rec = Buffer.alloc(56);
  rec.writeUInt32LE(0x06064b50, 0);
  rec.writeBigUInt64LE(44n, 4);
  rec.writeBigUInt64LE(BigInt(entries.length), 24);
  rec.writeBigUInt64LE(BigInt(entries.length), 32);
  rec.writeBigUInt64LE(BigInt(cd.length), 40);
  rec.writeBigUInt64LE(BigInt(offset), 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(BigInt(offset + cd.length), 8);
  loc.writeUInt32LE(1, 16);
  return { bytes: Buffer.concat([...parts, cd, rec, loc, eocd]), directoryOffset: offset, localOffsets };
}

/** Little-endian f32 bytes of `values`. */
export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}
