// NIfTI-1 and NIfTI-2 volumes (.nii, .nii.gz): read CT volumes, write masks,
// label maps and logits in the input's geometry.
//
// Why our own reader rather than `nifti-reader-js`: that library parses
// headers (NIfTI-1 and -2) but cannot write, so we would need our own header
// serialiser anyway; writing a mask that overlays the input exactly means
// round-tripping every geometry field (qform/sform, quaternion, qfac,
// pixdim, xyzt_units, dim_info, slice fields) of either version, which is
// simplest with one field table used for both directions. Its data access
// would still leave datatype conversion, slope/intercept, byte swapping and
// the "one 3-D volume" checks to us. The whole format is two fixed-layout
// structs; ~600 lines with no dependency, cross-checked against files written
// by nibabel (tools/fixtures/gen_nifti.py), cost less than adapting a library.
//
// In memory a volume is an array in the file's order, i fastest:
// index = i + ni * (j + nj * k). Scaling (scl_slope/scl_inter) is applied on
// read; extensions are skipped on read and not written.
//
// A file can declare any size, and gzip can expand ~1000:1, so reading is
// header first: the header is inflated from a bounded prefix of the file and
// checked (dims, datatype, the voxel limit) before anything of the declared
// size is allocated, and the whole stream is then inflated into one buffer of
// exactly the declared size, never beyond.
import { MAX_BUFFER_LENGTH, closeSync, fstatSync, gunzipSync, gzipSync, openSync, readFileSync, zlibConstants } from "../node/host.node.js";
import { assertNotInput, writeFileAtomic } from "./atomic.js";
import { readAt } from "./read_at.js";

export class NiftiError extends Error {
  override name = "NiftiError";
}

export type NiftiDatatype = "uint8" | "int8" | "int16" | "uint16" | "int32" | "float32" | "float64";

/**
 * The header as stored, fields named as in nifti1.h / nifti2.h (hence
 * snake_case). Kept whole so that written outputs carry the input's geometry.
 */
export interface NiftiHeader {
  version: 1 | 2;
  /** Byte order of the source file (outputs are always little-endian). */
  littleEndian: boolean;
  /** The file this header was read from (never overwritten by writeNifti). */
  sourcePath: string | null;
  dim: number[];
  pixdim: number[];
  datatype: number;
  bitpix: number;
  vox_offset: number;
  scl_slope: number;
  scl_inter: number;
  cal_max: number;
  cal_min: number;
  slice_start: number;
  slice_end: number;
  slice_code: number;
  slice_duration: number;
  toffset: number;
  xyzt_units: number;
  dim_info: number;
  intent_code: number;
  intent_p1: number;
  intent_p2: number;
  intent_p3: number;
  intent_name: string;
  descrip: string;
  aux_file: string;
  qform_code: number;
  sform_code: number;
  quatern_b: number;
  quatern_c: number;
  quatern_d: number;
  qoffset_x: number;
  qoffset_y: number;
  qoffset_z: number;
  srow_x: number[];
  srow_y: number[];
  srow_z: number[];
  // NIfTI-1 only (Analyze 7.5 leftovers), kept for a faithful rewrite.
  data_type: string;
  db_name: string;
  extents: number;
  session_error: number;
  regular: number;
  glmax: number;
  glmin: number;
}

/**
 * Voxel values in memory: float32, or, for an integer volume (no scaling, or
 * an integer slope and intercept) whose values all fit, its stored type
 * (uint8, int8, int16, uint16) or int16 (e.g. uint16 CT with scl_inter
 * −1024), at a half or a quarter of float32's memory. Every value of these
 * types is exact in float32: converting gives exactly the float32 volume.
 */
export type VoxelArray = Float32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

/**
 * The largest volume readNifti accepts unless told otherwise: 512 × 512 × 2048
 * voxels (2^29). That is a CT at full in-plane resolution over 2048 slices
 * (2 m of body at 1 mm, 1 m at 0.5 mm), beyond any clinical scan we expect:
 * 1 GiB as int16, and several GB once segmented. A larger header is far more
 * likely a corrupt or hostile file (a 1 MB .nii.gz can declare 1024³ voxels)
 * than a scan, so it is refused before anything is allocated. Raise it with
 * `ReadNiftiOptions.maxVoxels` (CLI: `segment --max-voxels`).
 */
export const DEFAULT_MAX_VOXELS = 512 * 512 * 2048;

export interface ReadNiftiOptions {
  /** Refuse volumes of more voxels than this (default DEFAULT_MAX_VOXELS). */
  maxVoxels?: number;
}

// vox_offset may leave room for extensions between the header and the voxels;
// real ones (DICOM headers, JSON sidecars) are kilobytes.
const MAX_EXTENSION_BYTES = 64 * 2 ** 20;
// Decompressed bytes tolerated after the declared voxels (padding some writers add).
const TRAILING_SLACK = 2 ** 20;
// The gzip prefixes tried for the header: a 540-byte header compresses into
// well under 1 KiB, and each prefix inflates to at most ~1032× its size.
const HEADER_PREFIXES = [1024, 16384, 65536];

