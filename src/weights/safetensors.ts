// safetensors files in Node: opened by path (the header validated, tensors
// read at their file offset on demand) and written atomically. The format
// and its checks are safetensors_reader.ts's, shared with the browser.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "../node/host.node.js";
import { f32ToBf16Bits, f32ToF16Bits, isStDType, shapeNumel, ST_DTYPE_BYTES, type StDType } from "./dtype.js";
import { SafetensorsError, SafetensorsReader, type ByteSource } from "./safetensors_reader.js";

export {
  SafetensorsError,
  SafetensorsReader,
  MAX_HEADER_BYTES,
  loadTensorToGpu,
  memorySource,
  type ByteSource,
  type SafetensorsErrorCode,
  type StDType,
  type TensorInfo,
} from "./safetensors_reader.js";

/** A safetensors file on disk (Node). */
export class SafetensorsFile extends SafetensorsReader {
  /** Opens and validates the file; tensor data is read later, on demand. */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new SafetensorsError(`safetensors ${path}: cannot open: ${(e as Error).message}`);
    }
    return new SafetensorsFile(path, fdSource(fd));
  }
}

/** Positioned reads of an open file; the source owns the descriptor. */
function fdSource(fd: number): ByteSource {
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return { size, read: (into, position) => readAt(fd, into, position), close: () => closeSync(fd) };
}

/** Fills `into` from `position` as far as the file goes; returns the bytes read. */
function readAt(fd: number, into: Uint8Array, position: number): number {
  let got = 0;
  for (let n = -1; got < into.byteLength && n !== 0; got += n) n = readSync(fd, into, got, into.byteLength - got, position + got);
  return got;
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

