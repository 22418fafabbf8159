import { add, gelu, threshold } from "../src/kernels/elementwise.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

const N = 2048 * 3072;

export const cases: BenchCase[] = [
  {
    op: "gelu",
    shape: "2048x3072",
    setup: () => {
      const x = Tensor.zeros([2048, 3072]);
      return { run: () => gelu(x).dispose(), bytes: 8 * N, dispose: () => x.dispose() };
    },
  },
  {
    op: "add_broadcast",
    shape: "2048x3072 + 3072",
    setup: () => {
      const x = Tensor.zeros([2048, 3072]);
      const b = Tensor.zeros([3072]);
      return { run: () => add(x, b).dispose(), bytes: 8 * N, dispose: () => (x.dispose(), b.dispose()) };
    },
  },
  {
    op: "threshold",
    shape: "400x512x512 (400 MiB)",
    runs: 5,
    setup: () => {
      const x = Tensor.zeros([400, 512, 512]);
      return { run: () => threshold(x, 0.5).dispose(), bytes: 8 * x.size, dispose: () => x.dispose() };
    },
  },
];
