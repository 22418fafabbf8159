// The parameter names and shapes a SegVol model of a given configuration
// has, canonical (no "model."/"module." prefix), in the order PyTorch's
// state_dict() lists them: read off the network's module tree
// (src/segvol/network.ts), which declares them in upstream registration
// order. The official config gives the names of the published checkpoint
// exactly; small configs scale every size.
import type { SegVolConfig } from "./config.js";
import { SegVolNetwork } from "./network.js";

export function expectedParameters(cfg: SegVolConfig): Map<string, number[]> {
  return new SegVolNetwork(cfg).parameterShapes();
}

/** Total element count of a parameter map. */
export function parameterCount(params: Map<string, number[]>): number {
  let n = 0;
  for (const s of params.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}
