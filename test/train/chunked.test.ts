// The training kernels with storage bindings limited to 16 KiB, so that a
// few thousand values span several bindings: the loss reads logits and
// labels through segments and writes its gradient per chunk; the optimiser
// and clipping kernels bind every tensor window by window. Same goldens and
// tolerances as the unlimited tests.
import { describe, expect, it } from "vitest";
import { clipGradNorm } from "../../src/train/clip.js";
import { diceBceLoss } from "../../src/train/loss.js";
import { AdamW } from "../../src/train/optim.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu({ maxBindingBytes: 1 << 14 });

describe("training kernels across binding chunks", () => {
  it("loss: multi-segment logits and labels", async () => {
    const c = loadFixture("train/loss").find((k) => k.name === "multiblock")!;
    const x = Tensor.from(c.inputs.logits!.data as Float32Array, c.inputs.logits!.shape);
    const y = Tensor.from(c.inputs.labels!.data as Float32Array, c.inputs.labels!.shape);
    expect(x.byteLength).toBeGreaterThan(4 << 14);
    const { loss, grad } = diceBceLoss(x, y);
    expect(relError(await loss.readFloat32(), c.outputs.loss!.data)).toBeLessThanOrEqual(1e-5);
    expect(relError(await grad.readFloat32(), c.outputs.grad!.data)).toBeLessThanOrEqual(1e-5);
  });

  it("clip: a gradient over two bindings", async () => {
    const c = loadFixture("train/clip").find((k) => k.name === "clip_active")!;
    const n = c.params.count as number;
    const grads = Array.from({ length: n }, (_, k) => Tensor.from(c.inputs[`g${k}`]!.data as Float32Array, c.inputs[`g${k}`]!.shape));
    const norm = clipGradNorm(grads, c.params.maxNorm as number);
    expect(relError(await norm.readFloat32(), c.outputs.norm!.data)).toBeLessThanOrEqual(1e-5);
    for (let k = 0; k < n; k++) expect(relError(await grads[k]!.readFloat32(), c.outputs[`g${k}`]!.data)).toBeLessThanOrEqual(1e-5);
  });

  it("AdamW: a parameter over three bindings matches a plain-TS AdamW", async () => {
    const n = 10001;
    const x0 = new Float32Array(n).map((_, i) => Math.sin(i));
    const g0 = new Float32Array(n).map((_, i) => Math.cos(i * 0.3));
    const p = { name: "p", value: Tensor.from(x0, [n]), grad: Tensor.from(g0, [n]) };
    const opt = new AdamW([p], { lr: 0.01, weightDecay: 0.1 });
    opt.step();
    opt.step();
    const got = await p.value.readFloat32();
    // Reference in double precision: two identical-gradient steps.
    let worst = 0;
    for (let i = 0; i < n; i++) {
      let x = x0[i]!, m = 0, v = 0;
      const g = g0[i]!;
      for (let t = 1; t <= 2; t++) {
        x *= 1 - 0.01 * 0.1;
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        x -= ((0.01 / (1 - 0.9 ** t)) * m) / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8);
      }
      worst = Math.max(worst, Math.abs(got[i]! - x));
    }
    expect(worst).toBeLessThanOrEqual(1e-6);
    opt.dispose();
  });
});
