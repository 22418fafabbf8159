// Autograd costs: a ViT-B MLP layer forward + backward through the tape
// (compare with matmul.bench.ts: backward is two more products of the same
// size), the embedding scatter-add at CLIP size, and the broadcast of a
// reduction's gradient.
import { gatherBackward } from "../src/kernels/layout.js";
import { expandTo } from "../src/kernels/reduce.js";
import { backward, constant, param, zeroGrad } from "../src/autograd/autograd.js";
import * as ag from "../src/autograd/ops.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

function mlpCase(tokens: number, recompute: boolean): BenchCase {
  return {
    op: `linear+gelu fwd+bwd${recompute ? " (recompute)" : ""}`,
    shape: `${tokens}x768 · 3072x768ᵀ`,
    runs: 5,
    setup: () => {
      const x = constant(Tensor.zeros([tokens, 768]));
      const w = param(Tensor.zeros([3072, 768]));
      const b = param(Tensor.zeros([3072]));
      return {
        run: () => {
          const loss = ag.sum(ag.linear(x, w, b, "gelu", { recompute }));
          backward(loss);
          loss.dispose();
          zeroGrad([w, b]);
        },
        // forward product + dW product (+ the recomputed forward); x needs no gradient.
        flops: (recompute ? 3 : 2) * 2 * tokens * 768 * 3072,
        dispose: () => [x, w, b].forEach((v) => v.dispose()),
      };
    },
  };
}

export const cases: BenchCase[] = [
  mlpCase(512, false),
  mlpCase(512, true),
  {
    op: "gather_backward",
    shape: "77 ids → 49408x512 table",
    setup: () => {
      const g = Tensor.zeros([1, 77, 512]);
      const ids = Tensor.from(Int32Array.from({ length: 77 }, (_, i) => (i * 7919) % 49408), [1, 77], "i32");
      return {
        run: () => gatherBackward(g, ids, 49408).dispose(),
        bytes: 49408 * 512 * 4,
        dispose: () => (g.dispose(), ids.dispose()),
      };
    },
  },
  {
    op: "expand (mean backward)",
    shape: "[1,768] → 4096x768",
    setup: () => {
      const g = Tensor.zeros([1, 768]);
      return { run: () => expandTo(g, [4096, 768], 1 / 4096).dispose(), bytes: 4096 * 768 * 4, dispose: () => g.dispose() };
    },
  },
];
