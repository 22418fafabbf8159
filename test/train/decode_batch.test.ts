// Batched decoding on the tape (TrainableSegVol.decodeBatch) against the
// one-prompt path, on the shipped demo weights (a text tower, all of it
// trainable here): item b of a batch must be what `decode` gives prompt b
// alone, and the batched loss × B must backpropagate the same parameter
// gradients as the B single losses summed. Same kernels either way, so the
// tolerances are rounding-level: logits 1e-5 and gradients 1e-4 (max |err| /
// max |expected|; the gradients sum B items in another order). The batch's
// text rows come from one padded pass of the text tower over its
// categories, the single prompts' from one pass each.
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Box6, WindowPrompt } from "../../src/segvol/model.js";
import type { Vec3 } from "../../src/segvol/prompt_encoder.js";
import { releaseGpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { Var, backward, constant, noGrad, zeroGrad } from "../../src/autograd/autograd.js";
import { add, affine } from "../../src/autograd/ops.js";
import { TrainableSegVol, promptLayout } from "../../src/train/segvol_train.js";
import { diceBce } from "../../src/train/trainer.js";
import { relError } from "../helpers/fixtures.js";

const DEMO = join(__dirname, "..", "..", "weights", "demo");
let model: TrainableSegVol;

beforeAll(async () => {
  model = await TrainableSegVol.fromWeights(DEMO);
  await model.prepare();
});

afterAll(() => {
  model?.dispose();
  releaseGpu();
});

/** Window [1, 1, D, H, W] and a label per batch item (a box of ones that moves with b). */
function inputs(B: number): { x: Var; labels: Float32Array[] } {
  const [D, H, W] = model.config.spatial_size;
  const n = D * H * W;
  const x = constant(Tensor.from(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.013) * 0.5 + 0.5), [1, 1, D, H, W]));
  const labels = Array.from({ length: B }, (_, b) => {
    const lab = new Float32Array(n);
    for (let d = 4 + b; d < 20 + b; d++) for (let h = 10 + 3 * b; h < 40; h++) for (let w = 8; w < 30 + 4 * b; w++) lab[(d * H + h) * W + w] = 1;
    return lab;
  });
  return { x, labels };
}

/** Every trainable parameter's gradient, then cleared. */
async function grads(): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const p of model.trainable) if (p.grad) out.set(p.name, await p.grad.readFloat32());
  zeroGrad(model.vars.values());
  return out;
}

const cases: { name: string; prompts: WindowPrompt[]; cats: string[] }[] = [
  {
    name: "box + text, three organs",
    cats: ["liver", "spleen", "left kidney"],
    prompts: ([[2, 5, 7, 20, 40, 33], [6, 12, 3, 28, 60, 50], [0, 0, 30, 31, 20, 63]] as Box6[]).map((box) => ({ box, text: "" })),
  },
  {
    name: "points (one padding) + text, two organs",
    cats: ["right kidney", "liver"],
    prompts: [
      { points: { coords: [[3, 10, 12], [20, 50, 40], [0, 0, 0]] as Vec3[], labels: [1, 0, -1] }, text: "" },
      { points: { coords: [[30, 2, 60], [8, 33, 21], [15, 15, 15]] as Vec3[], labels: [1, 1, 0] }, text: "" },
    ],
  },
  {
    name: "box + points, no text",
    cats: [],
    prompts: [
      { box: [1, 2, 3, 20, 30, 40], points: { coords: [[5, 6, 7]] as Vec3[], labels: [1] } },
      { box: [4, 9, 1, 31, 63, 22], points: { coords: [[30, 60, 5]] as Vec3[], labels: [0] } },
    ],
  },
];

