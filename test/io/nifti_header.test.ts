// NIfTI headers field by field and volumes built in memory: each header field
// round-trips at the limits of its stored type and is refused one past them;
// dim is checked; integer voxels are held as int16 exactly when every
// (scaled) value fits; the qform follows the quaternion and qfac; and
// niftiFromArray checks what it is given.
import { describe, expect, it } from "vitest";
import {
  decodeNifti,
  encodeNiftiHeader,
  niftiFromArray,
  parseNiftiHeader,
  qformAffine,
  type NiftiHeader,
} from "../../src/io/nifti.js";
import { baseHeader, niiOf } from "./nifti_build.js";

const INT32 = { datatype: 8, bitpix: 32 };
const INT16 = { datatype: 4, bitpix: 16 };
const FLOAT64 = { datatype: 64, bitpix: 64 };

describe("header fields", () => {
  // NIfTI-1 fields of each integer type, with the type's range.
  const limits: [keyof NiftiHeader, number, number][] = [
    ["regular", 0, 255], // u8
    ["dim_info", 0, 255], // u8
    ["slice_code", 0, 255], // u8
    ["xyzt_units", 0, 255], // u8
    ["session_error", -32768, 32767], // i16
    ["slice_end", -32768, 32767], // i16
    ["intent_code", -32768, 32767], // i16
    ["glmax", -(2 ** 31), 2 ** 31 - 1], // i32
    ["extents", -(2 ** 31), 2 ** 31 - 1], // i32
  ];

  it.each(limits)("%s round-trips at %d and %d, and is refused one past either", (field, lo, hi) => {
    for (const value of [lo, hi, lo + 1, hi - 1]) {
      expect(parseNiftiHeader(encodeNiftiHeader({ ...baseHeader(), [field]: value }))[field], `${field} = ${value}`).toBe(value);
    }
    for (const value of [lo - 1, hi + 1, lo + 0.5]) {
      expect(() => encodeNiftiHeader({ ...baseHeader(), [field]: value }, "out.nii")).toThrow(
        `writeNifti: out.nii: header field ${field} = ${value} does not fit`,
      );
    }
  });

  it("dims round-trip as i16 in NIfTI-1 and i64 in NIfTI-2", () => {
    const dim = [3, 32767, 1, 2, 1, 1, 1, 1];
    expect(parseNiftiHeader(encodeNiftiHeader({ ...baseHeader(1), dim })).dim).toEqual(dim);
    expect(() => encodeNiftiHeader({ ...baseHeader(1), dim: [3, 32768, 1, 2, 1, 1, 1, 1] })).toThrow(/header field dim\[1\] = 32768 does not fit i16/);
    const big = [3, 2 ** 40, 1, 1, 1, 1, 1, 1];
    expect(parseNiftiHeader(encodeNiftiHeader({ ...baseHeader(2), dim: big })).dim).toEqual(big);
  });

  it("a NIfTI-2 integer beyond ±(2^53 − 1) is refused, naming its byte", () => {
    for (const n of [2n ** 53n - 1n, -(2n ** 53n - 1n)]) {
      const bytes = encodeNiftiHeader(baseHeader(2));
      new DataView(bytes.buffer).setBigInt64(24, n, true); // dim[1]
      expect(parseNiftiHeader(bytes).dim[1]).toBe(Number(n));
    }
    for (const n of [2n ** 53n, -(2n ** 53n)]) {
      const bytes = encodeNiftiHeader(baseHeader(2));
      new DataView(bytes.buffer).setBigInt64(24, n, true);
      expect(() => parseNiftiHeader(bytes, "big.nii")).toThrow(`readNifti: big.nii: header integer ${n} at byte 24 is out of range`);
    }
  });

  it("strings are cut at their field's length", () => {
    const h = parseNiftiHeader(encodeNiftiHeader({ ...baseHeader(), descrip: "d".repeat(100), intent_name: "i".repeat(20) }));
    expect(h.descrip).toBe("d".repeat(80));
    expect(h.intent_name).toBe("i".repeat(16));
  });

  it("a file shorter than a header is not a NIfTI file; one of exactly 4 bytes is read as far as it goes", () => {
    expect(() => parseNiftiHeader(new Uint8Array(3), "x")).toThrow("readNifti: x is not a NIfTI file (3 bytes)");
    const four = new Uint8Array(4);
    new DataView(four.buffer).setInt32(0, 348, true);
    expect(() => parseNiftiHeader(four, "x")).toThrow(/x/);
    expect(() => parseNiftiHeader(four, "x")).not.toThrow(/\(4 bytes\)/);
  });
});

