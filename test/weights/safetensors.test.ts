import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../src/weights/dtype.js";
import { QUOTE_MAX } from "../../src/weights/quote.js";
import {
  MAX_HEADER_BYTES,
  SafetensorsError,
  SafetensorsFile,
  writeSafetensors,
  type SafetensorsErrorCode,
  type TensorToWrite,
} from "../../src/weights/safetensors.js";
import { b64bytes, errorOf, fixture, readJson, sameBytes, tempDir } from "./util.js";
import { rnd } from "../helpers/random.js";

const dir = tempDir("st");

/** Builds a header + data by hand, to corrupt it in specific ways. */
function rawFile(name: string, header: unknown, data: Uint8Array, lenOverride?: number): string {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(lenOverride ?? h.length));
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([len, h, data]));
  return p;
}

describe("safetensors write/read", () => {
  it("round-trips every dtype bit-identically, with metadata", () => {
    const f = rnd(2 * 3 * 5, 1, 100);
    const tensors: TensorToWrite[] = [
      { name: "f32", dtype: "F32", shape: [2, 3, 5], data: f },
      { name: "f16", dtype: "F16", shape: [30], data: f32ToF16Bits(f) },
      { name: "bf16", dtype: "BF16", shape: [5, 6], data: f32ToBf16Bits(f) },
      { name: "f64", dtype: "F64", shape: [3], data: new Float64Array([1e300, -0.1, 3]) },
      { name: "i64", dtype: "I64", shape: [2], data: new BigInt64Array([-(2n ** 62n), 7n]) },
      { name: "i32", dtype: "I32", shape: [3], data: new Int32Array([-5, 0, 2 ** 31 - 1]) },
      { name: "u8", dtype: "U8", shape: [4], data: new Uint8Array([0, 1, 254, 255]) },
      { name: "scalar", dtype: "F32", shape: [], data: new Float32Array([4.5]) },
      { name: "empty", dtype: "F32", shape: [0, 7], data: new Float32Array(0) },
      { name: "lazy", dtype: "F32", shape: [7], data: () => rnd(7, 2) },
    ];
    const p = join(dir, "all.safetensors");
    writeSafetensors(p, tensors, { format: "pt", note: "hi" });
    const st = SafetensorsFile.open(p);
    expect(st.keys()).toEqual(tensors.map((t) => t.name));
    expect(st.metadata).toEqual({ format: "pt", note: "hi" });
    for (const t of tensors) {
      const data = typeof t.data === "function" ? t.data() : t.data;
      expect(st.info(t.name)).toEqual({ dtype: t.dtype, shape: t.shape });
      expect(sameBytes(st.readRaw(t.name), new Uint8Array(data.buffer, data.byteOffset, data.byteLength)), t.name).toBe(true);
    }
    expect([...st.readF32("i64")]).toEqual([-(2 ** 62), 7]);
    expect([...st.readF32("u8")]).toEqual([0, 1, 254, 255]);
    expect([...st.readF32("f32")]).toEqual([...f]);
    // Widening is exact: f16 values come back exactly as their own bits decode.
    expect([...st.readF32("f16")]).toEqual([...f16BitsToF32(f32ToF16Bits(f))]);
    st.close();
    // The data starts 8-byte aligned, as the Python writer does it.
    const hlen = Number(readFileSync(p).readBigUInt64LE(0));
    expect(hlen % 8).toBe(0);
    expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("rounds f32 to f16 to nearest even, like torch's .half()", () => {
    const { tensors } = readJson<{ tensors: Record<string, { shape: number[]; f32: string; f16: string }> }>("tiny_expected.json");
    let checked = 0;
    for (const t of Object.values(tensors)) {
      const f = new Float32Array(b64bytes(t.f32).buffer);
      const h = f32ToF16Bits(f);
      expect(sameBytes(new Uint8Array(h.buffer), b64bytes(t.f16))).toBe(true);
      checked += f.length;
    }
    expect(checked).toBeGreaterThan(1000);
    // Edge cases: ties, subnormals, overflow, NaN.
    const edge = new Float32Array([65504, 65519.99, 65520, 1e-8, 2 ** -25, 2 ** -24 * 1.5, -0, Infinity, NaN, 1 + 2 ** -11, 1 + 3 * 2 ** -11]);
    const back = f16BitsToF32(f32ToF16Bits(edge));
    expect([...back.slice(0, 8)]).toEqual([65504, 65504, Infinity, 0, 0, 2 ** -23, -0, Infinity]);
    expect(Number.isNaN(back[8])).toBe(true);
    expect(back[9]).toBe(1); // tie → even
    expect(back[10]).toBe(1 + 2 ** -9); // tie → even (up)
  });

  it("reads a file written by an independent (Python) writer", () => {
    const st = SafetensorsFile.open(fixture("tiny_prefixed.safetensors"));
    const { tensors } = readJson<{ tensors: Record<string, { f32: string }> }>("tiny_expected.json");
    expect(st.keys().length).toBe(Object.keys(tensors).length);
    for (const [k, v] of Object.entries(tensors)) expect(sameBytes(st.readRaw(`model.${k}`), b64bytes(v.f32)), k).toBe(true);
    st.close();
  });

  it("writes atomically: a failing write leaves no file and keeps the old one", () => {
    const p = join(dir, "atomic.safetensors");
    writeSafetensors(p, [{ name: "a", dtype: "F32", shape: [2], data: new Float32Array([1, 2]) }]);
    const before = readFileSync(p);
    const msg = errorOf(() =>
      writeSafetensors(p, [
        { name: "a", dtype: "F32", shape: [2], data: new Float32Array([3, 4]) },
        { name: "b", dtype: "F32", shape: [3], data: new Float32Array(2) },
      ]),
    );
    expect(msg).toContain(`tensor "b"`);
    expect(msg).toContain("[3]");
    expect(readFileSync(p).equals(before)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
    expect(errorOf(() => writeSafetensors(p, [{ name: "c", dtype: "I32", shape: [1], data: new Float32Array(1) }]))).toContain(
      "I32 data given as a Float32Array",
    );
  });
});

describe("safetensors writer checks", () => {
  const one = (t: Partial<TensorToWrite>): TensorToWrite => ({ name: "a", dtype: "F32", shape: [1], data: new Float32Array(1), ...t });
  /** The writer's error for `tensors`; nothing may be left behind (no file, no temp file). */
  function refusedWrite(tensors: TensorToWrite[], words: RegExp, metadata?: Record<string, string>): void {
    const p = join(dir, "refused.safetensors");
    const listing = readdirSync(dir).sort();
    let err: unknown;
    try {
      writeSafetensors(p, tensors, metadata);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SafetensorsError);
    expect((err as Error).name).toBe("SafetensorsError");
    expect((err as Error).message.startsWith(`writeSafetensors ${p}: `), (err as Error).message).toBe(true);
    expect((err as Error).message).toMatch(words);
    expect(readdirSync(dir).sort()).toEqual(listing);
  }

  it("refuses duplicate and reserved names, unknown dtypes, bad shapes and data of the wrong type or size", () => {
    refusedWrite([one({}), one({})], /duplicate or reserved tensor name "a"$/);
    refusedWrite([one({ name: "__metadata__" })], /duplicate or reserved tensor name "__metadata__"$/);
    refusedWrite([one({ name: "__metadata__" })], /duplicate or reserved tensor name "__metadata__"$/, { k: "v" });
    refusedWrite([one({ dtype: "F8" as TensorToWrite["dtype"] })], /tensor "a": unsupported dtype F8$/);
    refusedWrite([one({ shape: [2, -1] })], /tensor "a": invalid shape \[2, -1\]$/);
    refusedWrite([one({ shape: [1.5] })], /tensor "a": invalid shape \[1\.5\]$/);
    refusedWrite([one({ dtype: "I16", data: new Int8Array(2) })], /tensor "a": I16 data given as a Int8Array$/);
    refusedWrite([one({ shape: [1, 2] })], /tensor "a": 4 bytes of data for F32 shape \[1, 2\] \(needs 8\)$/);
  });

  it("rounds Float32Array data for F16 and BF16, and takes each integer type's own array", () => {
    const p = join(dir, "typed.safetensors");
    const f = new Float32Array([1, 1 + 2 ** -11, -2.5, 65520]);
    writeSafetensors(p, [
      { name: "h", dtype: "F16", shape: [4], data: f },
      { name: "b", dtype: "BF16", shape: [4], data: f },
      { name: "i16", dtype: "I16", shape: [2], data: new Int16Array([-300, 7]) },
      { name: "i8", dtype: "I8", shape: [2], data: new Int8Array([-3, 5]) },
    ]);
    const st = SafetensorsFile.open(p);
    expect([...new Uint16Array(st.readRaw("h").buffer)]).toEqual([0x3c00, 0x3c00, 0xc100, 0x7c00]);
    expect([...new Uint16Array(st.readRaw("b").buffer)]).toEqual([0x3f80, 0x3f80, 0xc020, 0x4780]);
    expect([...st.readF32("i16"), ...st.readF32("i8")]).toEqual([-300, 7, -3, 5]);
    st.close();
  });

  it("writes no __metadata__ entry for empty metadata", () => {
    const p = join(dir, "nometa.safetensors");
    writeSafetensors(p, [one({})], {});
    const b = readFileSync(p);
    const header = JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString()) as Record<string, unknown>;
    expect(Object.keys(header)).toEqual(["a"]);
  });
});

describe("safetensors header validation", () => {
  const ok = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F16", shape: [2], data_offsets: [8, 12] } };
  const data = new Uint8Array(12);
  const cases: [string, () => string, RegExp, SafetensorsErrorCode][] = [
    ["truncated data", () => rawFile("trunc.st", ok, data.subarray(0, 10)), /tensor "b": data_offsets \[8, 12\] run past the end/, "data-past-end"],
    ["truncated header", () => rawFile("trunch.st", ok, new Uint8Array(0), 4000), /header length 4000 runs past the end/, "header-past-end"],
    ["file shorter than 8 bytes", () => {
      const p = join(dir, "tiny.st");
      writeFileSync(p, "abc");
      return p;
    }, /too short/, "too-short"],
    ["wrong magic", () => {
      const p = join(dir, "magic.st");
      writeFileSync(p, Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("PK\x03\x04 not json at all")]));
      return p;
    }, /wrong magic/, "bad-magic"],
    ["huge header length", () => rawFile("huge.st", ok, data, 2 ** 40), /header length \d+ exceeds/, "header-too-large"],
    ["invalid JSON", () => {
      const p = join(dir, "json.st");
      const h = Buffer.from("{\"a\": [}");
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      writeFileSync(p, Buffer.concat([len, h]));
      return p;
    }, /not valid UTF-8 JSON/, "bad-json"],
    ["offsets out of range", () => rawFile("range.st", { ...ok, b: { dtype: "F16", shape: [2], data_offsets: [8, 12] }, c: { dtype: "U8", shape: [4], data_offsets: [12, 16] } }, data), /tensor "c": data_offsets \[12, 16\] run past the end/, "data-past-end"],
    ["overlapping tensors", () => rawFile("overlap.st", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] }, c: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, data), /tensor "[ab]": .*overlap/, "overlap"],
    ["gap between tensors", () => rawFile("gap.st", { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, data), /tensor "b": .*gap/, "gap"],
    ["trailing bytes", () => rawFile("trail.st", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, data), /trailing bytes/, "trailing"],
    ["shape/offset mismatch", () => rawFile("shape.st", { a: { dtype: "F32", shape: [3], data_offsets: [0, 8] }, b: { dtype: "F16", shape: [2], data_offsets: [8, 12] } }, data), /tensor "a": data_offsets \[0, 8\] hold 8 bytes, but F32 shape \[3\] needs 12/, "size-mismatch"],
    ["unknown dtype", () => rawFile("dtype.st", { a: { dtype: "F8", shape: [2], data_offsets: [0, 8] }, b: ok.b }, data), /tensor "a": unsupported dtype "F8"/, "bad-entry"],
    ["negative dim", () => rawFile("neg.st", { a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] }, b: ok.b }, data), /tensor "a": shape \[-2\]/, "bad-entry"],
    ["non-string metadata", () => rawFile("meta.st", { ...ok, __metadata__: { x: 1 } }, data), /__metadata__ field "x" is not a string/, "bad-entry"],
    ["an 8-byte file (an empty header)", () => {
      const p = join(dir, "eight.st");
      writeFileSync(p, Buffer.alloc(8));
      return p;
    }, /header does not start with "\{" \(wrong magic: not a safetensors file\)$/, "bad-magic"],
    ["a header that is not UTF-8", () => {
      const p = join(dir, "latin1.st");
      const h = Buffer.concat([Buffer.from('{"a'), Buffer.from([0xe9]), Buffer.from('": 1}')]);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      writeFileSync(p, Buffer.concat([len, h]));
      return p;
    }, /header is not valid UTF-8 JSON: /, "bad-json"],
    ...(["[]", "null", '"x"', "3"] as const).map((v): [string, () => string, RegExp, SafetensorsErrorCode] => [
      `__metadata__ ${v}`,
      () => rawFile(`meta_${v.length}${v[0] === "[" ? "a" : v[0] === "n" ? "n" : "s"}.st`, { ...ok, __metadata__: JSON.parse(v) as unknown }, data),
      /: __metadata__ is not an object$/,
      "bad-entry",
    ]),
    ...(["[0, 8]", "null", '"x"', "3"] as const).map((v): [string, () => string, RegExp, SafetensorsErrorCode] => [
      `a tensor entry ${v}`,
      () => rawFile(`entry_${v.length}${v[0]}.st`, { a: JSON.parse(v) as unknown, b: ok.b }, data),
      /: tensor "a": entry is not an object$/,
      "bad-entry",
    ]),
    ["an unknown field", () => rawFile("field.st", { a: { ...ok.a, offsets: [0, 8] }, b: ok.b }, data), /: tensor "a": unknown field "offsets"$/, "bad-entry"],
    ...(["{}", "[0]", "[0, 8, 9]", "[-8, 0]", "[0, 8.5]", '[0, "8"]', "[8, 0]"] as const).map((v, i): [string, () => string, RegExp, SafetensorsErrorCode] => [
      `data_offsets ${v}`,
      () => rawFile(`offsets${i}.st`, { a: { ...ok.a, data_offsets: JSON.parse(v) as unknown }, b: ok.b }, data),
      new RegExp(`: tensor "a": data_offsets ${v.replace(/[[\]]/g, "\\$&").replace(/ /g, "")} is not \\[begin, end\\] with 0 <= begin <= end$`),
      "bad-entry",
    ]),
    ["a size mismatch after the first tensor", () => rawFile("shape2.st", { a: ok.a, b: { dtype: "F16", shape: [3], data_offsets: [8, 12] } }, data), /tensor "b": data_offsets \[8, 12\] hold 4 bytes, but F16 shape \[3\] needs 6$/, "size-mismatch"],
  ];
  for (const [what, make, re, code] of cases) {
    it(`refuses ${what} by its ${code} check, with a one-line error naming the file, leaving the file as it was`, () => {
      const p = make();
      const before = readFileSync(p);
      const listing = readdirSync(dir).sort();
      let err: unknown;
      try {
        SafetensorsFile.open(p).close();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SafetensorsError);
      expect((err as SafetensorsError).code).toBe(code);
      const msg = (err as Error).message;
      expect(msg).toMatch(re);
      expect(msg).toContain(p);
      expect(msg).not.toContain("\n");
      expect(readFileSync(p).equals(before)).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(listing);
    });
  }

  it("refuses a header over the documented 1 MiB without reading it, and accepts one of exactly 1 MiB", () => {
    expect(MAX_HEADER_BYTES).toBe(1024 * 1024);
    const json = JSON.stringify({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } });
    const file = (len: number): Buffer => {
      const h = Buffer.alloc(8);
      h.writeBigUInt64LE(BigInt(len));
      return Buffer.concat([h, Buffer.from(json), Buffer.alloc(len - json.length, 0x20), Buffer.from(new Float32Array([2.5]).buffer)]);
    };
    const atCap = join(dir, "at_cap.st");
    writeFileSync(atCap, file(MAX_HEADER_BYTES));
    const st = SafetensorsFile.open(atCap);
    expect([...st.readF32("w")]).toEqual([2.5]);
    st.close();
    const over = join(dir, "over_cap.st");
    writeFileSync(over, file(MAX_HEADER_BYTES + 1));
    let err: unknown;
    try {
      SafetensorsFile.open(over);
    } catch (e) {
      err = e;
    }
    expect((err as SafetensorsError).code).toBe("header-too-large");
    expect((err as Error).message).toBe(
      `safetensors ${over}: header length ${MAX_HEADER_BYTES + 1} exceeds the ${MAX_HEADER_BYTES} bytes a weights file needs (not a safetensors file, or a malicious one)`,
    );
  });

  it(`quotes at most QUOTE_MAX (${QUOTE_MAX}) characters of the file in a message`, () => {
    const long = "n".repeat(100_000);
    const quotes: [string, unknown, string][] = [
      // Names are cut before quoting, JSON values after rendering (with their quotes).
      ["a long tensor name", { [long]: { dtype: "F8", shape: [1], data_offsets: [0, 4] } }, `(${long.length} characters)`],
      ["a long dtype", { w: { dtype: long, shape: [1], data_offsets: [0, 4] } }, `(${long.length + 2} characters)`],
      ["a long shape", { w: { dtype: "F32", shape: [...new Array<number>(50_000).fill(1), -1], data_offsets: [0, 4] } }, "characters)"],
      ["a long unknown field", { w: { dtype: "F32", shape: [1], data_offsets: [0, 4], [long]: 1 } }, `(${long.length} characters)`],
      ["a long metadata key", { __metadata__: { [long]: 1 } }, `(${long.length} characters)`],
      ["long invalid JSON", `{"w": [${"1,".repeat(100_000)}}`, "is not valid UTF-8 JSON"],
      // JSON.parse takes it; rendering it back recursed past the stack (a raw RangeError the fuzzer found).
      ["a shape nested 20,000 lists deep", `{"w": {"dtype": "F32", "shape": ${"[".repeat(20_000)}${"]".repeat(20_000)}, "data_offsets": [0, 4]}}`, "(a value nested too deeply to print)"],
    ];
    for (const [what, header, tail] of quotes) {
      const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      const p = join(dir, "long.st");
      writeFileSync(p, Buffer.concat([len, h, new Uint8Array(4)]));
      const msg = errorOf(() => SafetensorsFile.open(p));
      expect(msg.length, what).toBeLessThan(p.length + 2 * QUOTE_MAX + 200);
      expect(msg, what).toContain(tail);
      expect(msg, what).not.toContain("\n");
    }
  });

  it("accepts only files whose tensors tile the data exactly, each read back from its own bytes (random headers)", () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return Math.floor((seed / 2 ** 32) * n); // the high bits: an LCG's low bits cycle
    };
    const dtypes = ["F32", "F16", "U8", "I64"] as const;
    const width = { F32: 4, F16: 2, U8: 1, I64: 8 };
    let accepted = 0;
    for (let trial = 0; trial < 400; trial++) {
      // Mostly tiling layouts, then one field nudged: a dtype, a dim, an offset, or the data length.
      const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
      let at = 0;
      const n = 1 + rand(4);
      for (let i = 0; i < n; i++) {
        const dtype = dtypes[rand(4)]!;
        const shape = [rand(3), 1 + rand(3)];
        const bytes = shape[0]! * shape[1]! * width[dtype];
        header[`t${i}`] = { dtype, shape, data_offsets: [at, at + bytes] };
        at += bytes;
      }
      let dataLen = at;
      const victim = header[`t${rand(n)}`]!;
      switch (rand(7)) {
        case 0: victim.dtype = dtypes[rand(4)]!; break;
        case 1: victim.shape[rand(2)] = rand(4); break;
        case 2: victim.data_offsets[rand(2)] += rand(3) - 1; break;
        case 3: dataLen += rand(3) - 1; break;
        case 4: {
          // The last tensor aliases another one's bytes; the data ends where the others do.
          const last = header[`t${n - 1}`]!;
          dataLen = last.data_offsets[0];
          const other = header[`t${rand(n)}`]!;
          header[`t${n - 1}`] = { dtype: other.dtype, shape: [...other.shape], data_offsets: [...other.data_offsets] };
          break;
        }
        case 5: {
          // The last tensor moves on, leaving unclaimed bytes before it.
          const last = header[`t${n - 1}`]!;
          const k = 1 + rand(4);
          last.data_offsets = [last.data_offsets[0] + k, last.data_offsets[1] + k];
          dataLen += k;
          break;
        }
        default: break;
      }
      const content = new Uint8Array(Math.max(0, dataLen)).map(() => rand(256));
      const p = rawFile("random.st", header, content);
      const file = readFileSync(p);
      const dataStart = 8 + Number(file.readBigUInt64LE(0));
      let st: SafetensorsFile;
      try {
        st = SafetensorsFile.open(p);
      } catch (e) {
        expect(e).toBeInstanceOf(SafetensorsError);
        expect((e as SafetensorsError).code).toBeDefined();
        continue;
      }
      accepted++;
      // The property, checked from the header itself: the spans tile [0, data length), each the size its dtype and shape need.
      const spans = Object.values(header).map((t) => t.data_offsets).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      let cursor = 0;
      for (const [b, e] of spans) {
        expect(b).toBe(cursor);
        cursor = e;
      }
      expect(cursor).toBe(file.length - dataStart);
      for (const [name, t] of Object.entries(header)) {
        const raw = st.readRaw(name);
        expect(raw.length).toBe(t.shape[0]! * t.shape[1]! * width[t.dtype as keyof typeof width]);
        expect(Buffer.from(raw).equals(file.subarray(dataStart + t.data_offsets[0], dataStart + t.data_offsets[1]))).toBe(true);
      }
      st.close();
    }
    expect(accepted).toBeGreaterThan(50);
    expect(accepted).toBeLessThan(350);
  });

  it("accepts tensors listed in any order, an empty one at the same offset as another included", () => {
    // Sorted by begin, then end: z, a, c, b; in the header's order the empty ones would overlap their neighbours.
    const header = { a: ok.a, z: { dtype: "F32", shape: [0], data_offsets: [0, 0] }, b: ok.b, c: { dtype: "U8", shape: [0], data_offsets: [8, 8] } };
    const st = SafetensorsFile.open(rawFile("order.st", header, data));
    expect(st.keys()).toEqual(["a", "z", "b", "c"]);
    expect(st.readRaw("z").byteLength).toBe(0);
    st.close();
  });

  it("names a file it cannot open", () => {
    const p = join(dir, "absent.safetensors");
    const e = errorOf(() => SafetensorsFile.open(p));
    expect(e).toMatch(new RegExp(`^safetensors ${p}: cannot open: ENOENT`));
  });

  it("closes its file once, however often close() is called", () => {
    const p = rawFile("close.st", ok, data);
    const fds = readdirSync("/proc/self/fd").length;
    const st = SafetensorsFile.open(p);
    expect(readdirSync("/proc/self/fd").length).toBe(fds + 1);
    st.close();
    st.close();
    expect(readdirSync("/proc/self/fd").length).toBe(fds);
  });

  it("accepts the well-formed variant of the same file", () => {
    const st = SafetensorsFile.open(rawFile("good.st", ok, data));
    expect(st.keys()).toEqual(["a", "b"]);
    expect(errorOf(() => st.info("zz"))).toMatch(/good\.st: no tensor named "zz"/);
    st.close();
    expect(errorOf(() => st.readRaw("a"))).toMatch(/tensor "a" read after close/);
  });

  it("detects a file truncated after it was opened", () => {
    const p = join(dir, "shrink.st");
    writeSafetensors(p, [{ name: "w", dtype: "F32", shape: [1000], data: rnd(1000, 3) }]);
    const st = SafetensorsFile.open(p);
    writeFileSync(p, readFileSync(p).subarray(0, 200));
    expect(errorOf(() => st.readRaw("w"))).toMatch(/tensor "w": file ended early/);
    st.close();
  });
});
