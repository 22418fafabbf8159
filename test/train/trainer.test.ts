// Training SegVol config A (no text tower; window 16×48×32, converted from
// the committed torch.save checkpoint) on three tiny synthetic MSD cases:
//  - the tape forward equals the inference model's logits (same weights,
//    same prompts; tolerance 1e-4 relative: identical kernels, only the
//    order of a few additions differs);
//  - the loss goes down on average (mean of the last 5 of 16 steps below the
//    mean of the first 5), frozen parameters stay bit-identical;
//  - a run stopped at step 3 and resumed reproduces the uninterrupted run's
//    losses exactly, and its checkpoint loads with SegVol.fromWeights;
//  - GPU memory does not grow from step to step (no tape leaks).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/segvol/convert.js";
import { SafetensorsFile } from "../../src/weights/safetensors.js";
import { niftiFromArray, writeNifti } from "../../src/io/nifti.js";
import { SegVol, type WindowPrompt } from "../../src/segvol/model.js";
import { gpu, initGpu, releaseGpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { constant, noGrad, zeroGrad } from "../../src/autograd/autograd.js";
import { TrainableSegVol, promptLayout } from "../../src/train/segvol_train.js";
import { train, trainStep, type TrainOptions } from "../../src/train/trainer.js";
import { MsdDataset } from "../../src/train/data.js";
import { diceBceLoss } from "../../src/train/loss.js";
import { samplePrompts } from "../../src/train/prompts.js";
import { Rng } from "../../src/train/rng.js";
import { relError } from "../helpers/fixtures.js";

const FIX = join(__dirname, "..", "fixtures", "model");
// NIfTI (I, J, K) → model space (D, H, W) = (K, J, I); a little larger than the window.
const I = 36, J = 52, K = 18;

function synth(seed: number): { image: Float32Array; label: Float32Array } {
  const image = new Float32Array(I * J * K);
  const label = new Float32Array(I * J * K);
  const c = [K / 2 + (seed % 3) - 1, J / 2 + 3 * seed - 3, I / 2 - 2 * seed + 2];
  for (let k = 0; k < K; k++) {
    for (let j = 0; j < J; j++) {
      for (let i = 0; i < I; i++) {
        const x = i + I * (j + J * k);
        const inBody = k >= 1 && k < K - 1 && j >= 2 && j < J - 2 && i >= 2 && i < I - 2;
        const r = Math.hypot((k - c[0]!) / 4, (j - c[1]!) / 10, (i - c[2]!) / 7);
        const blob = r < 1;
        const slab = j > J - 14 && j < J - 6 && i > 4 && i < 14 && inBody;
        image[x] = inBody ? (blob ? 220 : slab ? 60 : 120) + 10 * Math.sin(i * 0.9 + j * 0.4 + k + seed) : 0;
        label[x] = blob ? 1 : slab ? 2 : 0;
      }
    }
  }
  return { image, label };
}

let root = "";
let weights = "";
let data = "";

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "segvol-train-"));
  weights = join(root, "w");
  convertCheckpoint({ checkpoint: join(FIX, "config_a.bin"), outDir: weights, config: join(FIX, "config_a.json") });
  data = join(root, "msd");
  mkdirSync(join(data, "imagesTr"), { recursive: true });
  mkdirSync(join(data, "labelsTr"));
  for (let s = 0; s < 3; s++) {
    const v = synth(s);
    const name = `case_00${s}`;
    writeNifti(join(data, "imagesTr", `${name}.nii.gz`), niftiFromArray([I, J, K], v.image), v.image, "float32");
    writeNifti(join(data, "labelsTr", `${name}.nii.gz`), niftiFromArray([I, J, K], v.label), v.label, "uint8");
  }
});

afterAll(() => {
  releaseGpu();
  if (root) rmSync(root, { recursive: true, force: true });
});

function opts(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    data,
    categories: ["blob", "slab"],
    weights,
    out,
    steps: 6,
    lr: 1e-3,
    warmup: 2,
    weightDecay: 0.01,
    clip: 1,
    freeze: [],
    saveEvery: 0,
    seed: 7,
    resume: false,
    prompts: { maxExtraPositive: 3, maxExtraNegative: 3 },
    log: () => {},
    handleSigint: false,
    ...extra,
  };
}

