// The device profile: what the device offers that a kernel's code depends on
// (subgroup sizes, limits, f16, timestamps), read once per device, and the
// variants a caller forces for every call on it. Each kernel with variants
// picks its variant from the profile (its `choose…` function); the variant
// is a plain value from which come both its WGSL and its pipeline key
// (`variantPipeline`). Kernel code reads no environment variables and no
// module-level switches: a researcher forces a variant per call (the op's
// `variant` argument) or per device (`setDeviceProfile`, `force`).
import { gpu, type Gpu } from "../tensor/device.js";
import type { GemmVariant } from "./conv_gemm.js";
import type { ElementwiseVariant } from "./elementwise.js";
import type { MatmulChoice } from "./matmul.js";
import type { Precision } from "./precision.js";
import type { ReduceVariant } from "./reduce.js";
import type { ResizeVariant } from "./resample.js";
import type { SoftmaxVariant } from "./softmax.js";

/** Subgroup sizes the device reports (lanes); WGSL's `subgroup_size` lies in [min, max]. */
export interface SubgroupSizes {
  min: number;
  max: number;
}

/**
 * A subgroup row variant (softmax, LayerNorm rows and their backward): one
 * subgroup of `lanes` lanes per row, `rows` rows per workgroup; lanes 0 is
 * the portable kernel (one 64-lane workgroup per row, barriers). `rows` > 1
 * needs subgroups of exactly `lanes` lanes (each lanes-slice of the
 * workgroup is one subgroup); `rows` = 1 needs at least `lanes` (the
 * workgroup lies inside one subgroup).
 */
export interface RowVariant {
  lanes: number;
  rows: number;
}

/** Attention's subgroup width: lanes of a subgroup that share each k/v row load (0: every lane loads it). */
export interface AttentionVariant {
  lanes: number;
}

/** Variants forced for every call on a device, by op; unset knobs are chosen as usual. */
export interface VariantOverrides {
  matmul?: Partial<MatmulChoice>;
  gemm?: GemmVariant;
  softmax?: Partial<SoftmaxVariant>;
  layerNorm?: RowVariant;
  reduce?: Partial<ReduceVariant>;
  attention?: AttentionVariant;
  elementwise?: Partial<ElementwiseVariant>;
  resize?: Partial<ResizeVariant>;
}

export interface DeviceProfile {
  /** Subgroup sizes; null without the `subgroups` feature (or with unknown sizes). */
  subgroups: SubgroupSizes | null;
  f16: boolean;
  timestamps: boolean;
  limits: {
    maxInvocationsPerWorkgroup: number;
    maxWorkgroupStorageBytes: number;
    maxStorageBindings: number;
    maxWorkgroupsPerDim: number;
  };
  force: VariantOverrides;
  /**
   * Winners of the tuner (src/tune), by `tunedKey(op, dims, precision)`:
   * consulted by the op's chooser (for the call's precision) before its
   * fixed heuristic, after any forced variant.
   * Each entry was checked against the op's candidates on this device when
   * it was stored.
   */
  tuned: TunedChoices;
}

/** The ops whose variants the tuner times: their choosers read `DeviceProfile.tuned`. */
export type TunedOp = "matmul" | "attention" | "gemm";

/** Tuned winners, by `tunedKey`. */
export type TunedChoices = Readonly<Record<string, object>>;

/**
 * The shape bucket of a size: the next power of two at or above it (1 for
 * 0 and 1). Calls whose every dimension falls in the same bucket share a
 * tuned variant: a variant's speed changes with the padding and the
 * workgroup count, which change little within a power of two.
 */
