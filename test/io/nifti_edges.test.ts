// NIfTI reading and writing at the edges the mutation run found untested
// (issue 24): the buffer-size limit at its exact byte, 1-D files, gzip headers
// behind a long gzip comment, gzip output past the slack, error classes and
// default names, the input left unchanged, integer narrowing with an offset,
// and the header fields writeNifti fills in itself.
import { constants as bufferConstants } from "node:buffer";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateRawSync, gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { checkFinite, decodeNifti, encodeNiftiHeader, NiftiError, niftiFromArray, parseNiftiHeader, readNifti, writeNifti, type NiftiVolume } from "../../src/io/nifti.js";
import { baseHeader, niiOf } from "./nifti_build.js";

const tmp = mkdtempSync(join(tmpdir(), "nifti-edges-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The NiftiError `fn` throws. */
function niftiError(fn: () => unknown): NiftiError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(NiftiError);
  expect((err as Error).name).toBe("NiftiError");
  return err as NiftiError;
}

const openFds = (): number => readdirSync("/proc/self/fd").length;

describe("reading: limits and names", () => {
  it("names a buffer '<buffer>' when no path is given", () => {
    expect(niftiError(() => parseNiftiHeader(new Uint8Array(10))).message).toMatch(/^readNifti: <buffer>/);
    expect(niftiError(() => decodeNifti(new Uint8Array(10))).message).toMatch(/^readNifti: <buffer>/);
    expect(niftiError(() => encodeNiftiHeader({ ...baseHeader(), regular: 256 })).message).toMatch(/^writeNifti: <buffer>: header field regular = 256/);
  });

  it("says a 1-D or 2-D file is not a volume, and that dim[0] = 0 or 8 is invalid", () => {
    for (const nd of [1, 2]) {
      const e = niftiError(() => decodeNifti(niiOf({ dim: [nd, 4, 1, 1, 1, 1, 1, 1] }, new Float32Array(4)), "line.nii"));
      expect(e.message).toMatch(new RegExp(`^readNifti: line\\.nii is a ${nd}-D image \\(dim = \\[`));
    }
    for (const nd of [0, 8]) expect(niftiError(() => decodeNifti(niiOf({ dim: [nd, 2, 2, 2, 1, 1, 1, 1] }, new Float32Array(8)))).message).toMatch(new RegExp(`invalid dim\\[0\\] = ${nd}`));
  });

  it("names an unknown datatype by its code", () => {
    expect(niftiError(() => decodeNifti(niiOf({ datatype: 999, bitpix: 8 }, new Uint8Array(8)))).message).toMatch(/datatype code 999 is not supported/);
  });

  it("refuses voxels that cannot fit in one buffer, to the byte", () => {
    // offset + bytes + 1 MiB slack + 1 must not pass buffer.constants.MAX_LENGTH (NIfTI-2: 64-bit dims).
    const offset = 544;
    const fits = bufferConstants.MAX_LENGTH - 2 ** 20 - 1 - offset;
    const head = (n: number): Uint8Array => encodeNiftiHeader({ ...baseHeader(2), datatype: 2, bitpix: 8, dim: [3, n, 1, 1, 1, 1, 1, 1] });
    const opts = { maxVoxels: Number.MAX_SAFE_INTEGER };
    expect(niftiError(() => decodeNifti(head(fits), "big.nii", opts)).message).toMatch(/^readNifti: big\.nii is truncated: /);
    expect(niftiError(() => decodeNifti(head(fits + 1), "big.nii", opts)).message).toBe(`readNifti: big.nii: ${fits + 1}×1×1 uint8 voxels do not fit in one buffer of this Node.js`);
  });

  it("says how much of the voxels a cut file holds, read from disk or from memory", () => {
    const file = niiOf({}, new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]));
    const cut = file.subarray(0, 352 + 10);
    const p = join(tmp, "cut.nii");
    writeFileSync(p, cut);
    const want = `is truncated: 2×2×2 float32 voxels need 32 bytes from offset 352, the file has 10`;
    expect(niftiError(() => decodeNifti(cut, "cut.nii")).message).toBe(`readNifti: cut.nii ${want}`);
    expect(niftiError(() => readNifti(p)).message).toBe(`readNifti: ${p} ${want}`);
    const gz = gzipSync(cut);
    expect(niftiError(() => decodeNifti(gz, "cut.nii.gz")).message).toBe(`readNifti: cut.nii.gz is truncated: 2×2×2 float32 voxels need 32 bytes from offset 352, the decompressed file has 10`);
  });

  it("reads a file's voxels and gives its descriptor back, and names a file it cannot open", () => {
    const p = join(tmp, "ok.nii");
    writeFileSync(p, niiOf({}, new Float32Array([1, 2, 3, 4, 5, 6, 7, 8])));
    const fds = openFds();
    expect([...readNifti(p).data]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(niftiError(() => readNifti(join(tmp, "nope.nii"))).message).toMatch(/^readNifti: cannot read .*nope\.nii: ENOENT/);
    expect(openFds()).toBe(fds);
  });
});