describe("header size, magic bytes and voxel offset", () => {
  const voxels = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);

  it("a header alone, exactly 348 or 540 bytes, parses", () => {
    for (const version of [1, 2] as const) {
      const bytes = encodeNiftiHeader(baseHeader(version)).subarray(0, version === 1 ? 348 : 540);
      expect(parseNiftiHeader(bytes).version).toBe(version);
      expect(() => parseNiftiHeader(bytes.subarray(0, bytes.byteLength - 1), "h.nii")).toThrow(
        `readNifti: h.nii is truncated inside its NIfTI-${version} header (${bytes.byteLength - 1} of ${bytes.byteLength} bytes)`,
      );
    }
  });

  it("names the little-endian sizeof_hdr of a file that is not NIfTI", () => {
    const bytes = new Uint8Array(400);
    new DataView(bytes.buffer).setInt32(0, 1234, true);
    expect(() => parseNiftiHeader(bytes, "x.nii")).toThrow("readNifti: x.nii is not a NIfTI file (sizeof_hdr = 1234, expected 348 or 540)");
  });

  it("refuses a NIfTI-2 header whose end-of-line check bytes were altered", () => {
    const bytes = encodeNiftiHeader(baseHeader(2));
    expect(parseNiftiHeader(bytes).version).toBe(2);
    bytes[8] = 0x0a; // "\r\n" → "\n\n", as a text-mode transfer does
    expect(() => parseNiftiHeader(bytes, "t.nii")).toThrow("readNifti: t.nii: NIfTI-2 header is corrupt (end-of-line check bytes altered");
  });

  it("reads voxels from vox_offset, or right after the header and extension flag when it points inside the header", () => {
    expect([...decodeNifti(niiOf({ vox_offset: 0 }, voxels)).data]).toEqual([...voxels]);
    expect([...decodeNifti(niiOf({ vox_offset: 100 }, voxels)).data]).toEqual([...voxels]);
    // vox_offset 348: the voxels start where the extension flag would be.
    const at348 = niiOf({ vox_offset: 348 }, voxels).subarray(0, 348);
    const file = new Uint8Array(348 + 32);
    file.set(at348);
    file.set(new Uint8Array(voxels.buffer), 348);
    expect([...decodeNifti(file).data]).toEqual([...voxels]);
  });

  it("accepts up to 64 MiB of extensions before the voxels, and refuses more before reading them", () => {
    // NIfTI-2, whose vox_offset is an integer (NIfTI-1's float32 cannot hold limit + 1).
    const limit = 544 + 64 * 2 ** 20;
    expect(() => decodeNifti(niiOf({ vox_offset: limit }, voxels, 2), "e.nii")).toThrow(/e\.nii is truncated/);
    expect(() => decodeNifti(niiOf({ vox_offset: limit + 1 }, voxels, 2), "e.nii")).toThrow(
      `readNifti: e.nii: vox_offset ${limit + 1} leaves ${limit + 1 - 540} bytes of extensions before the voxels; at most ${64 * 2 ** 20} are accepted`,
    );
  });

  it("says how many voxel bytes a cut file holds", () => {
    const file = niiOf({}, voxels);
    expect(decodeNifti(file).data).toHaveLength(8);
    expect(() => decodeNifti(file.subarray(0, file.byteLength - 1), "cut.nii")).toThrow(
      "readNifti: cut.nii is truncated: 2×2×2 float32 voxels need 32 bytes from offset 352, the file has 31",
    );
    expect(() => decodeNifti(file.subarray(0, 350), "cut.nii")).toThrow("the file has 0");
  });
});

