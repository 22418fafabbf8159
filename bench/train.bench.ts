// Training kit at full size: an AdamW step and global-norm clipping over
// 8M parameters, the fused Dice+BCE loss (+ gradient) on an official window
// [1, 1, 32, 256, 256], and the host-side samplers (one training window from
// a 64×320×320 prepared case, one step's prompts on a 2M-voxel label).
import { clipGradNorm } from "../src/train/clip.js";
import { sampleWindow, type PreparedCase } from "../src/train/data.js";
import { diceBceLoss } from "../src/train/loss.js";
import { AdamW } from "../src/train/optim.js";
import { samplePrompts } from "../src/train/prompts.js";
import { Rng } from "../src/train/rng.js";
import { Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";

const P = 2048 * 4096;
const WIN = [32, 256, 256] as [number, number, number];
const NW = 32 * 256 * 256;

function ramp(n: number, f: (i: number) => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f(i);
  return a;
}

export const cases: BenchCase[] = [
  {
    op: "adamw_step",
    shape: "8M params",
    setup: () => {
      const p = { name: "w", value: Tensor.zeros([P]), grad: Tensor.from(ramp(P, (i) => Math.sin(i)), [P]) };
      const opt = new AdamW([p], { lr: 1e-4, weightDecay: 1e-5 });
      return { run: () => opt.step(), bytes: 28 * P, dispose: () => (opt.dispose(), p.value.dispose(), p.grad.dispose()) };
    },
  },
  {
    op: "clip_grad_norm",
    shape: "8M grads",
    setup: () => {
      const g = Tensor.from(ramp(P, (i) => Math.sin(i) * 1e-3), [P]);
      return { run: () => clipGradNorm([g], 1e9).dispose(), bytes: 12 * P, dispose: () => g.dispose() };
    },
  },
  {
    op: "dice_bce_loss",
    shape: "1x1x32x256x256",
    setup: () => {
      const x = Tensor.from(ramp(NW, (i) => Math.sin(i * 0.001) * 4), [1, 1, ...WIN]);
      const y = Tensor.from(ramp(NW, (i) => (i % 7 === 0 ? 1 : i % 11 === 0 ? -1 : 0)), [1, 1, ...WIN]);
      return {
        run: () => {
          const r = diceBceLoss(x, y);
          r.loss.dispose();
          r.terms.dispose();
          r.grad.dispose();
        },
        bytes: 20 * NW,
        dispose: () => (x.dispose(), y.dispose()),
      };
    },
  },
  {
    op: "sample_window (host)",
    shape: "64x320x320 -> 32x256x256",
    setup: () => {
      const shape = [64, 320, 320] as [number, number, number];
      const n = shape[0] * shape[1] * shape[2];
      const label = new Uint8Array(n);
      for (let i = 0; i < n; i += 13) label[i] = 1 + (i % 3 === 0 ? 1 : 0);
      const fg: number[] = [];
      for (let i = 0; i < n; i++) if (label[i]) fg.push(i);
      const c: PreparedCase = { name: "bench", shape, image: ramp(n, (i) => (i % 5) / 5), label, foreground: Int32Array.from(fg), backgroundCount: n - fg.length };
      const rng = new Rng(1);
      return { run: () => void sampleWindow(c, ["a", "b"], WIN, rng, { flipProb: 0.5, scaleProb: 1 }), dispose: () => {} };
    },
  },
  {
    op: "sample_prompts (host)",
    shape: "32x256x256 label",
    setup: () => {
      const m = new Uint8Array(NW);
      for (let d = 8; d < 24; d++) for (let h = 64; h < 192; h++) m.fill(1, (d * 256 + h) * 256 + 80, (d * 256 + h) * 256 + 170);
      const rng = new Rng(2);
      return { run: () => void samplePrompts(m, WIN, "liver", rng, { boxJitter: 10 }), dispose: () => {} };
    },
  },
];