describe("reading: gzip", () => {
  it("tells gzip by both magic bytes", () => {
    for (const head of [
      [0x1f, 0x00],
      [0x00, 0x8b],
    ]) {
      const b = new Uint8Array(400);
      b.set(head);
      expect(niftiError(() => decodeNifti(b, "x.nii")).message, String(head)).not.toMatch(/gzip/);
    }
    expect(niftiError(() => decodeNifti(Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff]), "x.nii.gz")).message).toMatch(/^readNifti: x\.nii\.gz: gzip data is truncated or corrupt \(/);
  });

  it("reads a header that lies behind a 20 kB gzip comment", () => {
    const nii = niiOf({}, new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]));
    const gz = Buffer.concat([
      Buffer.from([0x1f, 0x8b, 8, 0x10, 0, 0, 0, 0, 0, 3]), // FCOMMENT
      Buffer.alloc(20000, 0x61),
      Buffer.from([0]),
      deflateRawSync(nii),
      Buffer.alloc(8),
    ]);
    gz.writeUInt32LE(crc32(nii) >>> 0, gz.length - 8);
    gz.writeUInt32LE(nii.length, gz.length - 4);
    expect([...decodeNifti(gz, "comment.nii.gz").data]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("inflates a volume larger than the trailing slack, and refuses more than the header declares, saying how much it declares", () => {
    const n = 2 ** 20; // 4 MiB of float32
    const vals = new Float32Array(n).map((_, i) => i % 251);
    const nii = niiOf({ dim: [3, 1024, 1024, 1, 1, 1, 1, 1] }, vals);
    const got = decodeNifti(gzipSync(nii, { level: 1 }), "big.nii.gz").data;
    expect(got.length).toBe(n);
    expect(got[n - 1]).toBe((n - 1) % 251);
    const small = niiOf({ dim: [3, 2, 2, 2, 1, 1, 1, 1] }, new Float32Array(8));
    const bomb = gzipSync(Buffer.concat([small, Buffer.alloc(2 ** 20 + 1)]));
    expect(niftiError(() => decodeNifti(bomb, "bomb.nii.gz")).message).toBe(
      `readNifti: bomb.nii.gz: the gzip stream holds more than the 384 bytes its header declares (2×2×2 float32 from offset 352); refusing to inflate it`,
    );
  });
});

describe("reading: values", () => {
  it("leaves a big-endian input buffer unchanged (the byte swap works on its own copy)", () => {
    const h = baseHeader();
    const le = niiOf({ datatype: 4, bitpix: 16 }, Int16Array.from([1, -2, 3, 4, 5, 6, 7, 258]));
    // The same file big-endian: header fields and voxels byte-swapped.
    const parsed = parseNiftiHeader(le);
    expect(parsed.littleEndian).toBe(true);
    const be = Buffer.from(le);
    be.writeInt32BE(348, 0);
    for (const [off, size] of [
      [40, 2], [42, 2], [44, 2], [46, 2], [48, 2], [50, 2], [52, 2], [54, 2], [70, 2], [72, 2], [76, 4], [80, 4], [84, 4], [88, 4], [108, 4], [112, 4], [252, 2], [254, 2],
      [280, 4], [284, 4], [288, 4], [292, 4], [296, 4], [300, 4], [304, 4], [308, 4], [312, 4], [316, 4], [320, 4], [324, 4],
    ] as const) be.subarray(off, off + size).reverse();
    for (let p = 352; p < be.length; p += 2) be.subarray(p, p + 2).reverse();
    const before = Buffer.from(be);
    const v = decodeNifti(be, "be.nii");
    expect(v.header.littleEndian).toBe(false);
    expect([...v.data]).toEqual([1, -2, 3, 4, 5, 6, 7, 258]);
    expect(be.equals(before)).toBe(true);
    expect(h.littleEndian).toBe(true);
  });

  it("narrows scaled integers to int16 only when the scaled range fits, offset included", () => {
    const fits = decodeNifti(niiOf({ datatype: 8, bitpix: 32, scl_slope: 1, scl_inter: 100 }, Int32Array.from([0, 32667, 0, 0, 0, 0, 0, 0]))).data;
    expect(fits).toBeInstanceOf(Int16Array);
    expect(fits[1]).toBe(32767);
    const over = decodeNifti(niiOf({ datatype: 8, bitpix: 32, scl_slope: 1, scl_inter: 100 }, Int32Array.from([0, 32700, 0, 0, 0, 0, 0, 0]))).data;
    expect(over).toBeInstanceOf(Float32Array);
    expect(over[1]).toBe(32800);
  });

  it("names the first non-finite voxel and counts them all, an in-memory volume as 'NIfTI volume'", () => {
    const d = new Float32Array(8);
    d[5] = NaN;
    expect(niftiError(() => checkFinite(niftiFromArray([2, 2, 2], d))).message).toBe("NIfTI volume: voxel (i, j, k) = (1, 0, 1) (index 5) is NaN; 1 non-finite voxel in all");
    d[7] = -Infinity;
    expect(niftiError(() => checkFinite(niftiFromArray([2, 2, 2], d))).message).toMatch(/is NaN; 2 non-finite voxels in all$/);
  });
});

