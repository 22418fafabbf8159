// Host cost of one dispatch: a chain of ops on a 256-element tensor, where
// the GPU work is negligible and what is timed is recording (pool, uniform
// block, bind group, pass calls) and submitting. A training step of the demo
// model recorded about 4,800 dispatches (1,360 now, see docs/kernels.md), so
// at tens of µs each this alone can bound a step on a fast GPU (an H200 ran
// about 4 steps/s with 4,800). median_ms / OPS is the cost per dispatch.
import { gelu } from "../src/kernels/elementwise.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

const OPS = 2000;

export const cases: BenchCase[] = [
  {
    op: "dispatch_overhead",
    shape: `${OPS} x gelu(256)`,
    runs: 7,
    warmup: 2,
    setup: () => {
      const x = Tensor.zeros([256]);
      const run = () => {
        let t = gelu(x);
        for (let i = 1; i < OPS; i++) {
          const next = gelu(t);
          t.dispose();
          t = next;
        }
        t.dispose();
      };
      return { run, dispose: () => x.dispose() };
    },
  },
];
