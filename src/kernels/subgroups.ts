// Which subgroup variant of a kernel the device can run. The barrier-free
// kernels (softmax, layernorm, attention) assume that each SG-lane slice of
// a workgroup is one subgroup, so they need subgroups of exactly SG lanes
// (lavapipe's 8); SEGVOL_NO_SUBGROUPS forces their portable variants (tests
// use it to check both).
import { gpu } from "../tensor/device.js";

/** Whether the device runs subgroups of exactly `lanes` lanes, and subgroup variants are not switched off. */
export function fixedSubgroups(lanes: number): boolean {
  if (process.env.SEGVOL_NO_SUBGROUPS) return false;
  const g = gpu(); // sizes are 0 without the subgroups feature
  return g.subgroupMinSize === lanes && g.subgroupMaxSize === lanes;
}
