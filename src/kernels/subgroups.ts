// Which subgroup variant of a kernel the device can run. The barrier-free
// kernels (softmax, layernorm, attention) assume that each SG-lane slice of
// a workgroup is one subgroup, so they need subgroups of exactly SG lanes
// (lavapipe's 8); on any other size they take their portable variants (the
// test suite runs both: vitest.config.ts reruns their goldens at 4 lanes).
import { gpu } from "../tensor/device.js";

/** Whether the device runs subgroups of exactly `lanes` lanes. */
export function fixedSubgroups(lanes: number): boolean {
  const g = gpu(); // sizes are 0 without the subgroups feature
  return g.subgroupMinSize === lanes && g.subgroupMaxSize === lanes;
}
