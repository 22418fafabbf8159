// .npy files built byte by byte against the format (numpy.lib.format): every
// dtype the writer knows round-trips with its own descr, headers pad the data
// to 64 bytes in version 1.0 and switch to 2.0 past 65535 bytes, and the
// reader's checks of the preamble, the header dict and Fortran order.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeNpy, readNpy, readNpyF32, writeNpy } from "../../src/io/npy.js";

const tmp = mkdtempSync(join(tmpdir(), "npy-format-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** An .npy file from a version, a header dict (as text) and data bytes. */
function npyFile(name: string, major: number, dict: string, data: Uint8Array = new Uint8Array(0)): string {
  const pre = major === 1 ? 10 : 12;
  const head = new Uint8Array(pre + dict.length);
  head.set(MAGIC);
  head[6] = major;
  const view = new DataView(head.buffer);
  if (major === 1) view.setUint16(8, dict.length, true);
  else view.setUint32(8, dict.length, true);
  head.set(Buffer.from(dict, "latin1"), pre);
  const p = join(tmp, name);
  writeFileSync(p, Buffer.concat([head, data]));
  return p;
}

/** The header's version, declared length and dict text of encodeNpy's output. */
function headerOf(head: Uint8Array): { major: number; len: number; pre: number; dict: string } {
  const major = head[6]!;
  const pre = major === 1 ? 10 : 12;
  const view = new DataView(head.buffer, head.byteOffset);
  const len = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  return { major, len, pre, dict: Buffer.from(head.subarray(pre)).toString("latin1") };
}

describe("writer", () => {
  it.each([
    [Float32Array, "<f4", "f32"],
    [Float64Array, "<f8", "f64"],
    [Int8Array, "|i1", "i8"],
    [Uint8Array, "|u1", "u8"],
    [Int16Array, "<i2", "i16"],
    [Uint16Array, "<u2", "u16"],
    [Int32Array, "<i4", "i32"],
    [Uint32Array, "<u4", "u32"],
  ] as const)("%o is written as '%s' and read back as %s with its values", (Type, descr, dtype) => {
    const data = new Type([0, 1, 2, 3, 100, 7]);
    const [head] = encodeNpy(data, [2, 3]);
    expect(headerOf(head!).dict).toContain(`'descr': '${descr}'`);
    const p = join(tmp, `${dtype}.npy`);
    writeNpy(p, data, [2, 3]);
    const back = readNpy(p);
    expect(back.dtype).toBe(dtype);
    expect(back.data).toBeInstanceOf(Type);
    expect([...back.data]).toEqual([...data]);
    const asF32 = readNpyF32(p);
    expect(asF32.dtype).toBe("f32");
    expect(asF32.shape).toEqual([2, 3]);
    expect([...asF32.data]).toEqual([0, 1, 2, 3, 100, 7]);
  });

  it("pads every version 1.0 header so the data starts on a 64-byte boundary, the dict ending in a newline", () => {
    for (const shape of [[], [1], [12345], [2, 3], [0, 123456789, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 100000], Array(40).fill(1)]) {
      const [head] = encodeNpy(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
      const h = headerOf(head!);
      expect(h.major, JSON.stringify(shape)).toBe(1);
      expect(head!.byteLength % 64, JSON.stringify(shape)).toBe(0);
      expect(h.len).toBe(head!.byteLength - 10);
      expect(h.dict.endsWith("\n")).toBe(true);
      expect(h.dict.trimEnd()).toMatch(/^\{.*\}$/);
    }
  });

  it("switches to version 2.0 (4-byte length) only when the padded header passes 65535 bytes", () => {
    const dictFor = (dims: number) => `{'descr': '<f4', 'fortran_order': False, 'shape': (${Array(dims).fill(1).join(", ")}), }`;
    // The largest shape of ones whose version 1.0 header still fits.
    let dims = 1;
    while (Math.ceil((10 + dictFor(dims + 1).length + 1) / 64) * 64 - 10 <= 0xffff) dims++;
    for (const [n, major] of [[dims, 1], [dims + 1, 2]] as const) {
      const [head] = encodeNpy(new Float32Array(1), Array(n).fill(1));
      const h = headerOf(head!);
      expect(h.major, `${n} dimensions`).toBe(major);
      expect(h.len).toBe(head!.byteLength - h.pre);
      expect(head!.byteLength % 64).toBe(0);
      expect(h.dict).toContain(dictFor(n).slice(0, -3));
    }
  });

  it("refuses a negative or fractional dimension", () => {
    for (const shape of [[-1, -2], [1.5, 2], [2, NaN]]) {
      expect(() => encodeNpy(new Float32Array(2), shape), JSON.stringify(shape)).toThrow(`writeNpy: bad shape [${shape.join(", ")}]`);
    }
  });
});

describe("reader", () => {
  const f32Bytes = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

  it("reads Python 2's long shapes, single-byte big-endian data and Fortran order of one non-1 dimension", () => {
    expect(readNpy(npyFile("long.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L), }\n", f32Bytes([1, 2]))).shape).toEqual([2, 1]);
    const u8 = readNpy(npyFile("be_u8.npy", 1, "{'descr': '>u1', 'fortran_order': False, 'shape': (3,), }\n", new Uint8Array([7, 8, 9])));
    expect([...u8.data]).toEqual([7, 8, 9]);
    const f = readNpy(npyFile("fortran_col.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3, 1), }\n", f32Bytes([1, 2, 3])));
    expect([...f.data]).toEqual([1, 2, 3]);
    expect(() => readNpy(npyFile("fortran_2d.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", f32Bytes([1, 2, 3, 4])))).toThrow(
      /Fortran-order arrays are not supported \(shape \[2, 2\]\)/,
    );
  });

  it("reads up to NumPy's 64 dimensions and refuses more", () => {
    const p64 = join(tmp, "dims64.npy");
    writeNpy(p64, new Float32Array([4]), Array<number>(64).fill(1));
    expect(readNpy(p64).shape).toHaveLength(64);
    const p65 = join(tmp, "dims65.npy");
    writeNpy(p65, new Float32Array([4]), Array<number>(65).fill(1));
    expect(() => readNpy(p65)).toThrow(/dims65\.npy: shape has 65 dimensions, more than NumPy's 64/);
  });

  it("reads the header's keys with or without spaces around the colon, and a version 2.0 or 3.0 preamble", () => {
    const tight = "{'descr':'<f4','fortran_order':False,'shape':(2,),}\n";
    const loose = '{"descr"  :  "<f4", "fortran_order" :  False, "shape"  :  (2,), }\n';
    for (const [i, dict] of [tight, loose].entries()) {
      for (const major of [1, 2, 3]) {
        const a = readNpy(npyFile(`keys_${i}_${major}.npy`, major, dict, f32Bytes([5, 6])));
        expect([...a.data], `${dict} v${major}`).toEqual([5, 6]);
      }
    }
  });

  it("refuses a header without fortran_order or shape, naming what is missing", () => {
    const noOrder = npyFile("no_order.npy", 1, "{'descr': '<f4', 'shape': (2,), }\n", f32Bytes([1, 2]));
    expect(() => readNpy(noOrder)).toThrow(/no_order\.npy: header has no fortran_order: \{'descr': '<f4', 'shape': \(2,\), \}$/);
    const noShape = npyFile("no_shape.npy", 1, "{'descr': '<f4', 'fortran_order': False, }\n", f32Bytes([1, 2]));
    expect(() => readNpy(noShape)).toThrow(/no_shape\.npy: header has no shape: \{'descr': '<f4', 'fortran_order': False, \}$/);
    const noDescr = npyFile("no_descr.npy", 1, "{'fortran_order': False, 'shape': (2,), }\n", f32Bytes([1, 2]));
    expect(() => readNpy(noDescr)).toThrow(/no_descr\.npy: header has no dtype: \{'fortran_order': False, 'shape': \(2,\), \}$/);
  });

  it("refuses an unknown version, a cut preamble and a header longer than 65536 bytes", () => {
    expect(() => readNpy(npyFile("v4.npy", 4, "{}"))).toThrow(/v4\.npy: unsupported \.npy format version 4\.0/);
    const magicOnly = join(tmp, "magic_only.npy");
    writeFileSync(magicOnly, Buffer.from([...MAGIC, 1]));
    expect(() => readNpy(magicOnly)).toThrow(/magic_only\.npy is truncated inside its preamble \(7 bytes\)/);
    const v2cut = join(tmp, "v2_cut.npy");
    writeFileSync(v2cut, Buffer.from([...MAGIC, 2, 0, 0, 0]));
    expect(() => readNpy(v2cut)).toThrow(/v2_cut\.npy is truncated inside its preamble \(10 bytes; version 2\.0 needs 12\)/);
    const exact = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    const at = (n: number) => exact + " ".repeat(n - exact.length - 1) + "\n";
    expect([...readNpy(npyFile("h65536.npy", 2, at(65536), f32Bytes([3]))).data]).toEqual([3]);
    expect(() => readNpy(npyFile("h65537.npy", 2, at(65537), f32Bytes([3])))).toThrow(/header length 65537 is over the 65536 bytes/);
  });

  it("says how much of a cut header the file holds", () => {
    const p = join(tmp, "cut_header.npy");
    const head = new Uint8Array(10 + 20);
    head.set(MAGIC);
    head[6] = 1;
    new DataView(head.buffer).setUint16(8, 100, true);
    writeFileSync(p, head);
    expect(() => readNpy(p)).toThrow(/cut_header\.npy is truncated inside its header \(it declares 100 bytes, the file has 20 after the preamble\)/);
  });
});
