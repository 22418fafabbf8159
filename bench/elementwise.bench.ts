// Elementwise maps and broadcasts. The broadcasts of a demo training step
// (a batch of prompt sets plus one shared image embedding, a window-sized
// gradient times a scalar) merge to one or two axes before indexing.
// `bytes` is what a run reads and writes (2 bytes an element in f16): the
// harness reports it as GB/s.
import { add, gelu, mul, relu, threshold } from "../src/kernels/elementwise.js";
import { cast } from "../src/kernels/layout.js";
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
    // gelu's traffic with almost no arithmetic: what gelu's exp and erfc polynomial cost on top.
    op: "relu",
    shape: "2048x3072",
    setup: () => {
      const x = Tensor.zeros([2048, 3072]);
      return { run: () => relu(x).dispose(), bytes: 8 * N, dispose: () => x.dispose() };
    },
  },
  {
    op: "gelu f16",
    precision: "f16",
    shape: "2048x3072",
    setup: () => {
      const x = cast(Tensor.zeros([2048, 3072]), "f16");
      return { run: () => gelu(x).dispose(), bytes: 4 * N, dispose: () => x.dispose() };
    },
  },
  {
    op: "add",
    shape: "2048x3072 + 2048x3072",
    setup: () => {
      const x = Tensor.zeros([2048, 3072]);
      const y = Tensor.zeros([2048, 3072]);
      return { run: () => add(x, y).dispose(), bytes: 12 * N, dispose: () => (x.dispose(), y.dispose()) };
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
    op: "add_broadcast",
    shape: "4x512x96 + 1x512x96",
    setup: () => {
      const x = Tensor.zeros([4, 512, 96]);
      const e = Tensor.zeros([1, 512, 96]);
      return { run: () => add(x, e).dispose(), bytes: 4 * (2 * x.size + e.size), dispose: () => (x.dispose(), e.dispose()) };
    },
  },
  {
    op: "mul_scalar_tensor",
    shape: "4x1x32x64x64 · []",
    setup: () => {
      const x = Tensor.zeros([4, 1, 32, 64, 64]);
      const s = Tensor.from([0.5], []);
      return { run: () => mul(x, s).dispose(), bytes: 8 * x.size, dispose: () => (x.dispose(), s.dispose()) };
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
