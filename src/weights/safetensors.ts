// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}),
// then the raw tensor bytes (offsets relative to the end of the header).
// The header is untrusted: it is validated completely on open, and tensors
// are then read one at a time at their file offset, so a 700 MB file never
// sits in host memory as a whole.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { Tensor } from "../tensor/tensor.js";
import {
  bytesToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  isStDType,
  shapeNumel,
  ST_DTYPE_BYTES,
  type StDType,
} from "./dtype.js";
import { dims, excerpt, quoted, quotedJson } from "./quote.js";

export type { StDType } from "./dtype.js";

/** Which check refused a file (tests assert the check, not only the message). */
export type SafetensorsErrorCode =
  | "too-short" // under 8 bytes
  | "header-too-large" // header length over MAX_HEADER_BYTES
  | "header-past-end" // header length beyond the file
  | "bad-magic" // the header does not start with "{"
  | "bad-json" // not UTF-8 JSON, or not an object
  | "bad-entry" // a tensor entry or __metadata__ malformed (fields, dtype, shape, offsets)
  | "size-mismatch" // data_offsets span differs from what dtype and shape need
  | "data-past-end" // a tensor's bytes lie beyond the file
  | "overlap" // two tensors share bytes
  | "gap" // bytes between tensors belong to none
  | "trailing"; // bytes after the last tensor belong to none

export class SafetensorsError extends Error {
  override name = "SafetensorsError";
  /** Set for a file refused on open; undefined for read and write errors. */
  readonly code: SafetensorsErrorCode | undefined;
  constructor(message: string, code?: SafetensorsErrorCode) {
    super(message);
    this.code = code;
  }
}

/**
 * The largest header read. The format allows 100 MB, but a header is parsed
 * whole (JSON.parse), and a crafted one of 16 MiB (empty objects) takes ~10 s
 * and 660 MB to parse. 1 MiB takes ~0.3 s and ~80 MB, and is 16 times the
 * official SegVol header (475 tensors, 65 kB) and 5 times a training state
 * file's (which adds two optimizer moments per parameter).
 */
export const MAX_HEADER_BYTES = 1024 * 1024;

export interface TensorInfo {
  dtype: StDType;
  shape: number[];
}

interface Entry extends TensorInfo {
  begin: number;
  end: number;
}

export class SafetensorsFile {
  readonly metadata: Record<string, string>;
  private fd: number | null;
  private readonly entries: Map<string, Entry>;
  private readonly names: string[];
  private readonly dataStart: number;

  private constructor(
    readonly path: string,
    fd: number,
    entries: Map<string, Entry>,
    metadata: Record<string, string>,
    dataStart: number,
  ) {
    this.fd = fd;
    this.entries = entries;
    this.metadata = metadata;
    this.dataStart = dataStart;
    this.names = [...entries.keys()];
  }

  /** Opens and validates the file; tensor data is read later, on demand. */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new SafetensorsError(`safetensors ${path}: cannot open: ${(e as Error).message}`);
    }
    try {
      const { entries, metadata, dataStart } = parseHeader(path, fd);
      return new SafetensorsFile(path, fd, entries, metadata, dataStart);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Tensor names in file order. */
  keys(): string[] {
    return [...this.names];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: [...e.shape] };
  }

  /** The tensor's stored bytes (little-endian, its own dtype). */
  readRaw(name: string): Uint8Array {
    const e = this.entry(name);
    const len = e.end - e.begin;
    const out = new Uint8Array(len); // a fresh ArrayBuffer: offset 0, aligned for typed views
    const fd = this.openFd(name);
    let done = 0;
    while (done < len) {
      const n = readSync(fd, out, done, Math.min(len - done, 1 << 30), this.dataStart + e.begin + done);
      if (n === 0) throw new SafetensorsError(`safetensors ${this.path}: tensor ${quoted(name)}: file ended early (was it truncated after opening?)`);
      done += n;
    }
    return out;
  }

  /** The tensor as f32 values (f16/bf16 widened exactly, integers converted). */
  readF32(name: string): Float32Array {
    return bytesToF32(this.readRaw(name), this.entry(name).dtype);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError(`safetensors ${this.path}: no tensor named ${quoted(name)}`);
    return e;
  }

  private openFd(name: string): number {
    if (this.fd === null) throw new SafetensorsError(`safetensors ${this.path}: tensor ${quoted(name)} read after close()`);
    return this.fd;
  }
}

