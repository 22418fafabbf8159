import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../weights/dtype.js";
import { loadTensorToGpu, SafetensorsFile, writeSafetensors, type TensorToWrite } from "../../weights/safetensors.js";
import { useGpu } from "../helpers/gpu.js";
import { b64bytes, errorOf, fixture, readJson, sameBytes, tempDir } from "./util.js";

const dir = tempDir("st");

function rnd(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

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

describe("safetensors header validation", () => {
  const ok = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F16", shape: [2], data_offsets: [8, 12] } };
  const data = new Uint8Array(12);
  const cases: [string, () => string, RegExp][] = [
    ["truncated data", () => rawFile("trunc.st", ok, data.subarray(0, 10)), /tensor "b": data_offsets \[8, 12\] run past the end/],
    ["truncated header", () => rawFile("trunch.st", ok, new Uint8Array(0), 4000), /header length 4000 runs past the end/],
    ["file shorter than 8 bytes", () => {
      const p = join(dir, "tiny.st");
      writeFileSync(p, "abc");
      return p;
    }, /too short/],
    ["wrong magic", () => {
      const p = join(dir, "magic.st");
      writeFileSync(p, Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("PK\x03\x04 not json at all")]));
      return p;
    }, /wrong magic/],
    ["huge header length", () => rawFile("huge.st", ok, data, 2 ** 40), /header length \d+ exceeds/],
    ["invalid JSON", () => {
      const p = join(dir, "json.st");
      const h = Buffer.from("{\"a\": [}");
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      writeFileSync(p, Buffer.concat([len, h]));
      return p;
    }, /not valid UTF-8 JSON/],
    ["offsets out of range", () => rawFile("range.st", { ...ok, b: { dtype: "F16", shape: [2], data_offsets: [8, 12] }, c: { dtype: "U8", shape: [4], data_offsets: [12, 16] } }, data), /tensor "c": data_offsets \[12, 16\] run past the end/],
    ["overlapping tensors", () => rawFile("overlap.st", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] }, c: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, data), /tensor "[ab]": .*overlap/],
    ["gap between tensors", () => rawFile("gap.st", { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, data), /tensor "b": .*gap/],
    ["trailing bytes", () => rawFile("trail.st", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, data), /trailing bytes/],
    ["shape/offset mismatch", () => rawFile("shape.st", { a: { dtype: "F32", shape: [3], data_offsets: [0, 8] }, b: { dtype: "F16", shape: [2], data_offsets: [8, 12] } }, data), /tensor "a": data_offsets \[0, 8\] hold 8 bytes, but F32 shape \[3\] needs 12/],
    ["unknown dtype", () => rawFile("dtype.st", { a: { dtype: "F8", shape: [2], data_offsets: [0, 8] }, b: ok.b }, data), /tensor "a": unsupported dtype "F8"/],
    ["negative dim", () => rawFile("neg.st", { a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] }, b: ok.b }, data), /tensor "a": shape \[-2\]/],
    ["non-string metadata", () => rawFile("meta.st", { ...ok, __metadata__: { x: 1 } }, data), /__metadata__ field "x" is not a string/],
  ];
  for (const [what, make, re] of cases) {
    it(`refuses ${what} with a one-line error naming the file`, () => {
      const p = make();
      const msg = errorOf(() => SafetensorsFile.open(p));
      expect(msg).toMatch(re);
      expect(msg).toContain(p);
      expect(msg).not.toContain("\n");
    });
  }

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

describe("loadTensorToGpu", () => {
  useGpu();
  it("uploads f32, widens f16/bf16, and keeps f16 when asked", async () => {
    // 24 elements: Tensor.read of an f16 tensor with an odd element count fails
    // in the engine's readBytes (copy size not a multiple of 4) — reported.
    const f = rnd(3 * 8, 5, 10);
    const p = join(dir, "gpu.safetensors");
    writeSafetensors(p, [
      { name: "w32", dtype: "F32", shape: [3, 8], data: f },
      { name: "w16", dtype: "F16", shape: [3, 8], data: f32ToF16Bits(f) },
      { name: "wbf", dtype: "BF16", shape: [24], data: f32ToBf16Bits(f) },
    ]);
    const st = SafetensorsFile.open(p);
    const a = loadTensorToGpu(st, "w32");
    expect(a.shape).toEqual([3, 8]);
    expect(a.dtype).toBe("f32");
    expect([...(await a.readFloat32())]).toEqual([...f]);
    const b = loadTensorToGpu(st, "w16");
    expect([...(await b.readFloat32())]).toEqual([...f16BitsToF32(f32ToF16Bits(f))]);
    const c = loadTensorToGpu(st, "wbf");
    const cb = await c.readFloat32();
    for (let i = 0; i < f.length; i++) expect(Math.abs(cb[i]! - f[i]!)).toBeLessThanOrEqual(Math.abs(f[i]!) * 2 ** -8);
    const h = loadTensorToGpu(st, "w16", "f16");
    expect(h.dtype).toBe("f16");
    expect([...((await h.read()) as Uint16Array)]).toEqual([...f32ToF16Bits(f)]);
    for (const t of [a, b, c, h]) t.dispose();
    st.close();
    expect(existsSync(p)).toBe(true);
  });
});
