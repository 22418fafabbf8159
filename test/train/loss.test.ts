// The fused Dice + BCE loss against PyTorch (tools/fixtures/gen_train_loss.py,
// float64 autograd): loss, terms and gradient within 1e-5 relative
// (max |err| / max |expected|). Labels include −1 (counted as 0), a batch
// item without foreground, several reduction blocks per item and logits of
// ±100 (stability of sigmoid and BCE).
import { describe, expect, it } from "vitest";
import { diceBceLoss } from "../../src/train/loss.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const cases = loadFixture("train/loss");

describe("diceBceLoss vs PyTorch", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const x = Tensor.from(c.inputs.logits!.data as Float32Array, c.inputs.logits!.shape);
      const y = Tensor.from(c.inputs.labels!.data as Float32Array, c.inputs.labels!.shape);
      const { loss, terms, grad } = diceBceLoss(x, y);
      expect(loss.shape).toEqual([]);
      expect(grad.shape).toEqual(x.shape);
      expect(relError(await loss.readFloat32(), c.outputs.loss!.data)).toBeLessThanOrEqual(1e-5);
      expect(relError(await terms.readFloat32(), c.outputs.terms!.data)).toBeLessThanOrEqual(1e-5);
      expect(relError(await grad.readFloat32(), c.outputs.grad!.data)).toBeLessThanOrEqual(1e-5);
    });
  }

  // bceWeight w: loss = dice + w·bce and ∂/∂x = golden − (1 − w)·(p − t)/(B·M),
  // the BCE gradient in plain TS (p = sigmoid(x), t = label with −1 as 0).
  for (const w of [0, 0.25]) {
    it(`bceWeight ${w}: golden Dice term plus the weighted golden BCE term`, async () => {
      const c = cases[0]!;
      const xs = c.inputs.logits!.data as Float32Array;
      const ys = c.inputs.labels!.data as Float32Array;
      const shape = c.inputs.logits!.shape;
      const x = Tensor.from(xs, shape);
      const y = Tensor.from(ys, shape);
      const { loss, terms, grad } = diceBceLoss(x, y, { bceWeight: w });
      const [dice, bce] = Array.from(c.outputs.terms!.data);
      expect(relError(await terms.readFloat32(), [dice!, w * bce!])).toBeLessThanOrEqual(1e-5);
      expect(relError(await loss.readFloat32(), [dice! + w * bce!])).toBeLessThanOrEqual(1e-5);
      const g = Float64Array.from(c.outputs.grad!.data);
      for (let i = 0; i < g.length; i++) {
        const p = 1 / (1 + Math.exp(-xs[i]!));
        const t = ys[i] === -1 ? 0 : ys[i]!;
        g[i] -= ((1 - w) * (p - t)) / xs.length;
      }
      expect(relError(await grad.readFloat32(), g)).toBeLessThanOrEqual(1e-5);
    });
  }

  it("rejects a negative or non-finite bceWeight", () => {
    const x = Tensor.zeros([1, 4]);
    expect(() => diceBceLoss(x, Tensor.zeros([1, 4]), { bceWeight: -1 })).toThrow(/diceBceLoss: bceWeight must be a finite number ≥ 0, got -1/);
    expect(() => diceBceLoss(x, Tensor.zeros([1, 4]), { bceWeight: NaN })).toThrow(/bceWeight must be a finite number/);
  });

  it("rejects mismatched shapes and ranks, naming both", () => {
    const x = Tensor.zeros([2, 1, 3, 4, 5]);
    expect(() => diceBceLoss(x, Tensor.zeros([2, 1, 3, 4, 6]))).toThrow(
      /diceBceLoss: labels \[2, 1, 3, 4, 6\] must have the logits' shape \[2, 1, 3, 4, 5\]/,
    );
    expect(() => diceBceLoss(Tensor.zeros([7]), Tensor.zeros([7]))).toThrow(/diceBceLoss: logits must be \[B, \.\.\.\]/);
  });
});
