// Summing k gradients of one parameter: one addN pass against the chain of
// k − 1 binary adds it replaces in gradient accumulation (same bits).
import { addN } from "../src/kernels/add_n.js";
import { add } from "../src/kernels/elementwise.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

const N = 1 << 18;
const K = 4;

function inputs(): Tensor[] {
  return Array.from({ length: K }, (_, s) => Tensor.from(Float32Array.from({ length: N }, (_, i) => Math.sin(i + s)), [N]));
}

export const cases: BenchCase[] = [
  {
    op: "add_n",
    shape: `${K} x ${N}`,
    setup: () => {
      const xs = inputs();
      return { run: () => addN(xs).dispose(), bytes: 4 * N * (K + 1), dispose: () => xs.forEach((x) => x.dispose()) };
    },
  },
  {
    op: "add_chain",
    shape: `${K} x ${N}`,
    setup: () => {
      const xs = inputs();
      const run = () => {
        let acc = add(xs[0]!, xs[1]!);
        for (const x of xs.slice(2)) {
          const next = add(acc, x);
          acc.dispose();
          acc = next;
        }
        acc.dispose();
      };
      return { run, bytes: 4 * N * 3 * (K - 1), dispose: () => xs.forEach((x) => x.dispose()) };
    },
  },
];