export interface NiftiVolume {
  /** Voxels along i, j, k. */
  dims: [number, number, number];
  /** Voxel size along i, j, k (|pixdim[1..3]|, zero read as 1, as nibabel). */
  spacing: [number, number, number];
  /** Voxel (i, j, k, 1) → world (x, y, z, 1), 4×4, as nibabel's `img.affine`. */
  affine: number[][];
  /** Datatype stored in the file. */
  datatype: NiftiDatatype;
  /** Scaled values, i fastest: float32, or an integer type that holds them exactly (see VoxelArray). */
  data: VoxelArray;
  header: NiftiHeader;
}

// datatype code → name and bytes per voxel.
const DATATYPES: Record<number, [NiftiDatatype, number]> = {
  2: ["uint8", 1],
  256: ["int8", 1],
  4: ["int16", 2],
  512: ["uint16", 2],
  8: ["int32", 4],
  16: ["float32", 4],
  64: ["float64", 8],
};
const CODE_OF: Record<NiftiDatatype, number> = {
  uint8: 2, int8: 256, int16: 4, uint16: 512, int32: 8, float32: 16, float64: 64,
};
const UNSUPPORTED: Record<number, string> = {
  0: "unknown", 1: "binary (1 bit)", 32: "complex64", 128: "rgb24", 768: "uint32", 1024: "int64",
  1280: "uint64", 1536: "float128", 1792: "complex128", 2048: "complex256", 2304: "rgba32",
};

type Kind = "u8" | "i16" | "i32" | "i64" | "f32" | "f64" | `s${number}`; // the types the two layouts use
type Layout = [name: keyof NiftiHeader | "sizeof_hdr" | "magic" | "eol" | "unused", offset: number, kind: Kind, count?: number][];

// Byte layouts of the two header versions (nifti1.h, nifti2.h).
const LAYOUT1: Layout = [
  ["sizeof_hdr", 0, "i32"], ["data_type", 4, "s10"], ["db_name", 14, "s18"], ["extents", 32, "i32"],
  ["session_error", 36, "i16"], ["regular", 38, "u8"], ["dim_info", 39, "u8"], ["dim", 40, "i16", 8],
  ["intent_p1", 56, "f32"], ["intent_p2", 60, "f32"], ["intent_p3", 64, "f32"], ["intent_code", 68, "i16"],
  ["datatype", 70, "i16"], ["bitpix", 72, "i16"], ["slice_start", 74, "i16"], ["pixdim", 76, "f32", 8],
  ["vox_offset", 108, "f32"], ["scl_slope", 112, "f32"], ["scl_inter", 116, "f32"], ["slice_end", 120, "i16"],
  ["slice_code", 122, "u8"], ["xyzt_units", 123, "u8"], ["cal_max", 124, "f32"], ["cal_min", 128, "f32"],
  ["slice_duration", 132, "f32"], ["toffset", 136, "f32"], ["glmax", 140, "i32"], ["glmin", 144, "i32"],
  ["descrip", 148, "s80"], ["aux_file", 228, "s24"], ["qform_code", 252, "i16"], ["sform_code", 254, "i16"],
  ["quatern_b", 256, "f32"], ["quatern_c", 260, "f32"], ["quatern_d", 264, "f32"], ["qoffset_x", 268, "f32"],
  ["qoffset_y", 272, "f32"], ["qoffset_z", 276, "f32"], ["srow_x", 280, "f32", 4], ["srow_y", 296, "f32", 4],
  ["srow_z", 312, "f32", 4], ["intent_name", 328, "s16"], ["magic", 344, "s4"],
];
const LAYOUT2: Layout = [
  ["sizeof_hdr", 0, "i32"], ["magic", 4, "s4"], ["eol", 8, "s4"], ["datatype", 12, "i16"], ["bitpix", 14, "i16"],
  ["dim", 16, "i64", 8], ["intent_p1", 80, "f64"], ["intent_p2", 88, "f64"], ["intent_p3", 96, "f64"],
  ["pixdim", 104, "f64", 8], ["vox_offset", 168, "i64"], ["scl_slope", 176, "f64"], ["scl_inter", 184, "f64"],
  ["cal_max", 192, "f64"], ["cal_min", 200, "f64"], ["slice_duration", 208, "f64"], ["toffset", 216, "f64"],
  ["slice_start", 224, "i64"], ["slice_end", 232, "i64"], ["descrip", 240, "s80"], ["aux_file", 320, "s24"],
  ["qform_code", 344, "i32"], ["sform_code", 348, "i32"], ["quatern_b", 352, "f64"], ["quatern_c", 360, "f64"],
  ["quatern_d", 368, "f64"], ["qoffset_x", 376, "f64"], ["qoffset_y", 384, "f64"], ["qoffset_z", 392, "f64"],
  ["srow_x", 400, "f64", 4], ["srow_y", 432, "f64", 4], ["srow_z", 464, "f64", 4], ["slice_code", 496, "i32"],
  ["xyzt_units", 500, "i32"], ["intent_code", 504, "i32"], ["intent_name", 508, "s16"], ["dim_info", 524, "u8"],
  ["unused", 525, "s15"],
];
const SIZE = { 1: 348, 2: 540 } as const;
const MAGIC = { 1: "n+1", 2: "n+2" } as const;
// NIfTI-2's magic is followed by these bytes, which detect text-mode corruption.
const EOL2 = "\r\n\x1a\n";
const WIDTH: Record<string, number> = { u8: 1, i16: 2, i32: 4, i64: 8, f32: 4, f64: 8 };

