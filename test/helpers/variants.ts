// Kernel goldens run over every variant the kernel's code can choose on the
// test device (tinygrad test_ops / llm.c dev/cuda style): portable, each
// subgroup width the device offers, each tile or width the chooser can
// return. The lists depend on the device, so the tests collect them after
// creating it (top-level await); a failure's title names its variant.
import { describe } from "vitest";
import { deviceProfile, setDeviceProfile, variantName, type DeviceProfile, type VariantOverrides } from "../../src/kernels/profile.js";
import { initGpu, type GpuOptions } from "../../src/tensor/device.js";

/** The test device's profile, read while the tests are collected; useGpu's beforeAll then finds the same device. */
export async function testProfile(opts: GpuOptions = {}): Promise<DeviceProfile> {
  await initGpu(opts);
  return deviceProfile();
}

/** Whether a variant uses subgroups: a lane count, row-sharing width or subgroups flag that is set. */
function usesSubgroups(v: object): boolean {
  const f = v as { lanes?: number; share?: number; subgroups?: boolean };
  return (f.lanes ?? 0) > 0 || (f.share ?? 0) > 0 || f.subgroups === true;
}

/**
 * The lane projects of vitest.config.ts rerun the goldens at other subgroup
 * sizes; variants without subgroups do not depend on the size and ran in
 * the default project, so they skip them.
 */
const laneProject = process.env.SEGVOL_LANE_PROJECT === "1";

/** The variants this project tests: all, or in a lane project those with subgroups. */
export function tested<V extends object>(variants: readonly V[]): V[] {
  return variants.filter((v) => !laneProject || usesSubgroups(v));
}

/** One describe per variant, titled `variant k=v …`, running `body` (the golden cases) under it. */
export function forEachVariant<V extends object>(variants: readonly V[], body: (v: V) => void): void {
  for (const v of tested(variants)) describe(`variant ${variantName(v)}`, () => body(v));
}

/** Runs `fn` with `force` merged into the device profile's forced variants (for ops reached through others, or through the tape), then restores the profile. */
export async function underForce<T>(force: VariantOverrides, fn: () => Promise<T>): Promise<T> {
  const prev = setDeviceProfile({ force: { ...deviceProfile().force, ...force } });
  try {
    return await fn();
  } finally {
    setDeviceProfile(prev);
  }
}
