// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}),
// then the raw tensor bytes (offsets relative to the end of the header).
// The header is untrusted: it is validated completely on open, and tensors
// are then read one at a time at their offset, so a 700 MB file never sits in
// host memory as a whole when it is a file (safetensors.ts opens paths in
// Node). This reader works on any byte source: a file descriptor in Node,
// bytes in memory in a page (a fetched or picked model.safetensors).
import { Tensor } from "../tensor/tensor.js";
import {
  bytesToF32,
  f16BitsToF32,
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

/** Where a safetensors file's bytes come from: positioned, synchronous reads. */
export interface ByteSource {
  readonly size: number;
  /** Fills `into` from `position` as far as the source goes; returns the bytes read. */
  read(into: Uint8Array, position: number): number;
  close(): void;
}

/** A source over bytes in memory (a fetched or picked file). */
export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    read(into, position) {
      const part = bytes.subarray(Math.min(position, bytes.byteLength), Math.min(position + into.byteLength, bytes.byteLength));
      into.set(part);
      return part.byteLength;
    },
    close() {},
  };
}

/** A validated safetensors file over any byte source; `SafetensorsFile.open` (safetensors.ts) opens a path in Node. */
export class SafetensorsReader {
  readonly metadata: Record<string, string>;
  private source: ByteSource | null;
  private readonly entries: Map<string, Entry>;
  private readonly names: string[];
  private readonly dataStart: number;

  /** Validates the header of `source` (named `path` in messages); closes the source if it is refused. */
  protected constructor(readonly path: string, source: ByteSource) {
    try {
      const { entries, metadata, dataStart } = parseHeader(path, source);
      this.entries = entries;
      this.metadata = metadata;
      this.dataStart = dataStart;
    } catch (e) {
      source.close();
      throw e;
    }
    this.source = source;
    this.names = [...this.entries.keys()];
  }

  /** A safetensors file held in memory, validated as a file on disk is; `name` names it in messages. */
  static fromBytes(bytes: Uint8Array, name = "<bytes>"): SafetensorsReader {
    return new SafetensorsReader(name, memorySource(bytes));
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
    const source = this.openSource(name);
    for (let done = 0; done < len; ) {
      const n = source.read(out.subarray(done, Math.min(len, done + (1 << 30))), this.dataStart + e.begin + done);
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
    this.source?.close();
    this.source = null;
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError(`safetensors ${this.path}: no tensor named ${quoted(name)}`);
    return e;
  }

  private openSource(name: string): ByteSource {
    if (this.source === null) throw new SafetensorsError(`safetensors ${this.path}: tensor ${quoted(name)} read after close()`);
    return this.source;
  }
}

function readExact(source: ByteSource, len: number, pos: number): Uint8Array {
  const buf = new Uint8Array(len);
  let done = 0;
  while (done < len) {
    const n = source.read(buf.subarray(done), pos + done);
    if (n === 0) break;
    done += n;
  }
  return done === len ? buf : buf.subarray(0, done);
}

function parseHeader(path: string, source: ByteSource): { entries: Map<string, Entry>; metadata: Record<string, string>; dataStart: number } {
  const bad = (msg: string, code: SafetensorsErrorCode): never => {
    throw new SafetensorsError(`safetensors ${path}: ${msg}`, code);
  };
  const size = source.size;
  if (size < 8) bad(`file is ${size} bytes, too short for the 8-byte header length (truncated or not a safetensors file)`, "too-short");
  const lenBytes = readExact(source, 8, 0);
  const hlen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (hlen > MAX_HEADER_BYTES) bad(`header length ${hlen} exceeds the ${MAX_HEADER_BYTES} bytes a weights file needs (not a safetensors file, or a malicious one)`, "header-too-large");
  if (8 + hlen > size) bad(`header length ${hlen} runs past the end of the ${size}-byte file (truncated or not a safetensors file)`, "header-past-end");
  const headerBytes = readExact(source, hlen, 8);
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

/**
 * Uploads one tensor to the GPU as f32 (or as f16 when asked and the GPU
 * model runs in half precision). Only this tensor's bytes are read from disk.
 */
export function loadTensorToGpu(file: SafetensorsReader, name: string, dtype: "f32" | "f16" = "f32"): Tensor {
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

/** A float tensor's values on the host as f32 (an f16 tensor widened exactly). */
export async function readAsFloat32(t: Tensor): Promise<Float32Array> {
  return t.dtype === "f16" ? f16BitsToF32((await t.read()) as Uint16Array) : t.readFloat32();
}
