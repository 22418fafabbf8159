// The text path of the trainable SegVol on config B (768-wide decoder, small
// CLIP tower; weights re-created from the reference's counter hash, as in
// test/segvol/model.test.ts):
//  - with the text tower frozen, the tape forward with text prompts equals
//    the inference model's logits (tolerance 1e-4 relative: same kernels),
//    and the text embedding is computed once and cached;
//  - with the tower trainable, the embedding is the same value, recorded:
//    a backward reaches the CLIP parameters, and one AdamW step then
//    changes them.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SegVol, type WindowPrompt } from "../../src/segvol/model.js";
import { releaseGpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { backward, constant, noGrad } from "../../src/autograd/autograd.js";
import { add } from "../../src/autograd/ops.js";
import { AdamW } from "../../src/train/optim.js";
import { TrainableSegVol } from "../../src/train/segvol_train.js";
import { diceBce } from "../../src/train/trainer.js";
import { relError } from "../helpers/fixtures.js";
import { writeConfigBWeights } from "../helpers/config_b.js";

// bos … eos of the small vocabulary (eos = 63 is the highest id), as the model goldens.
const IDS = [62, 5, 17, 40, 9, 33, 63];
let dir = "";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "segvol-train-b-"));
  writeConfigBWeights(dir);
});

afterAll(() => {
  releaseGpu();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function window(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.011) * 0.5 + 0.5);
}

it("frozen text tower: logits of text prompts equal the inference model's; the embedding is cached", async () => {
  const ref = await SegVol.fromWeights(dir);
  const model = await TrainableSegVol.fromWeights(dir, { freeze: ["text_encoder."] });
  try {
    await model.prepare();
    const [D, H, W] = model.config.spatial_size;
    const win = window(D * H * W);
    const emb = ref.encodeImage(win);
    const refText = await ref.encodeTextIds(IDS);
    const t1 = model.textEmbeddingIds(IDS);
    expect(model.textEmbeddingIds(IDS)).toBe(t1);
    expect(relError(await t1.value.readFloat32(), refText.host)).toBeLessThanOrEqual(1e-4);
    const prompts: WindowPrompt[] = [{ text: "x" }, { text: "x", box: [1, 6, 10, 6, 40, 50] }, { text: "x", points: { coords: [[2, 20, 30]], labels: [1] } }];
    for (const p of prompts) {
      const want = await ref.decode(emb, { ...p, text: refText });
      const got = await noGrad(() => {
        const x = constant(Tensor.from(win, [1, 1, D, H, W]));
        return model.decode(model.encodeImage(x), p, t1);
      }).value.readFloat32();
      expect(relError(got, want), JSON.stringify(p)).toBeLessThanOrEqual(1e-4);
    }
    emb.dispose();
  } finally {
    ref.dispose();
    model.dispose();
  }
}, 300_000);

it("trainable text tower: the embedding is recorded, gradients reach CLIP, AdamW updates it", async () => {
  const model = await TrainableSegVol.fromWeights(dir, { freeze: ["image_encoder."] });
  try {
    await model.prepare();
    const [D, H, W] = model.config.spatial_size;
    const n = D * H * W;
    const lab = Float32Array.from({ length: n }, (_, i) => (i % W > 20 && i % W < 40 ? 1 : 0));
    const labels = Tensor.from(lab, [1, 1, D, H, W]);
    const x = constant(Tensor.from(window(n), [1, 1, D, H, W]));
    const tokens = model.encodeImage(x);
    expect(tokens.requiresGrad).toBe(false);
    const text = model.textEmbeddingIds(IDS);
    expect(text.requiresGrad).toBe(true);
    const l1 = diceBce(model.decode(tokens, { text: "x" }, text), labels);
    const l2 = diceBce(model.decode(tokens, { text: "x", box: [1, 6, 10, 6, 40, 50] }, text), labels);
    const loss = add(l1, l2);
    backward(loss);
    loss.dispose();
    tokens.dispose();
    x.dispose();
    labels.dispose();
    model.releaseStep();
    const clip = model.trainable.filter((p) => p.name.startsWith("text_encoder."));
    expect(clip.length).toBeGreaterThan(10);
    for (const p of clip) expect(p.grad, p.name).not.toBeNull();
    expect(model.trainable.some((p) => p.name.startsWith("image_encoder."))).toBe(false);
    const name = "text_encoder.clip_text_model.text_model.encoder.layers.0.mlp.fc1.weight";
    const before = await model.v(name).value.readFloat32();
    const opt = new AdamW(model.trainable, { lr: 1e-3 });
    opt.step();
    const after = await model.v(name).value.readFloat32();
    expect(relError(after, before)).toBeGreaterThan(1e-4);
    opt.dispose();
  } finally {
    model.dispose();
  }
}, 300_000);