function getField(v: DataView, off: number, kind: Kind, le: boolean, path: string): number | string {
  switch (kind) {
    case "u8": return v.getUint8(off);
    case "i16": return v.getInt16(off, le);
    case "i32": return v.getInt32(off, le);
    case "f32": return v.getFloat32(off, le);
    case "f64": return v.getFloat64(off, le);
    case "i64": {
      const n = v.getBigInt64(off, le);
      if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new NiftiError(`readNifti: ${path}: header integer ${n} at byte ${off} is out of range`);
      }
      return Number(n);
    }
    default: {
      const len = Number(kind.slice(1));
      let s = "";
      for (let i = 0; i < len; i++) {
        const c = v.getUint8(off + i);
        if (c === 0) break;
        s += String.fromCharCode(c);
      }
      return s;
    }
  }
}

function setField(v: DataView, off: number, kind: Kind, value: number | string, name: string, path: string): void {
  const bad = (): never => {
    throw new NiftiError(`writeNifti: ${path}: header field ${name} = ${String(value)} does not fit ${kind}`);
  };
  if (kind.startsWith("s")) {
    const len = Number(kind.slice(1));
    const s = String(value);
    for (let i = 0; i < len; i++) v.setUint8(off + i, i < s.length ? s.charCodeAt(i) & 0xff : 0);
    return;
  }
  const n = Number(value);
  const isInt = kind[0] === "i" || kind[0] === "u";
  if (isInt) {
    const w = WIDTH[kind]! * 8;
    const lo = kind[0] === "u" ? 0 : -(2 ** (w - 1));
    const hi = kind[0] === "u" ? 2 ** w - 1 : 2 ** (w - 1) - 1;
    if (!Number.isInteger(n) || n < lo || n > hi) bad();
  }
  switch (kind) {
    case "u8": v.setUint8(off, n); break;
    case "i16": v.setInt16(off, n, true); break;
    case "i32": v.setInt32(off, n, true); break;
    case "i64": v.setBigInt64(off, BigInt(n), true); break;
    case "f32": v.setFloat32(off, n, true); break;
    case "f64": v.setFloat64(off, n, true); break;
  }
}

/** Version and byte order from sizeof_hdr (348 or 540, in either byte order). */
function detect(bytes: Uint8Array, path: string): { version: 1 | 2; le: boolean } {
  if (bytes.byteLength < 4) throw new NiftiError(`readNifti: ${path} is not a NIfTI file (${bytes.byteLength} bytes)`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const le of [true, false]) {
    const size = v.getInt32(0, le);
    if (size === 348 || size === 540) {
      const version = size === 348 ? 1 : 2;
      if (bytes.byteLength < size) {
        throw new NiftiError(`readNifti: ${path} is truncated inside its NIfTI-${version} header (${bytes.byteLength} of ${size} bytes)`);
      }
      return { version, le };
    }
  }
  throw new NiftiError(
    `readNifti: ${path} is not a NIfTI file (sizeof_hdr = ${v.getInt32(0, true)}, expected 348 or 540)`,
  );
}