describe("dim checks", () => {
  const voxels = new Float32Array(8);

  it("accepts 3 to 7 dimensions when those past the third are 1", () => {
    for (const nd of [3, 4, 5, 6, 7]) {
      const dim = [nd, 2, 2, 2, 1, 1, 1, 1];
      expect(decodeNifti(niiOf({ dim }, voxels)).dims, `dim[0] = ${nd}`).toEqual([2, 2, 2]);
    }
  });

  it("refuses dim[0] outside 1..7 and any used dimension below 1", () => {
    for (const nd of [0, 8, -1]) {
      expect(() => decodeNifti(niiOf({ dim: [nd, 2, 2, 2, 1, 1, 1, 1] }, voxels), "v.nii")).toThrow(`readNifti: v.nii: invalid dim[0] = ${nd}`);
    }
    for (const a of [1, 2, 3, 5, 7]) {
      const dim = [7, 2, 2, 2, 1, 1, 1, 1];
      dim[a] = 0;
      expect(() => decodeNifti(niiOf({ dim }, voxels), "v.nii"), `dim[${a}] = 0`).toThrow(`readNifti: v.nii: dimension ${a} has size 0`);
    }
    // Dimensions past dim[0] are not used, whatever they hold.
    expect(decodeNifti(niiOf({ dim: [4, 2, 2, 2, 1, 0, -3, 9] }, voxels)).dims).toEqual([2, 2, 2]);
  });
});

describe("integer voxels", () => {
  it("int32 values within int16 are held as int16, one past either end as float32", () => {
    for (const values of [[-32768, 0, 5, 32767, 1, 2, 3, 4], [32767, -32768, 0, 0, 0, 0, 0, 7]]) {
      const vol = decodeNifti(niiOf(INT32, Int32Array.from(values)));
      expect(vol.data).toBeInstanceOf(Int16Array);
      expect([...vol.data]).toEqual(values);
    }
    // The largest value first and last, so that both ends of the range are found wherever they are.
    for (const values of [[32768, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, -32769], [40000, -1, -2, -3, -4, -5, -6, -7]]) {
      const vol = decodeNifti(niiOf(INT32, Int32Array.from(values)));
      expect(vol.data).toBeInstanceOf(Float32Array);
      expect([...vol.data]).toEqual(values);
    }
  });

  it("integer scaling keeps int16 only when the scaled values fit, whichever end overflows", () => {
    const raw = (lo: number, hi: number) => Int16Array.from([lo, hi, 0, 0, 0, 0, 0, 0]);
    const fits = decodeNifti(niiOf({ ...INT16, scl_slope: 2, scl_inter: 1 }, raw(-16384, 16383)));
    expect(fits.data).toBeInstanceOf(Int16Array);
    expect([...fits.data.subarray(0, 2)]).toEqual([-32767, 32767]);
    for (const [lo, hi, slope] of [[-20000, 100, 2], [-100, 20000, 2], [-20000, 100, -2], [-100, 20000, -2]] as const) {
      const vol = decodeNifti(niiOf({ ...INT16, scl_slope: slope, scl_inter: 0 }, raw(lo, hi)));
      expect(vol.data, `${lo}..${hi} × ${slope}`).toBeInstanceOf(Float32Array);
      expect([...vol.data.subarray(0, 2)]).toEqual([lo * slope, hi * slope]);
    }
  });

  it("float64 voxels with a zero slope are kept unscaled; a slope with a non-finite intercept is refused", () => {
    const values = Float64Array.from([1.5, -2, 3, 4, 5, 6, 7, 8]);
    const vol = decodeNifti(niiOf({ ...FLOAT64, scl_slope: 0, scl_inter: 99 }, values));
    expect([...vol.data]).toEqual([...values]);
    for (const inter of [NaN, Infinity]) {
      expect(() => decodeNifti(niiOf({ ...INT16, scl_slope: 2, scl_inter: inter }, new Int16Array(8)), "s.nii")).toThrow(
        `readNifti: s.nii: scl_slope 2 with invalid scl_inter ${inter}`,
      );
    }
  });
});

