// Packs a kernel's uniform block. WGSL kernels declare their params as a
// struct of 4-byte scalars (u32/i32/f32) in the same order as the calls here.
import { divisor } from "./udiv.js";

export class Params {
  private readonly words: number[] = [];
  private readonly kinds: ("u" | "i" | "f")[] = [];

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`Params.u32: ${v} is not a u32`);
    this.words.push(v);
    this.kinds.push("u");
    return this;
  }

  i32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new Error(`Params.i32: ${v} is not an i32`);
    this.words.push(v);
    this.kinds.push("i");
    return this;
  }

  f32(v: number): this {
    this.words.push(v);
    this.kinds.push("f");
    return this;
  }

  /** Two u32s, the multiplier and shift with which WGSL's `udiv` divides by d (udiv.ts). */
  divisor(d: number): this {
    const { magic, shift } = divisor(d);
    return this.u32(magic).u32(shift);
  }

  /** The bytes of the uniform block, padded to 16 bytes. */
  bytes(): ArrayBuffer {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const u = new Uint32Array(buf);
    const i = new Int32Array(buf);
    const f = new Float32Array(buf);
    this.words.forEach((w, k) => {
      if (this.kinds[k] === "u") u[k] = w;
      else if (this.kinds[k] === "i") i[k] = w;
      else f[k] = w;
    });
    return buf;
  }
}
