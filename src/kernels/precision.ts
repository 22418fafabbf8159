// Storage precision of a kernel's float data. A kernel's precision is its
// float inputs' dtype: all f32 or all f16 (mixing is a ShapeError; cast
// first), and its float outputs take the same dtype. f16 is storage only:
// a kernel loads f16 into f32 (`f32(x[i])`, `vec4<f32>(x4[i])`), computes
// and accumulates in f32 (softmax, LayerNorm statistics, attention's
// running max and sum, reductions and matmul sums all stay f32) and rounds
// once when it stores (`${T}(v)`). The WGSL is written once over `T`: in an
// f32 kernel the conversions are no-ops (`toF32` and `toStorage` below
// leave them out, so an f32 kernel's WGSL stays as it was before f16).
// Workgroup memory may hold `T` to halve it. Uniform parameters stay f32
// (or integer).
import { gpu } from "../tensor/device.js";
import type { DType, Tensor } from "../tensor/tensor.js";
import { fail } from "./check.js";

/** The float dtypes a kernel stores: its precision. */
export type Precision = "f32" | "f16";

/** `enable f16;` when a kernel touches f16 data (WGSL's first line), else nothing. */
export function enableF16(dtypes: DType | readonly DType[]): string {
  const list = typeof dtypes === "string" ? [dtypes] : dtypes;
  return list.includes("f16") ? "enable f16;\n" : "";
}

/** Checks that the device runs f16 where a dtype is f16 (the `shader-f16` feature). */
export function checkF16(op: string, dtypes: DType | readonly DType[]): void {
  const list = typeof dtypes === "string" ? [dtypes] : dtypes;
  if (list.includes("f16") && !gpu().hasF16) fail(op, "f16 tensors need the shader-f16 feature, which this device does not have");
}

/**
 * The precision of a kernel call: the dtype its float tensors share (alive,
 * f32 or f16, one of them; the device runs f16). Tensors that are absent
 * (an optional bias) are skipped.
 */
export function precisionOf(op: string, tensors: readonly (Tensor | null | undefined)[]): Precision {
  let p: Precision | null = null;
  for (const t of tensors) {
    if (!t) continue;
    t.assertAlive(op);
    if (t.dtype !== "f32" && t.dtype !== "f16") fail(op, `expected dtype f32 or f16, got ${t.dtype} for tensor [${t.shape.join(", ")}]`);
    if (p !== null && t.dtype !== p) fail(op, `inputs mix ${p} and ${t.dtype}: cast them to one precision first`);
    p = t.dtype;
  }
  const out = p ?? "f32";
  checkF16(op, out);
  return out;
}

/**
 * `expr`, a value read from storage of precision `p`, widened to `f32Type`
 * (`f32`, `vec4<f32>`, …) for arithmetic. An f32 kernel reads f32 already,
 * so its WGSL stays free of identity conversions.
 */
export function toF32(p: Precision, expr: string, f32Type = "f32"): string {
  return p === "f16" ? `${f32Type}(${expr})` : expr;
}

/** `expr`, an f32 value, rounded to the storage type of precision `p` (`f32Type` names its shape: `f32`, `vec4<f32>`, …). */
export function toStorage(p: Precision, expr: string, f32Type = "f32"): string {
  return p === "f16" ? `${storageType(p, f32Type)}(${expr})` : expr;
}

/** The WGSL storage type of precision `p` for an f32 shape (`f32` → `f16`, `vec4<f32>` → `vec4<f16>`). */
export function storageType(p: Precision, f32Type = "f32"): string {
  return f32Type.replace("f32", p);
}