describe("writing", () => {
  const like = (): NiftiVolume => niftiFromArray([2, 2, 2], new Float32Array(8));

  it("builds a little-endian volume with the dims it was given", () => {
    const v = niftiFromArray([2, 1, 3], new Float32Array(6));
    expect(v.dims).toEqual([2, 1, 3]);
    expect(v.header.littleEndian).toBe(true);
    expect([v.header.intent_name, v.header.descrip, v.header.aux_file, v.header.data_type, v.header.db_name]).toEqual(["", "", "", "", ""]);
  });

  it("fills in its own descrip and blanks the input's intent and aux_file", () => {
    const src = like();
    const h = { ...src.header, intent_name: "label", aux_file: "lut.txt", descrip: "input scan", data_type: "dt", db_name: "db" };
    const p = join(tmp, "fields.nii");
    writeNifti(p, { ...src, header: h }, new Float32Array(8), "float32");
    const back = parseNiftiHeader(readFileSync(p));
    expect([back.descrip, back.intent_name, back.aux_file, back.data_type, back.db_name]).toEqual(["segvol-webgpu", "", "", "dt", "db"]);
    writeNifti(p, like(), new Float32Array(8), "float32", { descrip: "mask" });
    expect(parseNiftiHeader(readFileSync(p)).descrip).toBe("mask");
  });

  it("writes uint8 and int16 from a Float32Array as integers, refusing non-integers and values out of range, writing nothing then", () => {
    for (const dt of ["uint8", "int16"] as const) {
      const p = join(tmp, `ints_${dt}.nii`);
      writeNifti(p, like(), Float32Array.from([0, 1, 2, 3, 4, 5, 6, 200]), dt);
      const v = readNifti(p);
      expect(v.datatype, dt).toBe(dt);
      expect([...v.data], dt).toEqual([0, 1, 2, 3, 4, 5, 6, 200]);
      const q = join(tmp, `frac_${dt}.nii`);
      expect(niftiError(() => writeNifti(q, like(), Float32Array.from([0, 1.5, 0, 0, 0, 0, 0, 0]), dt)).message).toBe(`writeNifti: ${q}: value 1.5 at index 1 is not a ${dt} (integer in [${dt === "uint8" ? "0, 255" : "-32768, 32767"}])`);
      expect(readdirSync(tmp)).not.toContain(`frac_${dt}.nii`);
      const [lo, hi] = dt === "uint8" ? [0, 255] : [-32768, 32767];
      for (const x of [lo - 1, hi + 1]) expect(niftiError(() => writeNifti(q, like(), Float32Array.from([x, 0, 0, 0, 0, 0, 0, 0]), dt)).message, `${dt} ${x}`).toContain(`value ${x} at index 0 is not a ${dt}`);
    }
  });

  it("refuses a datatype it does not write, before writing anything", () => {
    const p = join(tmp, "int32.nii");
    expect(niftiError(() => writeNifti(p, like(), new Float32Array(8), "int32" as "uint8")).message).toBe(`writeNifti: ${p}: cannot write datatype int32`);
    expect(readdirSync(tmp)).not.toContain("int32.nii");
  });
});