for (const c of cases) {
  it(`decodeBatch equals decode per prompt, logits and gradients: ${c.name}`, async () => {
    const B = c.prompts.length;
    const [D, H, W] = model.config.spatial_size;
    const n = D * H * W;
    const { x, labels } = inputs(B);
    const withText = c.cats.length > 0;
    try {
      // One prompt at a time: B losses summed.
      const tokens1 = model.encodeImage(x);
      const ts1 = c.cats.map((cat) => model.textEmbedding(cat));
      let total: Var | null = null;
      const singleLogits: Float32Array[] = [];
      for (let b = 0; b < B; b++) {
        const logits = model.decode(tokens1, c.prompts[b]!, withText ? ts1[b]! : null);
        singleLogits.push(await logits.value.readFloat32());
        const y = Tensor.from(labels[b]!, [1, 1, D, H, W]);
        const l = diceBce(logits, y);
        y.dispose();
        total = total ? add(total, l) : l;
      }
      const lossSingle = (await total!.value.readFloat32())[0]!;
      backward(total!);
      total!.dispose();
      model.releaseStep();
      const gSingle = await grads();

      // The batch: its loss averages over items, so × B is the same sum.
      const tokensB = model.encodeImage(x);
      const lab = new Float32Array(B * n);
      labels.forEach((l, b) => lab.set(l, b * n));
      // The batch's text rows come from one batched pass of the text tower.
      const logitsB = model.decodeBatch(tokensB, c.prompts, withText ? model.textEmbeddings(c.cats) : null);
      expect(logitsB.shape).toEqual([B, 1, D, H, W]);
      const batched = await logitsB.value.readFloat32();
      const yB = Tensor.from(lab, [B, 1, D, H, W]);
      const lossB = affine(diceBce(logitsB, yB), B, 0);
      yB.dispose();
      const lossBatch = (await lossB.value.readFloat32())[0]!;
      backward(lossB);
      lossB.dispose();
      model.releaseStep();
      const gBatch = await grads();

      for (let b = 0; b < B; b++) expect(relError(batched.subarray(b * n, (b + 1) * n), singleLogits[b]!), `item ${b}`).toBeLessThanOrEqual(1e-5);
      expect(Math.abs(lossBatch - lossSingle) / lossSingle).toBeLessThanOrEqual(1e-5);
      // Every parameter that got a gradient one way got it the other way, the same.
      expect([...gBatch.keys()].sort()).toEqual([...gSingle.keys()].sort());
      expect(gSingle.size).toBeGreaterThan(50);
      if (withText) expect([...gSingle.keys()].some((k) => k.startsWith("text_encoder."))).toBe(true);
      for (const [name, g] of gSingle) {
        const got = gBatch.get(name)!;
        const maxAbs = (v: Float32Array) => v.reduce((m, e) => Math.max(m, Math.abs(e)), 0);
        if (name.endsWith(".k_proj.bias")) {
          // Exactly 0 in exact arithmetic (softmax ignores a shift shared by
          // all keys): both sides are rounding noise, bounded against the
          // scale of the weight's gradient (as in train_step.test.ts).
          const scale = maxAbs(gSingle.get(name.replace(/bias$/, "weight"))!);
          for (const v of [got, g]) expect(maxAbs(v) / scale, name).toBeLessThanOrEqual(1e-4);
        } else if (/\.(q_proj\.weight|q_proj\.bias|k_proj\.weight)$/.test(name)) {
          // The same shift invariance makes the query and key gradients
          // differences of large terms (Σ over keys of the softmax gradient
          // is 0); where the keys are alike (the text prompts share their
          // template) they are ~1000× smaller than the terms, so their
          // rounding is measured against the scale of the same attention's
          // value gradient.
          const scale = Math.max(maxAbs(g), maxAbs(gSingle.get(name.replace(/[qk]_proj\.(weight|bias)$/, "v_proj.weight"))!));
          let worst = 0;
          for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(got[i]! - g[i]!));
          expect(worst / scale, name).toBeLessThanOrEqual(1e-4);
        } else expect(relError(got, g), name).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      x.dispose();
    }
  }, 120_000);
}

it("decodeBatch refuses prompts of different layouts and a text prompt without its embedding", () => {
  const { x } = inputs(1);
  // Untaped: the refusals come before anything is recorded.
  const tokens = noGrad(() => model.encodeImage(x));
  try {
    const a: WindowPrompt = { box: [0, 0, 0, 5, 5, 5] };
    const b: WindowPrompt = { box: [0, 0, 0, 5, 5, 5], points: { coords: [[1, 1, 1]], labels: [1] } };
    expect(() => model.decodeBatch(tokens, [a, b], null)).toThrow(
      `decodeBatch: prompt 1 has layout ${promptLayout(b)}, prompt 0 has ${promptLayout(a)} (a batch shares one layout)`,
    );
    expect(() => model.decodeBatch(tokens, [{ text: "" }, { text: "" }], null)).toThrow("decodeBatch: the prompts have text but no text embeddings were given");
    const one = noGrad(() => model.textEmbeddings(["liver"]));
    expect(() => model.decodeBatch(tokens, [{ text: "" }, { text: "" }], one)).toThrow("decodeBatch: text embeddings [1, 96] must be [2, 96] (one row per prompt)");
    one.dispose();
    expect(() => model.decodeBatch(tokens, [], null)).toThrow(/no prompts/);
  } finally {
    tokens.dispose();
    x.dispose();
  }
});
