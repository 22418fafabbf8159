// Element types of stored tensors and conversions between them. Stored data
// is little-endian; so are all hosts Node supports in practice (x64, arm64),
// which lets typed arrays view file bytes directly — checked once below.
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!littleEndian) throw new Error("weights: big-endian hosts are not supported (tensor files are little-endian)");

/** safetensors dtype names (the subset this library reads and writes). */
export type StDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export const ST_DTYPE_BYTES: Record<StDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export function isStDType(s: unknown): s is StDType {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(ST_DTYPE_BYTES, s);
}

export function isFloatDType(d: StDType): boolean {
  return d === "F64" || d === "F32" || d === "F16" || d === "BF16";
}

/** Element count of a shape (1 for a scalar). */
export function shapeNumel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Views little-endian bytes of `dtype` as f32 values (a copy unless already F32 and aligned). */
export function bytesToF32(bytes: Uint8Array, dtype: StDType): Float32Array {
  const n = bytes.byteLength / ST_DTYPE_BYTES[dtype];
  // Typed-array views need aligned offsets; copy to a fresh buffer if not.
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const buf = aligned.buffer;
  const off = aligned.byteOffset;
  switch (dtype) {
    case "F32":
      return new Float32Array(buf, off, n);
    case "F16":
      return f16BitsToF32(new Uint16Array(buf, off, n));
    case "BF16":
      return bf16BitsToF32(new Uint16Array(buf, off, n));
    case "F64":
      return Float32Array.from(new Float64Array(buf, off, n));
    case "I64": {
      const src = new BigInt64Array(buf, off, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]!);
      return out;
    }
    case "I32":
      return Float32Array.from(new Int32Array(buf, off, n));
    case "I16":
      return Float32Array.from(new Int16Array(buf, off, n));
    case "I8":
      return Float32Array.from(new Int8Array(buf, off, n));
    case "U8":
    case "BOOL":
      return Float32Array.from(new Uint8Array(buf, off, n));
  }
}

/** IEEE half bits → f32 (exact: every half is representable). */
export function f16BitsToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) {
    const x = h[i]!;
    const sign = (x & 0x8000) << 16;
    const exp = (x >> 10) & 0x1f;
    const man = x & 0x3ff;
    if (exp === 0x1f) {
      bits[i] = sign | 0x7f800000 | (man << 13); // inf / nan
    } else if (exp !== 0) {
      bits[i] = sign | ((exp + 112) << 23) | (man << 13); // normal: rebias 15 → 127
    } else {
      out[i] = (sign ? -1 : 1) * man * 2 ** -24; // subnormal, or ±0 (a signed zero times 0 keeps its sign)
    }
  }
  return out;
}

/** bfloat16 bits → f32 (exact: bf16 is the top half of an f32). */
export function bf16BitsToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) bits[i] = h[i]! << 16;
  return out;
}

/**
 * f32 → IEEE half bits, round to nearest even (as PyTorch's `.half()`).
 * Finite values beyond the half range become ±inf; callers that must not
 * overflow check `maxAbsFinite` first.
 */
export function f32ToF16Bits(f: Float32Array): Uint16Array {
  const out = new Uint16Array(f.length);
  const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
  for (let i = 0; i < f.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let man = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (man ? 0x200 | (man >>> 13) : 0); // keep NaN a NaN
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00; // overflow → inf
    } else if (e <= 0) {
      // Subnormal half (or zero): shift the implicit-1 mantissa into place.
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      man |= 0x800000;
      const shift = 14 - e;
      let h = man >>> shift;
      const rem = man & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h += 1;
      out[i] = sign | h;
    } else {
      let h = (e << 10) | (man >>> 13);
      const rem = man & 0x1fff;
      // A carry out of the mantissa correctly bumps the exponent (up to inf).
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h += 1;
      out[i] = sign | h;
    }
  }
  return out;
}

/** f32 → bfloat16 bits, round to nearest even. */
export function f32ToBf16Bits(f: Float32Array): Uint16Array {
  const out = new Uint16Array(f.length);
  const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
  for (let i = 0; i < f.length; i++) {
    const x = bits[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) {
      out[i] = (x >>> 16) | 0x40; // quiet NaN
      continue;
    }
    const r = x + 0x7fff + ((x >>> 16) & 1);
    out[i] = r >>> 16;
  }
  return out;
}

/** Largest finite |value|, for overflow checks before narrowing. */
export function maxAbsFinite(f: Float32Array): number {
  let m = 0;
  for (let i = 0; i < f.length; i++) {
    const a = Math.abs(f[i]!);
    if (a > m && a !== Infinity) m = a;
  }
  return m;
}

/** The largest finite half value. */
export const F16_MAX = 65504;