describe("qform", () => {
  const q = (b: number, c: number, d: number, qfac: number): NiftiHeader => ({
    ...baseHeader(),
    qform_code: 1,
    sform_code: 0,
    quatern_b: b,
    quatern_c: c,
    quatern_d: d,
    qoffset_x: 10,
    qoffset_y: 20,
    qoffset_z: 30,
    pixdim: [qfac, 2, 3, 4, 1, 1, 1, 1],
  });

  /** The affine with −0 read as 0. */
  const affine = (h: NiftiHeader) => qformAffine(h).map((r) => r.map((x) => x + 0));

  it("qfac −1 flips the third axis; any other value reads as 1", () => {
    expect(affine(q(0, 0, 0, -1))).toEqual([[2, 0, 0, 10], [0, 3, 0, 20], [0, 0, -4, 30], [0, 0, 0, 1]]);
    for (const qfac of [1, 0, 2]) {
      expect(affine(q(0, 0, 0, qfac)), `qfac ${qfac}`).toEqual([[2, 0, 0, 10], [0, 3, 0, 20], [0, 0, 4, 30], [0, 0, 0, 1]]);
    }
  });

  it("a quaternion longer than 1 is normalised: (b, c, d) = (1, 1, 0) turns 180° about x + y", () => {
    // R = 2uuᵀ − I with u = (1, 1, 0)/√2, columns scaled by the zooms.
    expect(affine(q(1, 1, 0, 1))).toEqual([[0, 3, 0, 10], [2, 0, 0, 20], [0, 0, -4, 30], [0, 0, 0, 1]]);
  });
});

describe("niftiFromArray", () => {
  it("puts the spacing on the affine's diagonal, each axis its own", () => {
    const vol = niftiFromArray([2, 1, 1], new Float32Array(2), { spacing: [2, 3, 4] });
    expect(vol.affine).toEqual([[2, 0, 0, 0], [0, 3, 0, 0], [0, 0, 4, 0], [0, 0, 0, 1]]);
    expect(vol.spacing).toEqual([2, 3, 4]);
  });

  it("refuses dims that are not whole numbers ≥ 1 or do not match the data, and an affine that is not 4×4", () => {
    for (const [dims, n] of [[[2, 0, 3], 0], [[1.5, 2, 2], 6], [[2, 2, 2], 7], [[-1, -1, 1], 1]] as const) {
      expect(() => niftiFromArray([...dims], new Float32Array(n)), JSON.stringify(dims)).toThrow(/niftiFromArray: dims .* do not match data of/);
    }
    const eye = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
    for (const affine of [eye.slice(0, 3), [...eye, [0, 0, 0, 1]], [eye[0]!, eye[1]!.slice(0, 3), eye[2]!, eye[3]!], [eye[0]!, eye[1]!, eye[2]!, [0, 0, 0, 1, 0]]]) {
      expect(() => niftiFromArray([1, 1, 1], new Float32Array(1), { affine })).toThrow("niftiFromArray: affine must be 4×4");
    }
  });

  it("chooses NIfTI-2 only when a dimension exceeds NIfTI-1's 32767, and writes the voxels right after the header", () => {
    expect(niftiFromArray([32767, 1, 1], new Float32Array(32767)).header.version).toBe(1);
    for (const dims of [[32768, 1, 1], [1, 32768, 1], [1, 1, 32768]] as const) {
      const h = niftiFromArray([...dims], new Float32Array(32768)).header;
      expect(h.version, JSON.stringify(dims)).toBe(2);
      expect(h.vox_offset).toBe(544);
    }
    const h1 = niftiFromArray([1, 1, 1], new Float32Array(1)).header;
    expect(h1.vox_offset).toBe(352);
    expect(h1.littleEndian).toBe(true);
  });
});
