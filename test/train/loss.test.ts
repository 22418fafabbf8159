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

  it("rejects mismatched shapes and ranks, naming both", () => {
    const x = Tensor.zeros([2, 1, 3, 4, 5]);
    expect(() => diceBceLoss(x, Tensor.zeros([2, 1, 3, 4, 6]))).toThrow(
      /diceBceLoss: labels \[2, 1, 3, 4, 6\] must have the logits' shape \[2, 1, 3, 4, 5\]/,
    );
    expect(() => diceBceLoss(Tensor.zeros([7]), Tensor.zeros([7]))).toThrow(/diceBceLoss: logits must be \[B, \.\.\.\]/);
  });
});
