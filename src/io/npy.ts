// NumPy .npy files (format versions 1.0, 2.0, 3.0): the exchange format for
// single windows and logits (`segvol forward`). Reads little-endian C-order
// arrays of the common numeric dtypes; writes little-endian C order.
// Fortran order and big-endian data are refused rather than silently
// transposed or swapped: every producer we expect (NumPy on x86/ARM,
// PyTorch's .numpy()) writes little-endian C order.
import { closeSync, fstatSync, openSync } from "node:fs";
import { writeFileAtomic } from "./atomic.js";
import { readAt } from "./read_at.js";
import { dims, excerpt } from "../weights/quote.js";

export class NpyError extends Error {
  override name = "NpyError";
}

export type NpyDtype = "f32" | "f64" | "i8" | "u8" | "i16" | "u16" | "i32" | "u32" | "i64" | "bool";
export type NpyData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array;

export interface NpyArray<D extends NpyData = NpyData> {
  shape: number[];
  dtype: NpyDtype;
  data: D;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

// descr without its byte-order character → our dtype and item size.
const DESCR: Record<string, [NpyDtype, number]> = {
  f4: ["f32", 4],
  f8: ["f64", 8],
  i1: ["i8", 1],
  u1: ["u8", 1],
  i2: ["i16", 2],
  u2: ["u16", 2],
  i4: ["i32", 4],
  u4: ["u32", 4],
  i8: ["i64", 8],
  b1: ["bool", 1],
};

interface Header {
  dtype: NpyDtype;
  itemSize: number;
  shape: number[];
  dataOffset: number;
}

// NumPy writes headers of a few hundred bytes (and itself refuses to load
// ones over 10000 bytes by default); more than this is not a header we read.
const MAX_HEADER_BYTES = 65536;
/** The most dimensions a shape may have (NumPy's NPY_MAXDIMS). */
const MAX_DIMS = 64;

/** Preamble length: magic, version, header length (2 bytes in 1.0, 4 in 2.0 / 3.0). */
function preambleOf(major: number): number {
  return major === 1 ? 10 : 12;
}

/**
 * Parses the magic, version and the Python-dict header at the start of an
 * .npy file of `size` bytes; `head` holds at least the preamble and header,
 * or all of a shorter file.
 */
function parseHeader(head: Uint8Array, size: number, path: string): Header {
  for (let i = 0; i < MAGIC.length; i++) {
    if (head[i] !== MAGIC[i]) throw new NpyError(`readNpy: ${path} is not an .npy file (bad magic)`);
  }
  if (head.byteLength < 8) throw new NpyError(`readNpy: ${path} is truncated inside its preamble (${size} bytes)`);
  const major = head[6]!;
  if (major !== 1 && major !== 2 && major !== 3) {
    throw new NpyError(`readNpy: ${path}: unsupported .npy format version ${major}.${head[7]}`);
  }
  const start = preambleOf(major);
  if (head.byteLength < start) {
    throw new NpyError(`readNpy: ${path} is truncated inside its preamble (${size} bytes; version ${major}.${head[7]} needs ${start})`);
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const len = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (len > MAX_HEADER_BYTES) {
    throw new NpyError(`readNpy: ${path}: header length ${len} is over the ${MAX_HEADER_BYTES} bytes this reader accepts`);
  }
  if (size < start + len) {
    throw new NpyError(`readNpy: ${path} is truncated inside its header (it declares ${len} bytes, the file has ${size - start} after the preamble)`);
  }
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(head.subarray(start, start + len));
  const descr = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(text);
  if (!descr) {
    const structured = /['"]descr['"]\s*:\s*\[/.test(text);
    throw new NpyError(
      `readNpy: ${path}: ${structured ? "structured (record) dtypes are not supported" : `header has no dtype: ${excerpt(text.trim())}`}`,
    );
  }
  const code = descr[2]!;
  const order = code[0]!;
  const kind = DESCR[code.slice(1)];
  if (!kind || !"<>|=".includes(order)) {
    throw new NpyError(`readNpy: ${path}: dtype '${excerpt(code)}' is not supported (f4, f8, i1, u1, i2, u2, i4, u4, i8, b1)`);
  }
  if (order === ">" && kind[1] > 1) {
    throw new NpyError(`readNpy: ${path}: big-endian data ('${code}') is not supported; save it little-endian (a.astype('<${code.slice(1)}'))`);
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  if (!fortran) throw new NpyError(`readNpy: ${path}: header has no fortran_order: ${excerpt(text.trim())}`);
  const shapeM = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!shapeM) throw new NpyError(`readNpy: ${path}: header has no shape: ${excerpt(text.trim())}`);
  const shape = shapeM[1]!
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s.replace(/L$/, ""));
      if (!/^\d+L?$/.test(s) || !Number.isSafeInteger(n)) throw new NpyError(`readNpy: ${path}: bad shape (${excerpt(shapeM[1]!)})`);
      return n;
    });
  // NumPy's own limit (NPY_MAXDIMS); more is a corrupt or hostile header.
  if (shape.length > MAX_DIMS) throw new NpyError(`readNpy: ${path}: shape has ${shape.length} dimensions, more than NumPy's ${MAX_DIMS}`);
  if (fortran[1] === "True" && shape.filter((d) => d > 1).length > 1) {
    throw new NpyError(
      `readNpy: ${path}: Fortran-order arrays are not supported (shape ${dims(shape)}); save with np.ascontiguousarray`,
    );
  }
  return { dtype: kind[0], itemSize: kind[1], shape, dataOffset: start + len };
}

