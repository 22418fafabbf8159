// Element types and their conversions (src/weights/dtype.ts) against IEEE 754
// worked out independently: every half and bfloat16 bit pattern decoded by the
// formula (-1)^s 2^(e-bias) (1 + m/2^p), and rounding to them checked at each
// midpoint between neighbours (ties to even) and one f32 step either side.
import { describe, expect, it } from "vitest";
import { bf16BitsToF32, bytesToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, isFloatDType, isStDType, maxAbsFinite, shapeNumel, ST_DTYPE_BYTES, type StDType } from "../../src/weights/dtype.js";

const ALL: StDType[] = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"];

/** The value of half-precision bits by the IEEE formula. */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * 2 ** (e - 15) * (1 + m / 1024);
}

/** The f32 one step above or below a positive finite f32 `x`. */
function f32Step(x: number, dir: 1 | -1): number {
  const b = new Float32Array([x]);
  const u = new Uint32Array(b.buffer);
  u[0]! += dir;
  return b[0]!;
}

const f32 = (xs: number[]): Float32Array => Float32Array.from(xs);

describe("dtype names", () => {
  it("knows exactly the ten safetensors dtypes, by own property only", () => {
    for (const d of ALL) expect(isStDType(d), d).toBe(true);
    for (const x of ["toString", "constructor", "__proto__", "hasOwnProperty", "f32", "F8", "", 4, null, undefined, {}, ["F32"]]) expect(isStDType(x), String(x)).toBe(false);
    expect(Object.keys(ST_DTYPE_BYTES).sort()).toEqual([...ALL].sort());
  });

  it("calls exactly F64, F32, F16 and BF16 floating point", () => {
    expect(ALL.filter(isFloatDType)).toEqual(["F64", "F32", "F16", "BF16"]);
  });

  it("counts a shape's elements (1 for a scalar, 0 with an empty dimension)", () => {
    expect([shapeNumel([]), shapeNumel([2, 3]), shapeNumel([4, 0, 2])]).toEqual([1, 6, 0]);
  });
});

describe("bytesToF32", () => {
  const values = [0, 1, -2, 100, 127];
  const bytesOf: Record<StDType, (xs: number[]) => ArrayBufferView> = {
    F64: (xs) => Float64Array.from(xs),
    F32: (xs) => Float32Array.from(xs),
    F16: (xs) => f32ToF16Bits(Float32Array.from(xs)),
    BF16: (xs) => f32ToBf16Bits(Float32Array.from(xs)),
    I64: (xs) => BigInt64Array.from(xs.map(BigInt)),
    I32: (xs) => Int32Array.from(xs),
    I16: (xs) => Int16Array.from(xs),
    I8: (xs) => Int8Array.from(xs),
    U8: (xs) => Uint8Array.from(xs.map((x) => x & 0xff)),
    BOOL: (xs) => Uint8Array.from(xs.map((x) => (x ? 1 : 0))),
  };
  const want: Partial<Record<StDType, number[]>> = { U8: [0, 1, 254, 100, 127], BOOL: [0, 1, 1, 1, 1] };

  it("converts every dtype at every byte offset, aligned or not", () => {
    for (const d of ALL) {
      const v = bytesOf[d](values);
      const raw = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      for (const at of [0, 1, 2, 4, 8]) {
        const buf = new Uint8Array(at + raw.byteLength);
        buf.set(raw, at);
        const got = bytesToF32(buf.subarray(at), d);
        expect([...got], `${d} at ${at}`).toEqual(want[d] ?? values);
      }
    }
  });

  it("views aligned f32 bytes without copying them", () => {
    const buf = new Uint8Array(24);
    buf.set(new Uint8Array(f32([1.5, 2.5]).buffer), 8);
    const got = bytesToF32(buf.subarray(8, 16), "F32");
    expect(got.buffer).toBe(buf.buffer);
    expect(got.byteOffset).toBe(8);
    expect([...got]).toEqual([1.5, 2.5]);
  });
});

