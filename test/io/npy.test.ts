// .npy against files NumPy wrote (tools/fixtures/gen_npy.py), and our writer's
// output read back byte-exactly; NumPy-compatibility of the writer is checked
// by reading it with the same parser that reads NumPy's files plus a header
// layout check (64-byte aligned data, version 1.0 dict).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readNpy, readNpyF32, writeNpy } from "../../src/io/npy.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "io", "npy");
const expected = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as Record<
  string,
  { shape?: number[]; descr?: string; b64?: string; reject?: string }
>;
const tmp = mkdtempSync(join(tmpdir(), "npy-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function f32(b64: string): Float32Array {
  const b = Buffer.from(b64, "base64");
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

describe("readNpy", () => {
  const ok = Object.entries(expected).filter(([, e]) => !e.reject);
  it.each(ok)("reads NumPy's %s exactly (as float32)", (name, e) => {
    const a = readNpyF32(join(dir, `${name}.npy`));
    expect(a.shape).toEqual(e.shape);
    const want = f32(e.b64!);
    expect(a.data.length).toBe(want.length);
    // Bit-exact: every fixture value is representable after NumPy's own cast.
    expect(Array.from(a.data)).toEqual(Array.from(want));
  });

  it("keeps the file's dtype in readNpy", () => {
    expect(readNpy(join(dir, "i16_4x3.npy")).data).toBeInstanceOf(Int16Array);
    expect(readNpy(join(dir, "i64_3x2.npy")).data).toBeInstanceOf(BigInt64Array);
    expect(readNpy(join(dir, "bool_6.npy")).dtype).toBe("bool");
    expect(readNpy(join(dir, "f64_2x3.npy")).data).toBeInstanceOf(Float64Array);
    expect(readNpy(join(dir, "f32_scalar.npy")).shape).toEqual([]);
  });

  it.each([
    ["reject_fortran", /Fortran-order arrays are not supported \(shape \[3, 4\]\)/],
    ["reject_bigendian", /big-endian data \('>f4'\)/],
    ["reject_structured", /structured \(record\) dtypes/],
    ["reject_complex", /dtype '<c8' is not supported/],
  ])("refuses %s with a clear error naming the file", (name, msg) => {
    const p = join(dir, `${name}.npy`);
    expect(() => readNpy(p)).toThrow(msg);
    expect(() => readNpy(p)).toThrow(p);
  });

  it("refuses a non-npy file, a missing file and a truncated one", () => {
    const bad = join(tmp, "bad.npy");
    writeFileSync(bad, "hello world, not numpy");
    expect(() => readNpy(bad)).toThrow(/bad\.npy is not an \.npy file \(bad magic\)/);
    expect(() => readNpy(join(tmp, "missing.npy"))).toThrow(/cannot open .*missing\.npy/);
    const full = readFileSync(join(dir, "f32_3x4x5.npy"));
    const cut = join(tmp, "cut.npy");
    writeFileSync(cut, full.subarray(0, full.length - 5));
    expect(() => readNpy(cut)).toThrow(/cut\.npy is truncated: shape \[3, 4, 5\] f32 needs 240 data bytes, file has 235/);
  });

  /** An .npy file: magic, version, then `rest` (header length field onwards). */
  const npy = (name: string, major: number, rest: Uint8Array | string) => {
    const p = join(tmp, name);
    writeFileSync(p, Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]), Buffer.from(rest as string, "latin1")]));
    return p;
  };
  /** Preamble and header of the given length field and dict text. */
  const header = (major: number, dict: string, len = dict.length) => {
    const field = Buffer.alloc(major === 1 ? 2 : 4);
    if (major === 1) field.writeUInt16LE(len);
    else field.writeUInt32LE(len);
    return Buffer.concat([field, Buffer.from(dict, "latin1")]);
  };
  const dict = (shape: string, descr = "<f4") => `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;

  it.each([
    // name, file after magic+version, error
    ["short-v2", [2, Buffer.from([4, 0])], /short-v2\.npy is truncated inside its preamble \(10 bytes; version 2\.0 needs 12\)/],
    ["short-v1", [1, Buffer.from([4])], /short-v1\.npy is truncated inside its preamble/],
    ["magic-only", [1, Buffer.alloc(0)], /magic-only\.npy is truncated inside its preamble \(8 bytes; version 1\.0 needs 10\)/],
    ["long-header-v1", [1, header(1, dict("(2,)"), 60000)], /long-header-v1\.npy is truncated inside its header \(it declares 60000 bytes, the file has \d+ after the preamble\)/],
    ["huge-header-v2", [2, header(2, dict("(2,)"), 0xffffffff)], /huge-header-v2\.npy: header length 4294967295 is over the 65536 bytes/],
    ["huge-shape", [1, header(1, dict("(4294967296, 4294967296, 4294967296)"))], /huge-shape\.npy is truncated: shape \[4294967296, 4294967296, 4294967296\] f32 needs 3\.\d+e\+29 data bytes, file has 0/],
    ["overflow-shape", [1, header(1, dict(`(${Array(40).fill("9007199254740991").join(", ")})`))], /overflow-shape\.npy is truncated: shape .* needs Infinity data bytes/],
    ["unsafe-dim", [1, header(1, dict("(9007199254740993,)"))], /unsafe-dim\.npy: bad shape \(9007199254740993,\)/],
    ["negative-dim", [1, header(1, dict("(3, -1)"))], /negative-dim\.npy: bad shape \(3, -1\)/],
    ["float-dim", [1, header(1, dict("(1e3,)"))], /float-dim\.npy: bad shape \(1e3,\)/],
    ["65-dims", [1, header(1, dict(`(${Array(65).fill("1").join(", ")})`))], /65-dims\.npy: shape has 65 dimensions, more than NumPy's 64$/],
    // Header text quoted in a message is cut (at 200 characters), not echoed whole.
    ["no-dtype-long", [1, header(1, `{'descr': 7, ${"'pad': 0, ".repeat(600)}}`)], /no-dtype-long\.npy: header has no dtype: \{'descr': 7, 'pad.{150,200}\.\.\. \(6\d{3} characters\)$/],
    ["bad-shape-long", [1, header(1, dict(`(${Array(3000).fill("x").join(", ")})`))], /bad-shape-long\.npy: bad shape \(x, x.{150,200}\.\.\. \(\d{4} characters\)\)$/],
  ] as const)("refuses %s with an error naming the file and the problem", (name, [major, rest], msg) => {
    const p = npy(`${name}.npy`, major, rest);
    let err: unknown;
    try {
      readNpy(p);
    } catch (e) {
      err = e;
    }
    expect((err as Error).name).toBe("NpyError");
    expect(String(err)).toMatch(msg);
  });

  it("reads a zero-length dimension as an empty array, however large the others", () => {
    const p = npy("empty-huge.npy", 1, header(1, dict(`(${Array(40).fill("9007199254740991").join(", ")}, 0)`)));
    const a = readNpy(p);
    expect(a.data.length).toBe(0);
    expect(a.shape).toHaveLength(41);
  });
});

describe("writeNpy", () => {
  it("round-trips float32 exactly, with a NumPy-layout header", () => {
    const shape = [3, 1, 5, 2];
    const data = new Float32Array(30).map((_, i) => Math.fround(Math.sin(i) * 1e3 + (i === 7 ? NaN : 0)));
    const p = join(tmp, "rt.npy");
    writeNpy(p, data, shape);
    const bytes = readFileSync(p);
    expect(bytes[6]).toBe(1);
    const hlen = bytes.readUInt16LE(8);
    expect((10 + hlen) % 64).toBe(0);
    expect(bytes.subarray(10, 10 + hlen).toString("latin1")).toMatch(
      /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3, 1, 5, 2\), \} *\n$/,
    );
    const back = readNpyF32(p);
    expect(back.shape).toEqual(shape);
    expect(Buffer.from(back.data.buffer).equals(Buffer.from(data.buffer))).toBe(true);
  });

  it("writes the NumPy tuple spelling for 1-D and 0-D shapes, and other dtypes", () => {
    const p = join(tmp, "one.npy");
    writeNpy(p, new Float32Array([1, 2, 3]), [3]);
    expect(readFileSync(p).toString("latin1")).toContain("'shape': (3,), }");
    writeNpy(p, new Float32Array([4]), []);
    expect(readNpyF32(p)).toMatchObject({ shape: [] });
    writeNpy(p, new Int32Array([-5, 6]), [1, 2]);
    const i = readNpy(p);
    expect(i.dtype).toBe("i32");
    expect(Array.from(i.data as Int32Array)).toEqual([-5, 6]);
  });

  it("rejects a shape that does not match the data, and overwriting the input", () => {
    const p = join(tmp, "bad-shape.npy");
    expect(() => writeNpy(p, new Float32Array(6), [4, 2])).toThrow(/shape \[4, 2\] holds 8 values, data has 6/);
    expect(existsSync(p)).toBe(false);
    const input = join(tmp, "input.npy");
    writeNpy(input, new Float32Array([1, 2]), [2]);
    expect(() => writeNpy(input, new Float32Array([3, 4]), [2], { inputPath: input })).toThrow(/refusing to write .*input file/);
    expect(Array.from(readNpyF32(input).data)).toEqual([1, 2]);
    // No temporary files are left behind.
    expect(readdirSync(tmp).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});