/** Parses the header at the start of `bytes` (decompressed file contents). */
export function parseNiftiHeader(bytes: Uint8Array, path = "<buffer>"): NiftiHeader {
  const { version, le } = detect(bytes, path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const raw: Record<string, number | string | number[]> = {};
  for (const [name, off, kind, count] of version === 1 ? LAYOUT1 : LAYOUT2) {
    if (count === undefined) raw[name] = getField(view, off, kind, le, path);
    else raw[name] = Array.from({ length: count }, (_, i) => getField(view, off + i * WIDTH[kind]!, kind, le, path) as number);
  }
  const magic = raw.magic as string;
  if (magic !== MAGIC[version]) {
    if (magic === `ni${version}`) {
      throw new NiftiError(
        `readNifti: ${path} is the header of a two-file NIfTI (.hdr/.img) pair; only single-file .nii / .nii.gz is supported`,
      );
    }
    throw new NiftiError(`readNifti: ${path} is not a NIfTI-${version} file (magic ${JSON.stringify(magic)}, expected "${MAGIC[version]}")`);
  }
  if (version === 2 && raw.eol !== EOL2) {
    throw new NiftiError(`readNifti: ${path}: NIfTI-2 header is corrupt (end-of-line check bytes altered, e.g. by a text-mode transfer)`);
  }
  const h = {
    version,
    littleEndian: le,
    sourcePath: path === "<buffer>" ? null : path,
    data_type: "", db_name: "", extents: 0, session_error: 0, regular: 0, glmax: 0, glmin: 0,
    ...raw,
  } as Record<string, unknown>;
  delete h.sizeof_hdr;
  delete h.magic;
  delete h.eol;
  delete h.unused;
  return h as unknown as NiftiHeader;
}

/** Number of voxels of the single 3-D volume, after checking the dims. */
function volumeDims(h: NiftiHeader, path: string): [number, number, number] {
  const dim = h.dim;
  const nd = dim[0]!;
  const shown = `dim = [${dim.slice(0, Math.max(1, Math.min(nd, 7)) + 1).join(", ")}]`;
  if (!(nd >= 1 && nd <= 7)) throw new NiftiError(`readNifti: ${path}: invalid dim[0] = ${nd} (${shown})`);
  if (nd < 3) throw new NiftiError(`readNifti: ${path} is a ${nd}-D image (${shown}); a 3-D volume is needed`);
  for (let a = 1; a <= nd; a++) {
    if (!(dim[a]! >= 1)) throw new NiftiError(`readNifti: ${path}: dimension ${a} has size ${dim[a]} (${shown})`);
  }
  let volumes = 1;
  for (let a = 4; a <= nd; a++) volumes *= dim[a]!;
  if (volumes !== 1) {
    throw new NiftiError(`readNifti: ${path} holds ${volumes} volumes (${shown}); only a single 3-D volume is supported`);
  }
  return [dim[1]!, dim[2]!, dim[3]!];
}

function datatypeOf(h: NiftiHeader, path: string): [NiftiDatatype, number] {
  const dt = DATATYPES[h.datatype];
  if (!dt) {
    const name = UNSUPPORTED[h.datatype] ?? `code ${h.datatype}`;
    throw new NiftiError(
      `readNifti: ${path}: datatype ${name} is not supported (uint8, int8, int16, uint16, int32, float32, float64)`,
    );
  }
  return dt;
}

/** nibabel's zooms for geometry: |pixdim|, zero read as 1 (its header fix-ups). */
function zooms(h: NiftiHeader): [number, number, number] {
  const z = [1, 2, 3].map((a) => Math.abs(h.pixdim[a]!) || 1);
  return [z[0]!, z[1]!, z[2]!];
}

/** The qform affine: quaternion rotation × diag(pixdim, qfac) + offset. */
export function qformAffine(h: NiftiHeader): number[][] {
  const [b, c, d] = [h.quatern_b, h.quatern_c, h.quatern_d];
  // Unit quaternion with w ≥ 0; rounding can make w² slightly negative.
  // Its squared norm nq is then 1, or b² + c² + d² > 1 when w is clamped to
  // 0: never near 0, so no identity fallback is needed.
  const w = Math.sqrt(Math.max(0, 1 - (b * b + c * c + d * d)));
  const nq = w * w + b * b + c * c + d * d;
  const s = 2 / nq;
  const [X, Y, Z] = [b * s, c * s, d * s];
  const [wX, wY, wZ] = [w * X, w * Y, w * Z];
  const [xX, xY, xZ] = [b * X, b * Y, b * Z];
  const [yY, yZ, zZ] = [c * Y, c * Z, d * Z];
  const r = [
    [1 - (yY + zZ), xY - wZ, xZ + wY],
    [xY + wZ, 1 - (xX + zZ), yZ - wX],
    [xZ - wY, yZ + wX, 1 - (xX + yY)],
  ];
  const qfac = h.pixdim[0] === -1 ? -1 : 1; // other values are read as 1 (nibabel)
  const vox = zooms(h);
  vox[2] *= qfac;
  const off = [h.qoffset_x, h.qoffset_y, h.qoffset_z];
  return [
    ...[0, 1, 2].map((row) => [r[row]![0]! * vox[0], r[row]![1]! * vox[1], r[row]![2]! * vox[2], off[row]!]),
    [0, 0, 0, 1],
  ];
}

export function sformAffine(h: NiftiHeader): number[][] {
  return [[...h.srow_x], [...h.srow_y], [...h.srow_z], [0, 0, 0, 1]];
}

/**
 * The voxel → world affine as nibabel picks it: the sform when sform_code ≠ 0,
 * else the qform when qform_code ≠ 0, else the Analyze base affine (x flipped,
 * origin at the volume centre).
 */
export function niftiAffine(h: NiftiHeader): number[][] {
  if (h.sform_code !== 0) return sformAffine(h);
  if (h.qform_code !== 0) return qformAffine(h);
  const z = zooms(h);
  const n = [h.dim[1]!, h.dim[2]!, h.dim[3]!];
  const diag = [-z[0], z[1], z[2]];
  return [
    ...[0, 1, 2].map((a) => {
      const row = [0, 0, 0, (-(n[a]! - 1) / 2) * diag[a]!];
      row[a] = diag[a]!;
      return row;
    }),
    [0, 0, 0, 1],
  ];
}

/** A checked header and where its voxels lie. */
interface VoxelLayout {
  header: NiftiHeader;
  dims: [number, number, number];
  datatype: NiftiDatatype;
  itemSize: number;
  /** Byte offset of the first voxel. */
  offset: number;
  voxels: number;
}

/** Parses and checks the header at the start of `head`; refuses volumes over the limit before anything is allocated. */
function layoutOf(head: Uint8Array, path: string, opts: ReadNiftiOptions): VoxelLayout {
  const maxVoxels = opts.maxVoxels ?? DEFAULT_MAX_VOXELS;
  if (!(Number.isSafeInteger(maxVoxels) && maxVoxels > 0)) {
    throw new NiftiError(`readNifti: ${path}: maxVoxels must be a positive integer, got ${String(maxVoxels)}`);
  }
  const header = parseNiftiHeader(head, path);
  const dims = volumeDims(header, path);
  const [datatype, itemSize] = datatypeOf(header, path);
  const voxels = dims[0] * dims[1] * dims[2];
  if (voxels > maxVoxels) {
    throw new NiftiError(
      `readNifti: ${path}: the volume is ${dims.join("×")} = ${voxels} voxels, over the limit of ${maxVoxels} ` +
        `(raise it with maxVoxels, or --max-voxels on the command line, if the file is trusted)`,
    );
  }
  const hdrSize = SIZE[header.version];
  // A single file's data cannot start inside the header; 0 there means "right after it".
  const offset = header.vox_offset >= hdrSize ? Math.floor(header.vox_offset) : hdrSize + 4;
  if (offset > hdrSize + 4 + MAX_EXTENSION_BYTES) {
    throw new NiftiError(
      `readNifti: ${path}: vox_offset ${header.vox_offset} leaves ${offset - hdrSize} bytes of extensions before the voxels; ` +
        `at most ${MAX_EXTENSION_BYTES} are accepted`,
    );
  }
  // The gzip path inflates into one buffer of this size plus one byte.
  if (offset + voxels * itemSize + TRAILING_SLACK + 1 > MAX_BUFFER_LENGTH) {
    throw new NiftiError(`readNifti: ${path}: ${dims.join("×")} ${datatype} voxels do not fit in one buffer of this Node.js`);
  }
  return { header, dims, datatype, itemSize, offset, voxels };
}

/**
 * The bytes a file whose header starts `head` must hold from its start
 * (header, extensions, voxels), after the same checks decodeNifti makes;
 * an inflater reads no further than this plus a slack of trailing bytes.
 */
export function niftiDeclaredBytes(head: Uint8Array, path = "<buffer>", opts: ReadNiftiOptions = {}): { needed: number; limit: number } {
  const l = layoutOf(head, path, opts);
  const needed = l.offset + l.voxels * l.itemSize;
  return { needed, limit: needed + TRAILING_SLACK };
}

/** Bytes of a NIfTI-2 header: an inflater has the whole header once it has this many (or the whole stream). */
export const NIFTI_HEADER_BYTES = SIZE[2] + 4;

function truncated(path: string, l: VoxelLayout, have: number, what: string): NiftiError {
  return new NiftiError(
    `readNifti: ${path} is truncated: ${l.dims.join("×")} ${l.datatype} voxels need ${l.voxels * l.itemSize} bytes ` +
      `from offset ${l.offset}, the ${what} has ${Math.max(0, have - l.offset)}`,
  );
}

const isGzip = (file: Uint8Array) => file[0] === 0x1f && file[1] === 0x8b;

function corruptGzip(path: string, e: unknown): NiftiError {
  return new NiftiError(`readNifti: ${path}: gzip data is truncated or corrupt (${(e as Error).message})`);
}

/**
 * The header of a gzipped file: inflates growing prefixes of the file (as far
 * as they go, Z_SYNC_FLUSH) until the header is complete, so that the output
 * is bounded by the prefix, not by what the stream would expand to.
 */
function gzipHeader(file: Uint8Array, path: string): Uint8Array {
  let out: Uint8Array = new Uint8Array(0);
  // Prefixes count from the end of the gzip member's own header, which a
  // name, comment or extra field can make any length.
  const start = gzipMemberHeaderBytes(file);
  for (const prefix of HEADER_PREFIXES.map((p) => start + p)) {
    try {
      out = gunzipSync(file.subarray(0, prefix), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (e) {
      throw corruptGzip(path, e);
    }
    if (out.byteLength >= SIZE[2] || prefix >= file.byteLength) return out;
  }
  // detect() names what is missing (too short, or not a NIfTI header at all).
  return out;
}

/**
 * Bytes of a gzip member's header (RFC 1952: 10 fixed bytes, then the
 * optional extra field, name, comment and header CRC that its flags name);
 * the whole file where a field runs past its end (gunzip then says corrupt).
 */
function gzipMemberHeaderBytes(file: Uint8Array): number {
  const flags = file[3]!;
  let at = 10;
  if (flags & 4) at += 2 + (file[at]! | (file[at + 1]! << 8)); // FEXTRA: length, then data
  for (const bit of [8, 16]) {
    // FNAME, FCOMMENT: zero-terminated
    if (flags & bit) {
      const end = file.indexOf(0, at);
      at = end < 0 ? file.byteLength : end + 1;
    }
  }
  if (flags & 2) at += 2; // FHCRC
  return Math.min(at, file.byteLength);
}

/** Inflates a gzipped file whose header gave `l`, refusing to produce more than it declares. */
function gunzipDeclared(file: Uint8Array, l: VoxelLayout, path: string): Uint8Array {
  const limit = l.offset + l.voxels * l.itemSize + TRAILING_SLACK;
  try {
    // One output buffer one byte over the limit: the result is a view of it,
    // with no chunk list to concatenate (which would double the peak).
    return gunzipSync(file, { maxOutputLength: limit, chunkSize: limit + 1 });
  } catch (e) {
    const code = String((e as { code?: unknown }).code ?? "");
    if (code === "ERR_BUFFER_TOO_LARGE") {
      throw new NiftiError(
        `readNifti: ${path}: the gzip stream holds more than the ${l.offset + l.voxels * l.itemSize} bytes its header declares ` +
          `(${l.dims.join("×")} ${l.datatype} from offset ${l.offset}); refusing to inflate it`,
      );
    }
    // zlib's own errors carry its codes (Z_DATA_ERROR, Z_BUF_ERROR …); anything else is the allocation.
    if (code.startsWith("Z_")) throw corruptGzip(path, e);
    throw new NiftiError(`readNifti: ${path}: cannot allocate ${limit + 1} bytes to inflate ${l.dims.join("×")} ${l.datatype} voxels (${(e as Error).message})`);
  }
}

/**
 * The voxel bytes `l` declares inside `bytes`, as an array this reader owns:
 * a view when `owned` and aligned, else a copy. Typed arrays must start at a
 * multiple of their item size, and vox_offset need not be one (nibabel reads
 * such files). `new Uint8Array(view)` copies into a fresh buffer;
 * Buffer#slice would return a view.
 */
function ownVoxelBytes(bytes: Uint8Array, l: VoxelLayout, owned: boolean): Uint8Array {
  const raw = bytes.subarray(l.offset, l.offset + l.voxels * l.itemSize);
  return owned && raw.byteOffset % l.itemSize === 0 ? raw : new Uint8Array(raw);
}

const INT16_MIN = -32768;
const INT16_MAX = 32767;

/** Voxel bytes (owned, aligned, file byte order) → values, byte-swapped and scaled, in the type VoxelArray describes. */
function voxelValues(raw: Uint8Array, l: VoxelLayout, path: string): VoxelArray {
  const { datatype, itemSize: size, voxels: n, header: h } = l;
  if (!h.littleEndian && size > 1) {
    for (let p = 0; p < raw.byteLength; p += size) {
      for (let a = p, b = p + size - 1; a < b; a++, b--) {
        const t = raw[a]!;
        raw[a] = raw[b]!;
        raw[b] = t;
      }
    }
  }
  const buf = raw.buffer;
  const at = raw.byteOffset;
  let src: VoxelArray | Int32Array | Float64Array;
  switch (datatype) {
    case "uint8": src = new Uint8Array(buf, at, n); break;
    case "int8": src = new Int8Array(buf, at, n); break;
    case "int16": src = new Int16Array(buf, at, n); break;
    case "uint16": src = new Uint16Array(buf, at, n); break;
    case "int32": src = new Int32Array(buf, at, n); break;
    case "float32": src = new Float32Array(buf, at, n); break;
    case "float64": src = new Float64Array(buf, at, n); break;
  }
  // nibabel's rule: a zero or non-finite slope means "no scaling".
  const slope = h.scl_slope;
  const inter = h.scl_inter;
  const scaled = slope !== 0 && Number.isFinite(slope) && !(slope === 1 && inter === 0);
  if (scaled && !Number.isFinite(inter)) {
    throw new NiftiError(`readNifti: ${path}: scl_slope ${slope} with invalid scl_inter ${inter}`);
  }
  if (!(src instanceof Float32Array || src instanceof Float64Array) && (!scaled || (Number.isInteger(slope) && Number.isInteger(inter)))) {
    if (!scaled && !(src instanceof Int32Array)) return src;
    // Integer values (int32, or integer scaling): int16 when they all fit.
    const [s, t] = scaled ? [slope, inter] : [1, 0];
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = src[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const a = lo * s + t, b = hi * s + t;
    if (Math.min(a, b) >= INT16_MIN && Math.max(a, b) <= INT16_MAX) {
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = src[i]! * s + t;
      return out;
    }
  }
  if (src instanceof Float32Array && !scaled) return src;
  const out = new Float32Array(n);
  if (scaled) {
    for (let i = 0; i < n; i++) out[i] = src[i]! * slope + inter; // in f64, rounded once
  } else {
    out.set(src);
  }
  return out;
}

function volumeOf(l: VoxelLayout, data: VoxelArray): NiftiVolume {
  return { dims: l.dims, spacing: zooms(l.header), affine: niftiAffine(l.header), datatype: l.datatype, data, header: l.header };
}

/** Decodes a whole NIfTI file (gzip or not) already in memory; `file` is not modified. */
export function decodeNifti(file: Uint8Array, path = "<buffer>", opts: ReadNiftiOptions = {}): NiftiVolume {
  if (!isGzip(file)) {
    const l = layoutOf(file, path, opts);
    if (file.byteLength < l.offset + l.voxels * l.itemSize) throw truncated(path, l, file.byteLength, "file");
    return volumeOf(l, voxelValues(ownVoxelBytes(file, l, false), l, path));
  }
  const l = layoutOf(gzipHeader(file, path), path, opts);
  const bytes = gunzipDeclared(file, l, path);
  if (bytes.byteLength < l.offset + l.voxels * l.itemSize) throw truncated(path, l, bytes.byteLength, "decompressed file");
  return volumeOf(l, voxelValues(ownVoxelBytes(bytes, l, true), l, path));
}

/**
 * Reads a `.nii` or `.nii.gz` (gzip is detected from the bytes, not the name).
 * Volumes over `opts.maxVoxels` (default DEFAULT_MAX_VOXELS) are refused
 * before their voxels are read or inflated.
 */
export function readNifti(path: string, opts: ReadNiftiOptions = {}): NiftiVolume {
  const fail = (e: unknown) => new NiftiError(`readNifti: cannot read ${path}: ${(e as Error).message}`);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw fail(e);
  }
  try {
    let size: number;
    let head: Uint8Array;
    try {
      size = fstatSync(fd).size;
      head = new Uint8Array(Math.min(size, SIZE[2] + 4));
      head = head.subarray(0, readAt(fd, head, 0));
    } catch (e) {
      throw fail(e);
    }
    // gzip: the compressed file is read whole (it is no larger than the file
    // the user gave), and inflated header first.
    if (isGzip(head)) {
      let file: Buffer;
      try {
        file = readFileSync(fd);
      } catch (e) {
        throw fail(e);
      }
      return decodeNifti(file, path, opts);
    }
    // Uncompressed: the voxels are read straight into their own aligned buffer.
    const l = layoutOf(head, path, opts);
    if (size < l.offset + l.voxels * l.itemSize) throw truncated(path, l, size, "file");
    const raw = new Uint8Array(l.voxels * l.itemSize);
    let got: number;
    try {
      got = readAt(fd, raw, l.offset);
    } catch (e) {
      throw fail(e);
    }
    if (got < raw.byteLength) throw truncated(path, l, l.offset + got, "file");
    return volumeOf(l, voxelValues(raw, l, path));
  } finally {
    closeSync(fd);
  }
}

/** Throws, naming the file and the first voxel (i, j, k), if any value is NaN or infinite. */
export function checkFinite(vol: NiftiVolume): void {
  const d = vol.data;
  if (!(d instanceof Float32Array)) return; // integer types hold only finite values
  for (let idx = 0; idx < d.length; idx++) {
    if (!Number.isFinite(d[idx]!)) {
      const [ni, nj] = vol.dims;
      const i = idx % ni;
      const j = Math.floor(idx / ni) % nj;
      const k = Math.floor(idx / (ni * nj));
      let bad = 0;
      for (let t = idx; t < d.length; t++) if (!Number.isFinite(d[t]!)) bad++;
      throw new NiftiError(
        `${vol.header.sourcePath ?? "NIfTI volume"}: voxel (i, j, k) = (${i}, ${j}, ${k}) (index ${idx}) is ${d[idx]}; ` +
          `${bad} non-finite voxel${bad === 1 ? "" : "s"} in all`,
      );
    }
  }
}

const RANGE = { uint8: [0, 255], int16: [-32768, 32767] } as const;

/** The header written for `like`'s geometry with data of `datatype`. */
function outputHeader(like: NiftiHeader, datatype: NiftiDatatype, descrip: string): NiftiHeader {
  return {
    ...like,
    dim: [...like.dim],
    pixdim: [...like.pixdim],
    srow_x: [...like.srow_x],
    srow_y: [...like.srow_y],
    srow_z: [...like.srow_z],
    littleEndian: true,
    datatype: CODE_OF[datatype],
    bitpix: DATATYPES[CODE_OF[datatype]]![1] * 8,
    vox_offset: SIZE[like.version] + 4,
    // Values are stored unscaled; display range and intent are the input's
    // business, not the mask's.
    scl_slope: 1,
    scl_inter: 0,
    cal_max: 0,
    cal_min: 0,
    glmax: 0,
    glmin: 0,
    intent_code: 0,
    intent_p1: 0,
    intent_p2: 0,
    intent_p3: 0,
    intent_name: "",
    aux_file: "",
    descrip,
  };
}

/** Header bytes (little-endian) plus the 4-byte "no extensions" flag. */
export function encodeNiftiHeader(h: NiftiHeader, path = "<buffer>"): Uint8Array {
  const size = SIZE[h.version];
  const out = new Uint8Array(size + 4);
  const v = new DataView(out.buffer);
  const fields: Record<string, unknown> = { ...h, sizeof_hdr: size, magic: MAGIC[h.version], eol: EOL2, unused: "" };
  for (const [name, off, kind, count] of h.version === 1 ? LAYOUT1 : LAYOUT2) {
    const value = fields[name];
    if (count === undefined) setField(v, off, kind, value as number | string, name, path);
    else for (let i = 0; i < count; i++) setField(v, off + i * WIDTH[kind]!, kind, (value as number[])[i] ?? 0, `${name}[${i}]`, path);
  }
  return out;
}

/**
 * Writes `data` (i fastest, one value per voxel of `like`) as uint8, int16
 * or float32 with `like`'s geometry, atomically. `.nii.gz` is gzipped.
 * Refuses to overwrite `opts.inputPath` or the file `like` was read from.
 */
export function writeNifti(
  path: string,
  like: NiftiVolume,
  data: ArrayLike<number>,
  datatype: "uint8" | "int16" | "float32",
  opts: { inputPath?: string; descrip?: string } = {},
): void {
  const lower = path.toLowerCase();
  const gz = lower.endsWith(".nii.gz");
  if (!gz && !lower.endsWith(".nii")) throw new NiftiError(`writeNifti: ${path}: output name must end in .nii or .nii.gz`);
  if (!(datatype in RANGE) && datatype !== "float32") throw new NiftiError(`writeNifti: ${path}: cannot write datatype ${String(datatype)}`);
  const h = like.header;
  // Refuse before any work: an output equal to the input is a user error.
  const inputs = [opts.inputPath, h.sourcePath ?? undefined].filter((p): p is string => p !== undefined);
  assertNotInput(path, inputs, "writeNifti");
  let n = 1;
  for (let a = 1; a <= h.dim[0]!; a++) n *= h.dim[a]!;
  if (data.length !== n) {
    throw new NiftiError(`writeNifti: ${path}: data has ${data.length} values, the volume ${like.dims.join("×")} has ${n} voxels`);
  }
  let chunks: Uint8Array[];
  if (!gz && datatype === "float32" && data instanceof Float32Array) {
    const head = encodeNiftiHeader(outputHeader(h, datatype, opts.descrip ?? "segvol-webgpu"), path);
    chunks = [head, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)];
  } else {
    const file = niftiFileBytes(like, data, datatype, { descrip: opts.descrip, path });
    // Level 1, as nibabel: a float32 logit volume is ~100 MB and level 6
    // costs ~3× the time for a few percent of size. One output chunk that
    // holds even incompressible data, so zlib returns a view of it instead
    // of concatenating a list (only the pages written become resident).
    chunks = gz ? [gzipSync(file, { level: 1, chunkSize: file.byteLength + (file.byteLength >> 10) + 1024 })] : [file];
  }
  writeFileAtomic(path, chunks, { inputPath: inputs, what: "writeNifti" });
}

/**
 * The bytes of an uncompressed .nii holding `data` (i fastest, one value per
 * voxel of `like`) as uint8, int16 or float32 with `like`'s geometry: header
 * and voxels in one buffer, which gzip compresses as it is (no second
 * full-size copy to concatenate them). The header's size (352 or 544 bytes)
 * keeps the voxels aligned.
 */
export function niftiFileBytes(
  like: NiftiVolume,
  data: ArrayLike<number>,
  datatype: "uint8" | "int16" | "float32",
  opts: { descrip?: string; path?: string } = {},
): Uint8Array {
  const path = opts.path ?? "<buffer>";
  if (!(datatype in RANGE) && datatype !== "float32") throw new NiftiError(`writeNifti: ${path}: cannot write datatype ${String(datatype)}`);
  const h = like.header;
  let n = 1;
  for (let a = 1; a <= h.dim[0]!; a++) n *= h.dim[a]!;
  if (data.length !== n) {
    throw new NiftiError(`writeNifti: ${path}: data has ${data.length} values, the volume ${like.dims.join("×")} has ${n} voxels`);
  }
  const head = encodeNiftiHeader(outputHeader(h, datatype, opts.descrip ?? "segvol-webgpu"), path);
  const size = DATATYPES[CODE_OF[datatype]]![1];
  const file = new Uint8Array(head.byteLength + n * size);
  file.set(head);
  if (datatype === "float32") {
    new Float32Array(file.buffer, head.byteLength, n).set(data);
    return file;
  }
  const [lo, hi] = RANGE[datatype];
  const arr = datatype === "uint8" ? file.subarray(head.byteLength) : new Int16Array(file.buffer, head.byteLength, n);
  for (let i = 0; i < n; i++) {
    const x = data[i]!;
    // Masks and label maps are integers; anything else is a caller bug, not something to round.
    if (!Number.isInteger(x) || x < lo || x > hi) {
      throw new NiftiError(`writeNifti: ${path}: value ${x} at index ${i} is not a ${datatype} (integer in [${lo}, ${hi}])`);
    }
    arr[i] = x;
  }
  return file;
}

/**
 * A volume built in memory (synthetic data, or a model-space array given a
 * geometry): sform = `affine` (default: diag(spacing)) with code 2
 * ("aligned"), no qform, spacing in mm. The header then serves writeNifti.
 */
export function niftiFromArray(
  dims: [number, number, number],
  data: Float32Array,
  opts: { spacing?: [number, number, number]; affine?: number[][]; version?: 1 | 2; datatype?: NiftiDatatype } = {},
): NiftiVolume {
  const n = dims[0] * dims[1] * dims[2];
  if (!dims.every((d) => Number.isInteger(d) && d >= 1) || data.length !== n) {
    throw new NiftiError(`niftiFromArray: dims ${dims.join("×")} (${n} voxels) do not match data of ${data.length} values`);
  }
  const affine = opts.affine ?? [
    [opts.spacing?.[0] ?? 1, 0, 0, 0],
    [0, opts.spacing?.[1] ?? 1, 0, 0],
    [0, 0, opts.spacing?.[2] ?? 1, 0],
    [0, 0, 0, 1],
  ];
  if (affine.length !== 4 || affine.some((r) => r.length !== 4)) throw new NiftiError("niftiFromArray: affine must be 4×4");
  // Voxel size = length of each affine column unless given.
  const col = (a: number) => Math.hypot(affine[0]![a]!, affine[1]![a]!, affine[2]![a]!);
  const spacing = opts.spacing ?? [col(0), col(1), col(2)];
  const datatype = opts.datatype ?? "float32";
  const version = opts.version ?? (dims.some((d) => d > 32767) ? 2 : 1);
  const header: NiftiHeader = {
    version, littleEndian: true, sourcePath: null,
    dim: [3, dims[0], dims[1], dims[2], 1, 1, 1, 1],
    pixdim: [1, spacing[0], spacing[1], spacing[2], 1, 1, 1, 1],
    datatype: CODE_OF[datatype], bitpix: DATATYPES[CODE_OF[datatype]]![1] * 8, vox_offset: SIZE[version] + 4,
    scl_slope: 1, scl_inter: 0, cal_max: 0, cal_min: 0,
    slice_start: 0, slice_end: 0, slice_code: 0, slice_duration: 0, toffset: 0,
    xyzt_units: 2, dim_info: 0, // mm, unknown slice direction
    intent_code: 0, intent_p1: 0, intent_p2: 0, intent_p3: 0, intent_name: "",
    descrip: "", aux_file: "",
    qform_code: 0, sform_code: 2,
    quatern_b: 0, quatern_c: 0, quatern_d: 0, qoffset_x: 0, qoffset_y: 0, qoffset_z: 0,
    srow_x: [...affine[0]!], srow_y: [...affine[1]!], srow_z: [...affine[2]!],
    data_type: "", db_name: "", extents: 0, session_error: 0, regular: "r".charCodeAt(0), glmax: 0, glmin: 0,
  };
  return { dims: [...dims], spacing: [...spacing], affine: niftiAffine(header), datatype, data, header };
}
