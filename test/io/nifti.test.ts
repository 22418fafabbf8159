// NIfTI I/O against files written by nibabel (tools/fixtures/gen_nifti.py):
// header fields, nibabel's affine and its scaled voxel values for every
// readable datatype, both versions, gzip, big-endian, qform-only and
// no-transform files; then write → read round trips and the refusals.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import {
  checkFinite,
  decodeNifti,
  DEFAULT_MAX_VOXELS,
  encodeNiftiHeader,
  niftiFromArray,
  readNifti,
  writeNifti,
  type NiftiHeader,
  type NiftiVolume,
  type VoxelArray,
} from "../../src/io/nifti.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "io", "nifti");
interface Expected {
  version: 1 | 2;
  big_endian: boolean;
  shape: number[];
  zooms: number[];
  affine: number[][];
  header: Record<string, number | number[] | string>;
  b64: string;
}
const expected = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as Record<string, Expected>;
const readable = Object.keys(expected).filter((n) => !n.startsWith("bad_"));
const tmp = mkdtempSync(join(tmpdir(), "nifti-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function f32(b64: string): Float32Array {
  const b = Buffer.from(b64, "base64");
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
/** Bitwise equality of the values as float32 (NaN == NaN). */
function sameBits(x: VoxelArray, y: VoxelArray): boolean {
  const [a, b] = [x, y].map((d) => (d instanceof Float32Array ? d : Float32Array.from(d))) as [Float32Array, Float32Array];
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
function maxDiff(a: number[][], b: number[][]): number {
  let m = 0;
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) m = Math.max(m, Math.abs(a[r]![c]! - b[r]![c]!));
  return m;
}
const GEOMETRY: (keyof NiftiHeader)[] = [
  "version", "dim", "pixdim", "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d",
  "qoffset_x", "qoffset_y", "qoffset_z", "srow_x", "srow_y", "srow_z", "xyzt_units", "dim_info",
  "slice_start", "slice_end", "slice_code", "slice_duration", "toffset",
];
const geometry = (h: NiftiHeader) => Object.fromEntries(GEOMETRY.map((k) => [k, h[k]]));

describe("readNifti (nibabel-written files)", () => {
  it.each(readable)("%s: header, affine, spacing and data match nibabel", (name) => {
    const e = expected[name]!;
    const vol = readNifti(join(dir, name));
    expect(vol.header.version).toBe(e.version);
    expect(vol.header.littleEndian).toBe(!e.big_endian);
    expect(vol.dims).toEqual(e.shape.slice(0, 3));
    expect(vol.spacing).toEqual(e.zooms);
    for (const [k, v] of Object.entries(e.header)) {
      expect(vol.header[k as keyof NiftiHeader], `${name}: ${k}`).toEqual(v);
    }
    // sform: copied fields, exact; qform and base affine: recomputed (nibabel
    // uses long double for the quaternion), so within 1e-9 mm.
    expect(maxDiff(vol.affine, e.affine)).toBeLessThan(1e-9);
    if (e.header.sform_code !== 0) expect(vol.affine).toEqual(e.affine);
    expect(sameBits(vol.data, f32(e.b64)), `${name}: voxel values`).toBe(true);
  });

  it("the fixtures cover every scaling case and misaligned voxels (so regenerating cannot drop one silently)", () => {
    const scaling = (n: string) => [expected[n]!.header.scl_slope, expected[n]!.header.scl_inter];
    expect(scaling("scaled_slope_only.nii")).toEqual([2, 0]);
    expect(scaling("scaled_inter_only.nii.gz")).toEqual([1, -17.5]);
    expect(scaling("scaled_ct_uint16.nii.gz")).toEqual([1, -1024]);
    expect(scaling("scaled_ct_int16_full_range.nii")).toEqual([1, -1024]);
    expect(scaling("scaled_negative_slope.nii")).toEqual([-1.5, 20]);
    expect(scaling("scaled_negative_slope_int.nii.gz")).toEqual([-2, 5]);
    for (const [name, size] of [["misaligned_int16.nii", 2], ["misaligned_float64.nii.gz", 8], ["misaligned_float32_scaled.nii", 4]] as const) {
      expect((expected[name]!.header.vox_offset as number) % size, name).not.toBe(0);
    }
    // nibabel's values are not the stored ones: a reader that skipped the scaling would differ.
    for (const name of ["scaled_slope_only.nii", "scaled_inter_only.nii.gz", "scaled_ct_uint16.nii.gz", "scaled_negative_slope.nii"]) {
      const vol = readNifti(join(dir, name));
      const bytes = readFileSync(join(dir, name));
      const raw = decodeNifti(patchScaling(name.endsWith(".gz") ? gunzipSync(bytes) : bytes, 1, 0)).data;
      expect(Array.from(raw), name).not.toEqual(Array.from(vol.data));
    }
  });

  it.each([
    // Integers stay integers, at their own size or int16, when every value fits; all else is float32.
    ["dt_uint8.nii", Uint8Array],
    ["dt_int8.nii", Int8Array],
    ["dt_int16.nii", Int16Array],
    ["dt_uint16.nii", Uint16Array],
    ["bigendian_int16.nii", Float32Array], // slope 0.25
    ["dt_int32.nii", Float32Array], // values beyond int16
    ["dt_float64.nii", Float32Array],
    ["scaled_slope_only.nii", Float32Array], // 2 × full-range int16
    ["scaled_ct_uint16.nii.gz", Int16Array], // 0..4095 − 1024
    ["scaled_ct_int16_full_range.nii", Float32Array], // −32768 − 1024 is not an int16
    ["scaled_negative_slope_int.nii.gz", Int16Array], // −2 × (−1024..3071) + 5
    ["scaled_inter_only.nii.gz", Float32Array], // −17.5
  ] as const)("%s is held as %O", (name, type) => {
    expect(readNifti(join(dir, name)).data).toBeInstanceOf(type);
  });

  it("applies scl_slope/scl_inter (int16 CT: slope 0.5, inter -1024) and ignores a zero slope", () => {
    const scaled = readNifti(join(dir, "scaled_int16.nii.gz"));
    expect(scaled.datatype).toBe("int16");
    expect(scaled.header.scl_slope).toBe(0.5);
    // every value is raw/2 − 1024 with raw an int16
    for (const x of scaled.data) expect(Number.isInteger((x + 1024) * 2)).toBe(true);
    const zero = readNifti(join(dir, "scaled_zero_slope.nii"));
    expect(zero.header.scl_inter).toBe(99);
    expect(sameBits(zero.data, f32(expected["scaled_zero_slope.nii"]!.b64))).toBe(true);
  });

  it.each([
    ["bad_2d.nii", /bad_2d\.nii is a 2-D image \(dim = \[2, 5, 4\]\); a 3-D volume is needed/],
    ["bad_two_volumes.nii", /bad_two_volumes\.nii holds 2 volumes \(dim = \[4, 5, 4, 3, 2\]\)/],
    ["bad_complex64.nii", /bad_complex64\.nii: datatype complex64 is not supported/],
  ])("refuses %s", (name, msg) => {
    expect(() => readNifti(join(dir, name))).toThrow(msg);
  });

  it("refuses non-NIfTI, truncated, two-file and missing inputs with the file named", () => {
    const junk = join(tmp, "junk.nii");
    writeFileSync(junk, Buffer.alloc(400, 7));
    expect(() => readNifti(junk)).toThrow(/junk\.nii is not a NIfTI file \(sizeof_hdr = 117901063, expected 348 or 540\)/);

    const gz = readFileSync(join(dir, "scaled_int16.nii.gz"));
    const cutGz = join(tmp, "cut.nii.gz");
    writeFileSync(cutGz, gz.subarray(0, gz.length - 30));
    expect(() => readNifti(cutGz)).toThrow(/cut\.nii\.gz: gzip data is truncated or corrupt/);

    const plain = readFileSync(join(dir, "dt_float32.nii"));
    const cut = join(tmp, "cut.nii");
    writeFileSync(cut, plain.subarray(0, plain.length - 8));
    expect(() => readNifti(cut)).toThrow(/cut\.nii is truncated: 5×4×3 float32 voxels need 240 bytes from offset 352, the file has 232/);
    const cutInGz = join(tmp, "cut-inside.nii.gz");
    writeFileSync(cutInGz, gzipSync(plain.subarray(0, 400)));
    expect(() => readNifti(cutInGz)).toThrow(/cut-inside\.nii\.gz is truncated: .* the decompressed file has 48/);
    const head = join(tmp, "head.nii");
    writeFileSync(head, plain.subarray(0, 200));
    expect(() => readNifti(head)).toThrow(/head\.nii is truncated inside its NIfTI-1 header \(200 of 348 bytes\)/);

    const pair = Buffer.from(plain);
    pair.write("ni1\0", 344, "latin1");
    const hdr = join(tmp, "pair.nii");
    writeFileSync(hdr, pair);
    expect(() => readNifti(hdr)).toThrow(/pair\.nii is the header of a two-file NIfTI \(\.hdr\/\.img\) pair/);
    const analyze = Buffer.from(plain);
    analyze.write("\0\0\0\0", 344, "latin1");
    writeFileSync(hdr, analyze);
    expect(() => readNifti(hdr)).toThrow(/pair\.nii is not a NIfTI-1 file \(magic ""/);

    expect(() => readNifti(join(tmp, "absent.nii.gz"))).toThrow(/readNifti: cannot read .*absent\.nii\.gz/);
  });
});

/** NIfTI-1 file bytes with scl_slope/scl_inter replaced. */
function patchScaling(file: Uint8Array, slope: number, inter: number): Buffer {
  const b = Buffer.from(file);
  b.writeFloatLE(slope, 112);
  b.writeFloatLE(inter, 116);
  return b;
}

/** A NIfTI-1 header (uint8, 1 mm) declaring `dims`, with the 4-byte extension flag. */
function headerDeclaring(dims: [number, number, number]): Uint8Array {
  const h = niftiFromArray([2, 2, 2], new Float32Array(8), { datatype: "uint8" }).header;
  return encodeNiftiHeader({ ...h, dim: [3, ...dims, 1, 1, 1, 1] });
}

/**
 * gzip that inflates to `head` followed by `zeroMiB` MiB of zeros: a
 * multi-member stream (valid gzip) of 1 KiB members, so a GiB costs a MiB.
 */
function zeroBomb(head: Uint8Array, zeroMiB: number): Buffer {
  const member = gzipSync(Buffer.alloc(2 ** 20), { level: 9 });
  return Buffer.concat([gzipSync(head), ...Array.from({ length: zeroMiB }, () => member)]);
}

/** What `fn` throws, and the growth of peak RSS (MiB; maxRSS is the process's high-water mark) while it runs. */
function thrownAndPeak(fn: () => void): { err: unknown; grewMiB: number } {
  const before = process.resourceUsage().maxRSS;
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  return { err, grewMiB: (process.resourceUsage().maxRSS - before) / 1024 };
}

describe("readNifti against hostile sizes (header first, bounded inflation)", () => {
  it("refuses a 1 MB .nii.gz declaring 1024³ voxels before inflating it", () => {
    const bomb = join(tmp, "cube1024.nii.gz");
    writeFileSync(bomb, zeroBomb(headerDeclaring([1024, 1024, 1024]), 1024));
    const { err, grewMiB } = thrownAndPeak(() => readNifti(bomb));
    expect(String(err)).toContain(
      `cube1024.nii.gz: the volume is 1024×1024×1024 = 1073741824 voxels, over the limit of ${DEFAULT_MAX_VOXELS} (raise it with maxVoxels`,
    );
    expect(grewMiB).toBeLessThan(64);
  });

  it("stops inflating where the declared voxels end (1 GiB of zeros after a 5×4×3 volume)", () => {
    const head = readFileSync(join(dir, "dt_uint8.nii")); // 352 + 60 bytes
    const bomb = join(tmp, "tail-bomb.nii.gz");
    writeFileSync(bomb, zeroBomb(head, 1024));
    const { err, grewMiB } = thrownAndPeak(() => readNifti(bomb));
    expect(String(err)).toMatch(/tail-bomb\.nii\.gz: the gzip stream holds more than the 412 bytes its header declares/);
    expect(grewMiB).toBeLessThan(64);
    // A little padding after the voxels (some writers add it) is read as before.
    const padded = join(tmp, "padded.nii.gz");
    writeFileSync(padded, gzipSync(Buffer.concat([head, Buffer.alloc(1000)])));
    expect(Array.from(readNifti(padded).data)).toEqual(Array.from(readNifti(join(dir, "dt_uint8.nii")).data));
  });

  it("maxVoxels lowers or raises the limit, and must be a positive integer", () => {
    const name = join(dir, "dt_float32.nii"); // 5×4×3 = 60 voxels
    expect(() => readNifti(name, { maxVoxels: 59 })).toThrow(/dt_float32\.nii: the volume is 5×4×3 = 60 voxels, over the limit of 59/);
    expect(readNifti(name, { maxVoxels: 60 }).dims).toEqual([5, 4, 3]);
    const gz = join(dir, "scaled_int16.nii.gz");
    expect(() => readNifti(gz, { maxVoxels: 10 })).toThrow(/over the limit of 10/);
    expect(() => decodeNifti(readFileSync(name), "mem.nii", { maxVoxels: 10 })).toThrow(/mem\.nii: the volume is 5×4×3/);
    // Raised past what one buffer of this Node.js holds: refused by name, not by a RangeError.
    const huge = join(tmp, "huge.nii.gz");
    const head = niftiFromArray([2, 2, 2], new Float32Array(8), { datatype: "float64" }).header;
    writeFileSync(huge, gzipSync(encodeNiftiHeader({ ...head, dim: [3, 2048, 2048, 1024, 1, 1, 1, 1] })));
    expect(() => readNifti(huge, { maxVoxels: 2 ** 40 })).toThrow(/huge\.nii\.gz: 2048×2048×1024 float64 voxels do not fit in one buffer/);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => readNifti(name, { maxVoxels: bad })).toThrow(/maxVoxels must be a positive integer/);
    }
  });

  it("refuses a vox_offset far beyond any extension area, and a header not found in the gzip prefix", () => {
    const b = Buffer.from(readFileSync(join(dir, "dt_uint8.nii")));
    b.writeFloatLE(2 ** 30, 108);
    const far = join(tmp, "far.nii");
    writeFileSync(far, b);
    expect(() => readNifti(far)).toThrow(/far\.nii: vox_offset 1073741824 leaves .* bytes of extensions before the voxels/);
    // 1 MiB of zeros before anything else: no NIfTI header at the start of the stream.
    const zeros = join(tmp, "zeros.nii.gz");
    writeFileSync(zeros, zeroBomb(new Uint8Array(0), 64));
    expect(() => readNifti(zeros)).toThrow(/zeros\.nii\.gz is not a NIfTI file \(sizeof_hdr = 0/);
  });

  it("reads voxels at an offset that is not a multiple of the item size from memory too", () => {
    for (const name of ["misaligned_int16.nii", "misaligned_float64.nii.gz", "misaligned_float32_scaled.nii"]) {
      const bytes = readFileSync(join(dir, name));
      // At an odd address inside a larger buffer, as a pooled Buffer may be.
      const big = new Uint8Array(bytes.length + 1);
      big.set(bytes, 1);
      const vol = decodeNifti(big.subarray(1), name);
      expect(sameBits(Float32Array.from(vol.data), f32(expected[name]!.b64)), name).toBe(true);
      expect(big.subarray(1).every((v, i) => v === bytes[i]), `${name}: input untouched`).toBe(true);
    }
  });
});

describe("checkFinite", () => {
  it("names the file and the first non-finite voxel", () => {
    const vol = readNifti(join(dir, "nan_voxel.nii"));
    expect(() => checkFinite(vol)).toThrow(/nan_voxel\.nii: voxel \(i, j, k\) = \(2, 1, 0\) \(index 7\) is NaN; 1 non-finite voxel in all/);
    expect(() => checkFinite(readNifti(join(dir, "dt_float32.nii")))).not.toThrow();
  });
});

describe("writeNifti", () => {
  const writable = readable.filter((n) => n !== "nan_voxel.nii");

  it.each(writable)("float32 round trip keeps data, affine and geometry of %s", (name) => {
    const src = readNifti(join(dir, name));
    for (const ext of [".nii", ".nii.gz"]) {
      const out = join(tmp, `rt-${name}${ext}`);
      writeNifti(out, src, src.data, "float32");
      const back = readNifti(out);
      expect(back.header.littleEndian).toBe(true);
      expect(back.datatype).toBe("float32");
      expect(back.dims).toEqual(src.dims);
      expect(back.affine).toEqual(src.affine);
      expect(back.spacing).toEqual(src.spacing);
      expect(geometry(back.header)).toEqual(geometry(src.header));
      expect([back.header.scl_slope, back.header.scl_inter]).toEqual([1, 0]);
      expect(sameBits(back.data, src.data)).toBe(true);
      const bytes = readFileSync(out);
      expect(ext === ".nii.gz" ? bytes[0] === 0x1f && bytes[1] === 0x8b : bytes.readInt32LE(0) === (src.header.version === 1 ? 348 : 540)).toBe(true);
    }
  });

  it.each([
    ["dt_uint8.nii", "uint8"],
    ["dt_int8.nii", "int16"],
    ["dt_int16.nii", "int16"],
    ["bigendian_int16.nii", "float32"],
  ] as const)("%s as %s: exact integers, NIfTI version kept", (name, dt) => {
    const src = readNifti(join(dir, name));
    const out = join(tmp, `int-${name}`);
    writeNifti(out, src, src.data, dt);
    const back = readNifti(out);
    expect(back.datatype).toBe(dt);
    expect(back.header.version).toBe(src.header.version);
    expect(back.header.bitpix).toBe({ uint8: 8, int16: 16, float32: 32 }[dt]);
    expect(Array.from(back.data)).toEqual(Array.from(src.data));
    expect(back.affine).toEqual(src.affine);
  });

  it("writes int16 label maps into a NIfTI-2 file", () => {
    const src = readNifti(join(dir, "nifti2_int16_qform.nii.gz"));
    const raw = Array.from(src.data, (v) => (v + 3) / 2); // undo slope 2, inter −3
    const out = join(tmp, "labels2.nii.gz");
    writeNifti(out, src, raw, "int16");
    const back = readNifti(out);
    expect([back.header.version, back.datatype]).toEqual([2, "int16"]);
    expect(Array.from(back.data)).toEqual(raw);
    expect(back.affine).toEqual(src.affine);
  });

  it("a mask written for an oblique qform-only volume overlays it voxel for voxel", () => {
    const src = readNifti(join(dir, "qform_only.nii.gz"));
    expect(src.header.pixdim[0]).toBe(-1); // qfac −1: a left-handed grid
    const mask = Array.from(src.data, (v) => (v > 0 ? 1 : 0));
    const out = join(tmp, "mask.nii.gz");
    writeNifti(out, src, mask, "uint8", { inputPath: join(dir, "qform_only.nii.gz") });
    const back = readNifti(out);
    expect(back.affine).toEqual(src.affine);
    // Every voxel's world position maps back to the same (i, j, k) in the mask.
    const inv = invert(back.affine);
    const [ni, nj] = src.dims;
    for (let idx = 0; idx < mask.length; idx += 7) {
      const ijk = [idx % ni, Math.floor(idx / ni) % nj, Math.floor(idx / (ni * nj)), 1];
      const world = src.affine.map((row) => row.reduce((s, a, c) => s + a * ijk[c]!, 0));
      const m = inv.map((row) => row.reduce((s, a, c) => s + a * world[c]!, 0));
      const back3 = m.slice(0, 3).map((x) => Math.round(x) + 0); // + 0: no −0
      expect(back3).toEqual(ijk.slice(0, 3));
      expect(back.data[back3[0]! + ni * (back3[1]! + nj * back3[2]!)]).toBe(mask[idx]);
    }
    expect(Array.from(back.data)).toEqual(mask);
  });

  it("keeps the 4-D single-volume dims and writes NIfTI-2 when the input is NIfTI-2", () => {
    const v4 = readNifti(join(dir, "single_volume_4d.nii.gz"));
    const out4 = join(tmp, "v4.nii");
    writeNifti(out4, v4, v4.data, "float32");
    expect(readNifti(out4).header.dim.slice(0, 5)).toEqual([4, 5, 4, 3, 1]);
    const v2 = readNifti(join(dir, "nifti2_float32.nii"));
    const out2 = join(tmp, "v2.nii");
    writeNifti(out2, v2, v2.data, "float32");
    const bytes = readFileSync(out2);
    expect(bytes.readInt32LE(0)).toBe(540);
    expect(bytes.subarray(4, 12).toString("latin1")).toBe("n+2\0\r\n\x1a\n");
    expect(Number(bytes.readBigInt64LE(168))).toBe(544);
  });

  it("refuses the input path, wrong sizes, non-integer masks and bad names, leaving no file", () => {
    const input = join(tmp, "input.nii");
    copyFileSync(join(dir, "dt_int16.nii"), input);
    const before = readFileSync(input);
    const vol = readNifti(input);
    expect(() => writeNifti(input, vol, vol.data, "int16")).toThrow(/writeNifti: refusing to write .*input\.nii: it is the input file/);
    const other = readNifti(join(dir, "dt_float32.nii"));
    expect(() => writeNifti(input, other, other.data, "float32", { inputPath: input })).toThrow(/refusing to write/);
    expect(readFileSync(input).equals(before)).toBe(true);

    const out = join(tmp, "never.nii.gz");
    expect(() => writeNifti(out, vol, new Float32Array(59), "float32")).toThrow(/data has 59 values, the volume 5×4×3 has 60 voxels/);
    const half = new Float32Array(60);
    half[13] = 0.5;
    expect(() => writeNifti(out, vol, half, "uint8")).toThrow(/value 0\.5 at index 13 is not a uint8/);
    half[13] = 40000;
    expect(() => writeNifti(out, vol, half, "int16")).toThrow(/value 40000 at index 13 is not a int16/);
    expect(() => writeNifti(join(tmp, "x.nrrd"), vol, vol.data, "float32")).toThrow(/must end in \.nii or \.nii\.gz/);
    expect(() => writeNifti(join(tmp, "no-such-dir", "x.nii"), vol, vol.data, "float32")).toThrow(/does not exist/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});

describe("niftiFromArray", () => {
  it("builds a volume whose written file reads back with the same geometry and data", () => {
    const dims: [number, number, number] = [3, 5, 2];
    const data = Float32Array.from({ length: 30 }, (_, i) => i * 0.25 - 3);
    const affine = [
      [0, 0, -2.5, 40],
      [0.5, 0, 0, -10],
      [0, -0.75, 0, 5],
      [0, 0, 0, 1],
    ];
    const vol: NiftiVolume = niftiFromArray(dims, data, { affine });
    expect(vol.spacing).toEqual([0.5, 0.75, 2.5]);
    const out = join(tmp, "made.nii.gz");
    writeNifti(out, vol, data, "float32");
    const back = readNifti(out);
    expect(back.dims).toEqual(dims);
    expect(back.affine).toEqual(affine);
    expect(back.spacing).toEqual([0.5, 0.75, 2.5]);
    expect(sameBits(back.data, data)).toBe(true);
    expect(() => niftiFromArray(dims, new Float32Array(29))).toThrow(/dims 3×5×2 \(30 voxels\) do not match data of 29 values/);
  });
});

/** 4×4 inverse by Gauss-Jordan (test helper). */
function invert(m: number[][]): number[][] {
  const a = m.map((r, i) => [...r, ...[0, 1, 2, 3].map((c) => (c === i ? 1 : 0))]);
  for (let c = 0; c < 4; c++) {
    let p = c;
    for (let r = c + 1; r < 4; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[p]![c]!)) p = r;
    [a[c], a[p]] = [a[p]!, a[c]!];
    const d = a[c]![c]!;
    for (let k = 0; k < 8; k++) a[c]![k]! /= d;
    for (let r = 0; r < 4; r++) {
      if (r === c) continue;
      const f = a[r]![c]!;
      for (let k = 0; k < 8; k++) a[r]![k]! -= f * a[c]![k]!;
    }
  }
  return a.map((r) => r.slice(4));
}
