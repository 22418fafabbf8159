// Training steps of a model with a trainable text tower (the demo weights) on
// a phantom: when a step's drawn prompt sets have no text prompt (one set per
// organ, shared: half the steps), the text tower must not run, or its
// recorded graph, which no loss reaches, would leak. GPU buffers must stay
// constant from step to step either way.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { writePhantom } from "../../src/demo/phantom.js";
import { gpu, initGpu, releaseGpu } from "../../src/tensor/device.js";
import { zeroGrad } from "../../src/autograd/autograd.js";
import { MsdDataset } from "../../src/train/data.js";
import { Rng } from "../../src/train/rng.js";
import { TrainableSegVol } from "../../src/train/segvol_train.js";
import { trainStep } from "../../src/train/trainer.js";

const DEMO = join(__dirname, "..", "..", "weights", "demo");
const ORGANS = ["liver", "spleen", "left kidney", "right kidney"];
let dir = "";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "segvol-text-step-"));
  writePhantom(dir, 1000, { labels: ORGANS, dims: [96, 96, 40] });
  await initGpu();
});

afterAll(() => {
  releaseGpu();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it("steps with and without text prompts keep GPU memory constant (the text tower runs only when a set has text)", async () => {
  const model = await TrainableSegVol.fromWeights(DEMO);
  try {
    const ds = new MsdDataset(dir, { categories: ORGANS, spatialSize: [...model.config.spatial_size] as [number, number, number], augment: { resizeProb: 1, flipProb: 0 } });
    let textRuns = 0;
    const textEmbeddings = model.textEmbeddings.bind(model);
    model.textEmbeddings = (cats) => (textRuns++, textEmbeddings(cats));
    const rng = new Rng(5);
    const live: number[] = [];
    const steps = 8;
    for (let s = 0; s < steps; s++) {
      const loss = await trainStep(model, ds, rng, {}, {}, { categories: "all", setsPerCategory: 1, sharedSets: true });
      expect(Number.isFinite(loss)).toBe(true);
      zeroGrad(model.vars.values());
      live.push(gpu().pool.stats().buffers);
    }
    // Both kinds of step happened.
    expect(textRuns).toBeGreaterThan(0);
    expect(textRuns).toBeLessThan(steps);
    expect(new Set(live.slice(1)).size, `live buffers per step: ${live.join(", ")}`).toBe(1);
  } finally {
    model.dispose();
  }
}, 180_000);