function readExact(fd: number, len: number, pos: number): Uint8Array {
  const buf = new Uint8Array(len);
  let done = 0;
  while (done < len) {
    const n = readSync(fd, buf, done, len - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done === len ? buf : buf.subarray(0, done);
}

function parseHeader(path: string, fd: number): { entries: Map<string, Entry>; metadata: Record<string, string>; dataStart: number } {
  const bad = (msg: string, code: SafetensorsErrorCode): never => {
    throw new SafetensorsError(`safetensors ${path}: ${msg}`, code);
  };
  const size = fstatSync(fd).size;
  if (size < 8) bad(`file is ${size} bytes, too short for the 8-byte header length (truncated or not a safetensors file)`, "too-short");
  const lenBytes = readExact(fd, 8, 0);
  const hlen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (hlen > MAX_HEADER_BYTES) bad(`header length ${hlen} exceeds the ${MAX_HEADER_BYTES} bytes a weights file needs (not a safetensors file, or a malicious one)`, "header-too-large");
  if (8 + hlen > size) bad(`header length ${hlen} runs past the end of the ${size}-byte file (truncated or not a safetensors file)`, "header-past-end");
  const headerBytes = readExact(fd, hlen, 8);
  if (headerBytes[0] !== 0x7b /* { */) bad(`header does not start with "{" (wrong magic: not a safetensors file)`, "bad-magic");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (e) {
    // V8's message quotes the text around the error: cut it like any quotation.
    bad(`header is not valid UTF-8 JSON: ${excerpt((e as Error).message)}`, "bad-json");
  }
  // JSON text that starts with "{" (checked above) parses to an object or not at all.
  const dataStart = 8 + hlen;
  const dataLen = size - dataStart;

  let metadata: Record<string, string> = {};
  const entries = new Map<string, Entry>();
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) bad(`__metadata__ is not an object`, "bad-entry");
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") bad(`__metadata__ field ${quoted(k)} is not a string`, "bad-entry");
      }
      metadata = { ...(raw as Record<string, string>) };
      continue;
    }
    const t = `tensor ${quoted(name)}`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) bad(`${t}: entry is not an object`, "bad-entry");
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!["dtype", "shape", "data_offsets"].includes(k)) bad(`${t}: unknown field ${quoted(k)}`, "bad-entry");
    if (!isStDType(r.dtype)) bad(`${t}: unsupported dtype ${quotedJson(r.dtype)}`, "bad-entry");
    const dtype = r.dtype as StDType;
    if (!Array.isArray(r.shape) || !r.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`${t}: shape ${quotedJson(r.shape)} is not a list of non-negative integers`, "bad-entry");
    }
    const shape = r.shape as number[];
    const off = r.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      bad(`${t}: data_offsets ${quotedJson(off)} is not [begin, end] with 0 <= begin <= end`, "bad-entry");
    }
    const [begin, end] = off as [number, number];
    const want = shapeNumel(shape) * ST_DTYPE_BYTES[dtype];
    if (end - begin !== want) {
      bad(`${t}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} shape ${dims(shape)} needs ${want}`, "size-mismatch");
    }
    if (end > dataLen) {
      bad(`${t}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes; truncated file?)`, "data-past-end");
    }
    entries.set(name, { dtype, shape, begin, end });
  }

  // Tensors must tile the data region exactly: no overlaps (aliasing) and no
  // gaps (hidden bytes), like the reference implementation demands.
  const sorted = [...entries.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  for (const [name, e] of sorted) {
    if (e.begin < cursor) bad(`tensor ${quoted(name)}: data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (ending at ${cursor})`, "overlap");
    if (e.begin > cursor) bad(`tensor ${quoted(name)}: data_offsets [${e.begin}, ${e.end}] leave a gap after byte ${cursor}`, "gap");
    cursor = e.end;
  }
  if (cursor !== dataLen) bad(`tensors cover ${cursor} bytes of data but the file holds ${dataLen} (trailing bytes)`, "trailing");
  return { entries, metadata, dataStart };
}