describe("TrainableSegVol", () => {
  it("computes the inference model's logits", async () => {
    await initGpu();
    const ref = await SegVol.fromWeights(weights);
    const model = await TrainableSegVol.fromWeights(weights);
    try {
      await model.prepare();
      const [D, H, W] = model.config.spatial_size;
      const win = Float32Array.from({ length: D * H * W }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
      const prompts: WindowPrompt[] = [
        { box: [2, 5, 4, 11, 30, 20] },
        { points: { coords: [[3, 10, 9], [8, 40, 2], [0, 0, 0]], labels: [1, 0, -1] } },
        { points: { coords: [[5, 20, 11]], labels: [1] }, box: [1, 2, 3, 12, 44, 29] },
      ];
      const emb = ref.encodeImage(win);
      for (const p of prompts) {
        const want = await ref.decode(emb, p);
        const got = await noGrad(() => {
          const x = constant(Tensor.from(win, [1, 1, D, H, W]));
          const logits = model.decode(model.encodeImage(x), p, null);
          return logits;
        }).value.readFloat32();
        expect(relError(got, want), JSON.stringify(p)).toBeLessThanOrEqual(1e-4);
      }
      emb.dispose();
    } finally {
      ref.dispose();
      model.dispose();
    }
  }, 120_000);
  it("an all-categories step decodes each category with foreground and averages their set sums, batched by prompt layout or not", async () => {
    await initGpu();
    const ref = await SegVol.fromWeights(weights);
    const model = await TrainableSegVol.fromWeights(weights);
    const promptOpts = { maxExtraPositive: 3, maxExtraNegative: 3 };
    try {
      const ds = new MsdDataset(data, { categories: ["blob", "slab"], spatialSize: [...model.config.spatial_size] as [number, number, number], augment: { resizeProb: 1 } });
      for (const [setsPerCategory, sharedSets] of [[undefined, false], [2, false], [2, true]] as const) {
        // The reference replays the step's draws: window, then per present category its prompts (and set choice).
        const r = new Rng(11);
        const win = ds.sample(r);
        const present = ds.categories.filter((c) => win.labels.get(c)!.some((v) => v > 0));
        expect(present).toEqual(["blob", "slab"]); // a resized window holds both
        const emb = ref.encodeImage(win.image);
        let want = 0;
        const layouts = new Set<string>();
        const shared = sharedSets ? new Set(r.distinct(3, setsPerCategory!)) : null;
        for (const c of present) {
          const mask = win.labels.get(c)!;
          let sets = samplePrompts(mask, ds.spatialSize, null, r, promptOpts).sets;
          if (setsPerCategory !== undefined) {
            const keep = shared ?? new Set(r.distinct(sets.length, setsPerCategory));
            sets = sets.filter((_, i) => keep.has(i));
          }
          expect(sets.length).toBe(setsPerCategory ?? 3);
          const y = Tensor.from(Float32Array.from(mask), [1, 1, ...ds.spatialSize]);
          for (const s of sets) {
            layouts.add(promptLayout(s.prompt));
            const x = Tensor.from(await ref.decode(emb, s.prompt), [1, 1, ...ds.spatialSize]);
            const l = diceBceLoss(x, y);
            want += (await l.loss.readFloat32())[0]! / present.length;
            for (const t of [x, l.loss, l.terms, l.grad]) t.dispose();
          }
          y.dispose();
        }
        emb.dispose();
        for (const batchPrompts of [true, false]) {
          let decodes = 0;
          let batches = 0;
          const decodeBatch = model.decodeBatch.bind(model);
          model.decodeBatch = (tokens, prompts, texts) => (batches++, (decodes += prompts.length), decodeBatch(tokens, prompts, texts));
          const got = await trainStep(model, ds, new Rng(11), promptOpts, {}, { categories: "all", setsPerCategory, sharedSets, batchPrompts });
          model.decodeBatch = decodeBatch;
          zeroGrad(model.vars.values());
          expect(decodes).toBe(2 * (setsPerCategory ?? 3));
          expect(batches).toBe(batchPrompts ? layouts.size : decodes);
          if (sharedSets) expect(layouts.size).toBe(setsPerCategory);
          expect(Math.abs(got - want) / want).toBeLessThanOrEqual(1e-4);
        }
      }
      await expect(trainStep(model, ds, new Rng(1), {}, {}, { setsPerCategory: 0 })).rejects.toThrow(/setsPerCategory must be an integer ≥ 1, got 0/);
    } finally {
      ref.dispose();
      model.dispose();
    }
  }, 120_000);
});

describe("segvol train (config A)", () => {
  let full: Awaited<ReturnType<typeof train>>;

  it("drives the loss down, keeps frozen parameters and does not leak GPU memory", async () => {
    const out = join(root, "long");
    const before = SafetensorsFile.open(join(weights, "model.safetensors"));
    const liveAt: number[] = [];
    const res = await train(
      opts(out, {
        steps: 16,
        lr: 2e-3,
        // A frozen head of the encoder runs untaped (its outputs would otherwise leak).
        freeze: ["image_encoder.patch_embedding.", "image_encoder.blocks.0."],
        stopAfter: () => {
          liveAt.push(gpu().pool.stats().buffers);
          return false;
        },
      }),
    );
    expect(res.losses).toHaveLength(16);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(res.losses.slice(-5))).toBeLessThan(mean(res.losses.slice(0, 5)));
    // Live buffers after each step: constant once the first step made its caches.
    expect(new Set(liveAt.slice(1)).size).toBe(1);
    const after = SafetensorsFile.open(join(out, "checkpoint", "model.safetensors"));
    let changed = 0;
    for (const name of before.keys()) {
      const a = before.readF32(name);
      const b = after.readF32(name);
      const same = a.every((v, i) => v === b[i]);
      if (/^image_encoder\.(blocks\.0|patch_embedding)\.|^prompt_encoder\.pe_layer/.test(name)) expect(same, name).toBe(true);
      else if (!same) changed++;
    }
    expect(changed).toBeGreaterThan(50);
    const csv = readFileSync(join(out, "loss.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toBe("step,loss");
    expect(csv).toHaveLength(17);
    expect(existsSync(join(out, "loss.png"))).toBe(true);
  }, 600_000);

  it("does not leak with a frozen prompt path and transformer (only the upscaling and hypernetwork train)", async () => {
    const liveAt: number[] = [];
    const res = await train(
      opts(join(root, "head"), {
        steps: 4,
        freeze: ["image_encoder.", "prompt_encoder.", "mask_decoder.transformer.", "mask_decoder.iou_token.", "mask_decoder.mask_tokens."],
        stopAfter: () => {
          liveAt.push(gpu().pool.stats().buffers);
          return false;
        },
      }),
    );
    expect(res.losses.every(Number.isFinite)).toBe(true);
    expect(new Set(liveAt.slice(1)).size).toBe(1);
  }, 600_000);

  it("resumes exactly: a run stopped at step 3 and resumed repeats the uninterrupted losses", async () => {
    full = await train(opts(join(root, "full")));
    const out = join(root, "split");
    const first = await train(opts(out, { stopAfter: (s) => s === 3 }));
    expect(first.interrupted).toBe(true);
    expect(first.step).toBe(3);
    const rest = await train(opts(out, { resume: true }));
    expect(rest.step).toBe(6);
    expect(rest.stepsRun).toBe(3);
    expect(rest.losses).toEqual(full.losses);
    // Resuming a finished run runs no step and keeps the losses.
    const again = await train(opts(out, { resume: true }));
    expect(again.stepsRun).toBe(0);
    expect(again.losses).toEqual(full.losses);
    // The checkpoint is a weights folder the inference model loads.
    const m = await SegVol.fromWeights(join(out, "checkpoint"));
    m.dispose();
    const a = SafetensorsFile.open(join(out, "checkpoint", "model.safetensors"));
    const b = SafetensorsFile.open(join(root, "full", "checkpoint", "model.safetensors"));
    for (const name of a.keys()) expect(a.readF32(name), name).toEqual(b.readF32(name));
  }, 600_000);
});
