// What Dawn's busy polling costs while the host waits for the GPU (see
// src/tensor/gpu_wait.ts): the same chain of six 768² matmuls, timed to its
// sync with the wait paced (the default) and with dawn.node's own spinning.
// On lavapipe the spinning main thread competes with the shader threads for
// the cores, so the paced case should be faster there; on a discrete GPU the
// two should match.
import { gpu } from "../src/tensor/device.js";
import { matmul } from "../src/kernels/matmul.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

const N = 768;
const CHAIN = 6;

function chain(paced: boolean): BenchCase {
  return {
    op: paced ? "gpu_wait_paced" : "gpu_wait_spinning",
    shape: `${CHAIN} x matmul ${N}x${N}x${N}`,
    runs: 7,
    warmup: 1,
    setup: () => {
      const g = gpu();
      const before = g.pacedWaits;
      g.pacedWaits = paced;
      const a = Tensor.from(Float32Array.from({ length: N * N }, (_, i) => ((i % 13) - 6) * 0.01), [N, N]);
      const run = () => {
        let x = a;
        for (let i = 0; i < CHAIN; i++) {
          const y = matmul(x, a);
          if (x !== a) x.dispose();
          x = y;
        }
        x.dispose();
      };
      return {
        run,
        flops: 2 * N * N * N * CHAIN,
        dispose: () => {
          a.dispose();
          g.pacedWaits = before;
        },
      };
    },
  };
}

export const cases: BenchCase[] = [chain(true), chain(false)];