export function sizeBucket(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

/**
 * The tuned table's key of `op` at the call dimensions `dims` (each
 * bucketed) and the call's storage precision: `matmul:f16:2048x1024x1024`.
 * A winner holds for the precision it was timed at only: f16 halves the
 * bytes every variant loads, which moves the balance between loads and
 * FMAs that the variants trade.
 */
export function tunedKey(op: TunedOp, dims: readonly number[], precision: Precision): string {
  return `${op}:${precision}:${dims.map(sizeBucket).join("x")}`;
}

/** The tuned variant of `op` for a call of `dims` at `precision` on this profile, if one was stored. */
export function tunedVariant<V extends object>(p: DeviceProfile, op: TunedOp, dims: readonly number[], precision: Precision): V | undefined {
  return p.tuned[tunedKey(op, dims, precision)] as V | undefined;
}

const profiles = new WeakMap<Gpu, DeviceProfile>();

/** The profile read off a device (no overrides). */
export function readProfile(g: Gpu): DeviceProfile {
  const lim = g.device.limits;
  const sized = g.hasSubgroups && g.subgroupMinSize > 0 && g.subgroupMaxSize >= g.subgroupMinSize;
  return {
    subgroups: sized ? { min: g.subgroupMinSize, max: g.subgroupMaxSize } : null,
    f16: g.hasF16,
    timestamps: g.canProfileKernels,
    limits: {
      maxInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
      maxWorkgroupStorageBytes: lim.maxComputeWorkgroupStorageSize,
      maxStorageBindings: g.maxStorageBindings,
      maxWorkgroupsPerDim: g.maxWorkgroupsPerDim,
    },
    force: {},
    tuned: {},
  };
}

/** The profile kernels choose their variants from: the device's, or the one set by `setDeviceProfile`. */
export function deviceProfile(g: Gpu = gpu()): DeviceProfile {
  let p = profiles.get(g);
  if (!p) {
    p = readProfile(g);
    profiles.set(g, p);
  }
  return p;
}

/**
 * Replaces the device's profile by `changes` merged into it (for example
 * `{ subgroups: null }` to run what a device without subgroups runs, or
 * `{ force: { matmul: { R: 16 } } }`); returns the previous profile, which
 * restores it. A profile claiming subgroups the device does not have makes
 * wrong results, not errors: narrow the device's, never widen them.
 */
export function setDeviceProfile(changes: Partial<DeviceProfile>, g: Gpu = gpu()): DeviceProfile {
  const prev = deviceProfile(g);
  profiles.set(g, { ...prev, ...changes });
  return prev;
}

/** The fixed subgroup size, or null where sizes vary (or there are no subgroups). */
export function fixedSubgroupSize(p: DeviceProfile): number | null {
  return p.subgroups && p.subgroups.min === p.subgroups.max ? p.subgroups.min : null;
}

/** Powers of two from 4 up to `max` that fit in every subgroup of the device: the lane groups a broadcast can use. */
export function laneGroups(p: DeviceProfile, max = Infinity): number[] {
  const out: number[] = [];
  for (let l = 4; p.subgroups && l <= Math.min(p.subgroups.min, max); l *= 2) out.push(l);
  return out;
}

/** Rows per workgroup of a fixed-size subgroup row kernel: workgroups of about 64 lanes. */
const ROW_WG = 64;

/**
 * The row variant for a device: one subgroup per row, ROW_WG / size rows a
 * workgroup, where the size is fixed; where it varies, one row per
 * workgroup of the smallest size; portable without subgroups.
 */
export function chooseRowVariant(p: DeviceProfile): RowVariant {
  const fixed = fixedSubgroupSize(p);
  if (fixed !== null && fixed >= 4) return { lanes: fixed, rows: Math.max(1, ROW_WG / fixed) };
  if (p.subgroups && p.subgroups.min >= 4) return { lanes: p.subgroups.min, rows: 1 };
  return { lanes: 0, rows: 1 };
}

/** Every row variant this device can run: portable, one row per workgroup at each lane group, and the fixed-size one. */
export function rowVariants(p: DeviceProfile): RowVariant[] {
  const out: RowVariant[] = [{ lanes: 0, rows: 1 }, ...laneGroups(p).map((lanes) => ({ lanes, rows: 1 }))];
  const chosen = chooseRowVariant(p);
  if (!out.some((v) => v.lanes === chosen.lanes && v.rows === chosen.rows)) out.push(chosen);
  return out;
}

/** Throws unless the device runs `v` (see RowVariant). */
export function checkRowVariant(op: string, p: DeviceProfile, v: RowVariant): void {
  if (v.lanes === 0) return;
  const ok =
    Number.isInteger(v.lanes) && Number.isInteger(v.rows) && v.rows >= 1 && v.lanes >= 1 &&
    v.lanes * v.rows <= p.limits.maxInvocationsPerWorkgroup &&
    (v.rows === 1 ? laneGroups(p).includes(v.lanes) : fixedSubgroupSize(p) === v.lanes);
  if (!ok) {
    const sizes = p.subgroups ? `${p.subgroups.min}-${p.subgroups.max}` : "none";
    throw new Error(`${op}: variant ${variantName(v)} does not run on this device (subgroup sizes ${sizes}; rows > 1 needs exactly that many lanes, one row at least that many)`);
  }
}

/** A variant value as text, fields sorted (nested values in braces), for keys, test titles and errors: `lanes=8 rows=8`. */
export function variantName(v: object): string {
  const text = (x: unknown): string => {
    if (typeof x === "boolean") return String(+x);
    if (x !== null && typeof x === "object") return `{${variantName(x)}}`;
    return String(x);
  };
  return Object.entries(v)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, x]) => `${k}=${text(x)}`)
    .join(" ");
}

/**
 * The pipeline of a variant: `kernel` and the variant value make the key,
 * `wgsl(variant)` the code (called once per key). The value must hold
 * everything its WGSL depends on, and only plain data. The key is the
 * value's JSON (V8's fast path: about a microsecond a dispatch; a sorted
 * `variantName` cost ten), so one call site builds a kernel's values with
 * their fields in one order.
 */
export function variantPipeline<V extends object>(kernel: string, variant: V, wgsl: (v: V) => string): GPUComputePipeline {
  return gpu().pipeline(`${kernel}:${JSON.stringify(variant)}`, () => wgsl(variant));
}