function typed(dtype: NpyDtype, buf: ArrayBuffer): NpyData {
  switch (dtype) {
    case "f32": return new Float32Array(buf);
    case "f64": return new Float64Array(buf);
    case "i8": return new Int8Array(buf);
    case "u8": case "bool": return new Uint8Array(buf);
    case "i16": return new Int16Array(buf);
    case "u16": return new Uint16Array(buf);
    case "i32": return new Int32Array(buf);
    case "u32": return new Uint32Array(buf);
    case "i64": return new BigInt64Array(buf);
  }
}

/** Reads an .npy file with its own dtype (bool as 0/1 bytes, int64 as BigInt64Array). */
export function readNpy(path: string): NpyArray {
  const fail = (e: unknown) => new NpyError(`readNpy: cannot read ${path}: ${(e as Error).message}`);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new NpyError(`readNpy: cannot open ${path}: ${(e as Error).message}`);
  }
  try {
    let size: number;
    let head: Uint8Array;
    try {
      size = fstatSync(fd).size;
      // Preamble and header in one read (the header length is capped), then
      // exactly the data into a fresh, aligned buffer.
      head = new Uint8Array(Math.min(size, preambleOf(2) + MAX_HEADER_BYTES));
      head = head.subarray(0, readAt(fd, head, 0));
    } catch (e) {
      throw fail(e);
    }
    const h = parseHeader(head, size, path);
    // The file's size bounds what we allocate. A huge shape's product is
    // inexact or Infinity, but still above any file size; a zero dimension
    // makes the array empty however large the others (Infinity × 0 is NaN).
    const available = size - h.dataOffset;
    const count = h.shape.includes(0) ? 0 : h.shape.reduce((a, b) => a * b, 1);
    const bytes = count * h.itemSize;
    if (bytes > available) {
      throw new NpyError(
        `readNpy: ${path} is truncated: shape ${dims(h.shape)} ${h.dtype} needs ${bytes} data bytes, file has ${available}`,
      );
    }
    const data = new Uint8Array(bytes);
    let got: number;
    try {
      got = readAt(fd, data, h.dataOffset);
    } catch (e) {
      throw fail(e);
    }
    if (got < bytes) throw new NpyError(`readNpy: ${path} is truncated: got ${got} of ${bytes} data bytes (the file shrank while read)`);
    return { shape: h.shape, dtype: h.dtype, data: typed(h.dtype, data.buffer) };
  } finally {
    closeSync(fd);
  }
}

/** Reads an .npy file of any supported numeric dtype as float32 (exact for f32). */
export function readNpyF32(path: string): NpyArray<Float32Array> {
  const a = readNpy(path);
  if (a.data instanceof Float32Array) return a as NpyArray<Float32Array>;
  const out = new Float32Array(a.data.length);
  if (a.data instanceof BigInt64Array) {
    for (let i = 0; i < out.length; i++) out[i] = Number(a.data[i]!);
  } else {
    out.set(a.data);
  }
  return { shape: a.shape, dtype: "f32", data: out };
}

type WritableData = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;

function descrOf(data: WritableData): string {
  if (data instanceof Float32Array) return "<f4";
  if (data instanceof Float64Array) return "<f8";
  if (data instanceof Int8Array) return "|i1";
  if (data instanceof Uint8Array) return "|u1";
  if (data instanceof Int16Array) return "<i2";
  if (data instanceof Uint16Array) return "<u2";
  if (data instanceof Int32Array) return "<i4";
  return "<u4";
}

/** The complete .npy bytes (header + data) for `data` of `shape`, C order. */
export function encodeNpy(data: WritableData, shape: readonly number[]): Uint8Array[] {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new NpyError(`writeNpy: bad shape [${shape.join(", ")}]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new NpyError(`writeNpy: shape [${shape.join(", ")}] holds ${count} values, data has ${data.length}`);
  }
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let dict = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${tuple}, }`;
  // Pad with spaces + "\n" so the data starts on a 64-byte boundary (NumPy's rule).
  let pre = 10;
  let total = pre + dict.length + 1;
  if (total + ((64 - (total % 64)) % 64) - pre > 0xffff) pre = 12; // version 2.0
  total = pre + dict.length + 1;
  dict += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const head = new Uint8Array(pre + dict.length);
  head.set(MAGIC, 0);
  head[6] = pre === 10 ? 1 : 2;
  head[7] = 0;
  const view = new DataView(head.buffer);
  if (pre === 10) view.setUint16(8, dict.length, true);
  else view.setUint32(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) head[pre + i] = dict.charCodeAt(i);
  // Typed arrays are little-endian on every platform Node supports.
  return [head, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)];
}

/** Writes `data` (float32 by default; other typed arrays keep their dtype) atomically. */
export function writeNpy(
  path: string,
  data: WritableData,
  shape: readonly number[],
  opts: { inputPath?: string | readonly string[] } = {},
): void {
  writeFileAtomic(path, encodeNpy(data, shape), { inputPath: opts.inputPath, what: "writeNpy" });
}