describe("half precision", () => {
  it("decodes every one of the 65,536 half bit patterns exactly", () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const got = f16BitsToF32(all);
    for (let h = 0; h < 65536; h++) {
      const w = halfValue(h);
      if (Number.isNaN(w)) expect(Number.isNaN(got[h]!), h.toString(16)).toBe(true);
      else if (got[h] !== w || Object.is(got[h], -0) !== Object.is(w, -0)) expect(got[h], `0x${h.toString(16)}`).toBe(w);
    }
  });

  it("encodes every half value back to its own bits", () => {
    const finite = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0);
    const back = f32ToF16Bits(f16BitsToF32(finite));
    for (let i = 0; i < finite.length; i++) if (back[i] !== finite[i]) expect(back[i], `0x${finite[i]!.toString(16)}`).toBe(finite[i]);
  });

  it("rounds to nearest, ties to even, at every midpoint between neighbouring halves (subnormals and normals; the last one, towards infinity, below)", () => {
    for (let h = 0; h < 0x7bff; h++) {
      const [a, b] = [halfValue(h), halfValue(h + 1)];
      const mid = (a + b) / 2; // 12 significant bits: exact in f32
      const even = h % 2 === 0 ? h : h + 1;
      const got = f32ToF16Bits(f32([mid, f32Step(mid, 1), f32Step(mid, -1), -mid]));
      if (got[0] !== even || got[1] !== h + 1 || got[2] !== h || got[3] !== (even | 0x8000)) {
        expect([...got], `between 0x${h.toString(16)} and 0x${(h + 1).toString(16)}`).toEqual([even, h + 1, h, even | 0x8000]);
      }
    }
  });

  it("overflows to infinity past the largest half, underflows to zero below half the smallest, keeps NaN a NaN", () => {
    const got = f32ToF16Bits(f32([65504, 65519.99, 65520, 65536, 98304, 1e5, 3e38, -1e5, Infinity, -Infinity, 2 ** -25, 1.5 * 2 ** -25, 2 ** -26, 1e-10, 1e-30, 1e-45, -1e-30]));
    expect([...got]).toEqual([0x7bff, 0x7bff, 0x7c00, 0x7c00, 0x7c00, 0x7c00, 0x7c00, 0xfc00, 0x7c00, 0xfc00, 0, 1, 0, 0, 0, 0, 0x8000]);
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800100, 0x7fffffff]) {
      const x = new Float32Array(new Uint32Array([bits]).buffer);
      const h = f32ToF16Bits(x)[0]!;
      expect(Number.isNaN(halfValue(h)), bits.toString(16)).toBe(true);
      expect(h & 0x8000, bits.toString(16)).toBe(bits >>> 31 ? 0x8000 : 0);
    }
  });
});

describe("bfloat16", () => {
  it("decodes bfloat16 as the top half of an f32", () => {
    const got = bf16BitsToF32(Uint16Array.from([0x3f80, 0xc000, 0x7f80, 0x0001, 0x8000]));
    expect([...got]).toEqual([1, -2, Infinity, 2 ** -133, -0]);
  });

  it("rounds to nearest, ties to even, between every pair of neighbouring bfloat16 values", () => {
    const top = new Uint32Array(1);
    const asF32 = new Float32Array(top.buffer);
    for (let h = 0; h < 0x7f80; h += 7) {
      top[0] = (h << 16) | 0x8000; // the midpoint between h and h + 1
      const mid = asF32[0]!;
      const even = h % 2 === 0 ? h : h + 1;
      const got = f32ToBf16Bits(f32([mid, f32Step(mid, 1), f32Step(mid, -1), halfOf(h)]));
      if (got[0] !== even || got[1] !== h + 1 || got[2] !== h || got[3] !== h) expect([...got], `0x${h.toString(16)}`).toEqual([even, h + 1, h, h]);
    }
    function halfOf(h: number): number {
      top[0] = h << 16;
      return asF32[0]!;
    }
  });

  it("keeps infinities and turns every NaN into a quiet NaN, never an infinity", () => {
    expect([...f32ToBf16Bits(f32([Infinity, -Infinity]))]).toEqual([0x7f80, 0xff80]);
    // the largest bfloat16 below infinity, and the tie above it rounding to even: infinity
    expect([...f32ToBf16Bits(new Float32Array(new Uint32Array([0x7f7f7fff, 0x7f7f8000]).buffer))]).toEqual([0x7f7f, 0x7f80]);
    for (const bits of [0x7f800001, 0x7fc00000, 0xff800001, 0x7f80ffff]) {
      const x = new Float32Array(new Uint32Array([bits]).buffer);
      const h = f32ToBf16Bits(x)[0]!;
      expect(h & 0x7f80, bits.toString(16)).toBe(0x7f80);
      expect(h & 0x7f, bits.toString(16)).not.toBe(0);
      expect(h & 0x40, bits.toString(16)).toBe(0x40);
    }
  });
});

describe("maxAbsFinite", () => {
  it("is the largest finite magnitude, ignoring infinities and NaN", () => {
    expect(maxAbsFinite(f32([]))).toBe(0);
    expect(maxAbsFinite(f32([1, -3, 2]))).toBe(3);
    expect(maxAbsFinite(f32([-7]))).toBe(7);
    expect(maxAbsFinite(f32([Infinity, 5, -Infinity]))).toBe(5);
    expect(maxAbsFinite(f32([NaN, 2, NaN]))).toBe(2);
    expect(maxAbsFinite(f32([0.5, 65520, 1]))).toBe(65520);
  });
});