/** Host data for a tensor to write; a function is called only when the tensor is written (streaming). */
export type TensorData = Uint8Array | Float32Array | Uint16Array | Int32Array | BigInt64Array | Float64Array | Int8Array | Int16Array;

export interface TensorToWrite {
  name: string;
  dtype: StDType;
  shape: number[];
  /**
   * The values: bytes of `dtype`, or a typed array of that dtype. A
   * Float32Array given for F16/BF16 is rounded (nearest even). A function is
   * called once, when this tensor's turn to be written comes, so a writer
   * needs only one tensor in memory at a time.
   */
  data: TensorData | (() => TensorData);
}

/**
 * Writes a safetensors file atomically: to a temp file beside `path`, then
 * renamed over it, so readers never see a half-written file.
 */
export function writeSafetensors(path: string, tensors: Iterable<TensorToWrite>, metadata?: Record<string, string>): void {
  const list = [...tensors];
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const t of list) {
    if (t.name === "__metadata__" || t.name in header) throw new SafetensorsError(`writeSafetensors ${path}: duplicate or reserved tensor name "${t.name}"`);
    if (!isStDType(t.dtype)) throw new SafetensorsError(`writeSafetensors ${path}: tensor "${t.name}": unsupported dtype ${String(t.dtype)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`writeSafetensors ${path}: tensor "${t.name}": invalid shape [${t.shape.join(", ")}]`);
    }
    const bytes = shapeNumel(t.shape) * ST_DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), "utf8");
  // Pad with spaces so the data starts 8-byte aligned (as the Python writer does).
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));

  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fd = openSync(tmp, "w");
  let ok = false;
  try {
    writeAll(fd, len);
    writeAll(fd, json);
    for (const t of list) {
      const raw = typeof t.data === "function" ? t.data() : t.data;
      const bytes = encode(t, raw, path);
      writeAll(fd, bytes);
    }
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) unlinkSync(tmp);
  }
  renameSync(tmp, path);
}

function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.byteLength) done += writeSync(fd, buf, done, buf.byteLength - done);
}

/** The tensor's bytes in its dtype, checked against its shape. */
function encode(t: TensorToWrite, raw: TensorData, path: string): Uint8Array {
  let out: Uint8Array;
  if (raw instanceof Float32Array && (t.dtype === "F16" || t.dtype === "BF16")) {
    const h = t.dtype === "F16" ? f32ToF16Bits(raw) : f32ToBf16Bits(raw);
    out = new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
  } else {
    const expected: Partial<Record<StDType, string>> = {
      F32: "Float32Array",
      F64: "Float64Array",
      F16: "Uint16Array",
      BF16: "Uint16Array",
      I64: "BigInt64Array",
      I32: "Int32Array",
      I16: "Int16Array",
      I8: "Int8Array",
    };
    if (!(raw instanceof Uint8Array) && expected[t.dtype] !== raw.constructor.name) {
      throw new SafetensorsError(`writeSafetensors ${path}: tensor "${t.name}": ${t.dtype} data given as a ${raw.constructor.name}`);
    }
    out = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  }
  const want = shapeNumel(t.shape) * ST_DTYPE_BYTES[t.dtype];
  if (out.byteLength !== want) {
    throw new SafetensorsError(
      `writeSafetensors ${path}: tensor "${t.name}": ${out.byteLength} bytes of data for ${t.dtype} shape [${t.shape.join(", ")}] (needs ${want})`,
    );
  }
  return out;
}

/**
 * Uploads one tensor to the GPU as f32 (or as f16 when asked and the GPU
 * model runs in half precision). Only this tensor's bytes are read from disk.
 */
export function loadTensorToGpu(file: SafetensorsFile, name: string, dtype: "f32" | "f16" = "f32"): Tensor {
  const { dtype: stored, shape } = file.info(name);
  const raw = file.readRaw(name);
  if (dtype === "f16") {
    const bits =
      stored === "F16" ? new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2) : f32ToF16Bits(bytesToF32(raw, stored));
    return Tensor.from(bits, shape, "f16");
  }
  const values = stored === "F16" ? f16BitsToF32(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2)) : bytesToF32(raw, stored);
  return Tensor.from(values, shape, "f32");
}
