// f16 ↔ f32 by integer operations, for kernels that read and write f16
// tensors four values at a time as vec2<u32> (two f16 a word, the lower
// element in the low half: the buffer's little-endian order). On lavapipe
// WGSL's own conversions (vec4<f32>(vec4<f16>), pack2x16float) cost more
// than the loads they convert: the strided softmax at f16 took 20.4 ms of
// CPU time with them and 10.5 ms, what it takes at f32, with these.
//  - Widening: an f16's 15 magnitude bits shifted into an f32's place are
//    that value times 2^-112, for subnormals too, so one exact multiplication
//    rebiases them; infinities and NaNs (exponent 31) are rebuilt; the sign
//    is ORed back.
//  - Narrowing rounds to nearest, ties to even, as WGSL's conversion does
//    (F. Giesen's float_to_half_fast3_rtne): from 65520 up the result is
//    Inf (a NaN stays a NaN); below 2^-14, adding 0.5 lets the f32 addition
//    round the value onto f16's subnormal grid (spacing 2^-24) in the low
//    mantissa bits; otherwise the exponent is rebiased and the 13 dropped
//    bits rounded by adding 0xfff plus the lowest kept bit.
// Kernels using these need no `enable f16`: the data is only u32 to them.
import type { Precision } from "./precision.js";

/** WGSL: `f16x4_load(w)`, four f16 packed in w as f32; `f16x4_store(v)`, v rounded to four packed f16. */
export const F16_BITS_WGSL = /* wgsl */ `
fn f16x4_load(w: vec2<u32>) -> vec4<f32> {
  let h = vec4<u32>(w.x & 0xffffu, w.x >> 16u, w.y & 0xffffu, w.y >> 16u);
  let magnitude = bitcast<vec4<u32>>(bitcast<vec4<f32>>((h & vec4<u32>(0x7fffu)) << vec4<u32>(13u)) * 5.192296858534828e33);
  let special = vec4<u32>(0x7f800000u) | ((h & vec4<u32>(0x3ffu)) << vec4<u32>(13u));
  let bits = select(magnitude, special, (h & vec4<u32>(0x7c00u)) == vec4<u32>(0x7c00u));
  return bitcast<vec4<f32>>(bits | ((h & vec4<u32>(0x8000u)) << vec4<u32>(16u)));
}
fn f16x4_store(v: vec4<f32>) -> vec2<u32> {
  let b = bitcast<vec4<u32>>(v);
  let u = b & vec4<u32>(0x7fffffffu);
  let huge = select(vec4<u32>(0x7c00u), vec4<u32>(0x7e00u), u > vec4<u32>(0x7f800000u));
  let tiny = bitcast<vec4<u32>>(bitcast<vec4<f32>>(u) + vec4<f32>(0.5)) - vec4<u32>(0x3f000000u);
  let normal = (u + vec4<u32>(0xc8000fffu) + ((u >> vec4<u32>(13u)) & vec4<u32>(1u))) >> vec4<u32>(13u);
  let h = ((b >> vec4<u32>(16u)) & vec4<u32>(0x8000u)) | select(select(normal, tiny, u < vec4<u32>(0x38800000u)), huge, u >= vec4<u32>(0x47800000u));
  return vec2<u32>(h.x | (h.y << 16u), h.z | (h.w << 16u));
}
`;

/** The WGSL type holding 4 values of precision p in storage: vec4<f32>, or for f16 vec2<u32> (4 packed f16). */
export function vec4Storage(p: Precision): string {
  return p === "f16" ? "vec2<u32>" : "vec4<f32>";
}

/** WGSL: the vec4<f32> of `e`, 4 values stored at precision p (needs F16_BITS_WGSL for f16). */
export function loadVec4(p: Precision, e: string): string {
  return p === "f16" ? `f16x4_load(${e})` : e;
}

/** WGSL: the vec4<f32> `e` as stored at precision p, rounded once for f16 (needs F16_BITS_WGSL). */
export function storeVec4(p: Precision, e: string): string {
  return p === "f16" ? `f16x4_store(${e})` : e;
}
