// One training step of SegVol config A, all parameters trainable, against
// PyTorch (tools/fixtures/gen_train_step.py, float64 reference on the same
// float32 weights): the summed loss of the three spatial prompt sets, every
// parameter's gradient, and every parameter after one AdamW step.
// Tolerances (max |err| / max |ref| per tensor, on the fixture's sample of
// each tensor): loss 1e-4; gradients 1e-3 (f32 backward through two ViT
// blocks and the decoder vs float64); updated parameters 1e-4 (the issue's
// bar). A parameter without a gradient here (a mask hypernetwork other than
// mask 0: zero gradient in torch) is compared against torch's zero-gradient
// step, which only applies the weight decay. The attention k_proj biases
// have an exactly-zero gradient (softmax is shift invariant), so their
// rounding noise is compared against the weight gradient's scale and their
// update is bounded by lr instead (see below; PyTorch float32 vs float64
// shows the same).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/segvol/convert.js";
import type { Box6, WindowPrompt } from "../../src/segvol/model.js";
import type { Vec3 } from "../../src/segvol/prompt_encoder.js";
import { releaseGpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { Var, backward, constant } from "../../src/autograd/autograd.js";
import { add } from "../../src/autograd/ops.js";
import { AdamW } from "../../src/train/optim.js";
import { TrainableSegVol } from "../../src/train/segvol_train.js";
import { diceBce } from "../../src/train/trainer.js";
import { loadFixture, relError } from "../helpers/fixtures.js";

const FIX = join(__dirname, "..", "fixtures", "model");
const golden = loadFixture("train/train_step")[0]!;
let dir = "";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "segvol-step-"));
  convertCheckpoint({ checkpoint: join(FIX, "config_a.bin"), outDir: join(dir, "w"), config: join(FIX, "config_a.json") });
});

afterAll(() => {
  releaseGpu();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every k-th element, as the generator samples (k = ceil(n / sample)). */
function sampled(a: Float32Array, sample: number): Float32Array {
  const k = Math.max(1, Math.ceil(a.length / sample));
  return a.filter((_, i) => i % k === 0);
}

it("one AdamW step of config A matches PyTorch (loss, gradients, updated parameters)", async () => {
  const p = golden.params as { lr: number; weightDecay: number; box: number[]; points: number[][]; labels: number[]; loss: number; sample: number };
  const model = await TrainableSegVol.fromWeights(join(dir, "w"));
  try {
    await model.prepare();
    const [D, H, W] = model.config.spatial_size;
    const n = D * H * W;
    // The generator's window and label.
    const win = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
    const lab = new Float32Array(n);
    for (let d = 3; d < 10; d++) for (let h = 8; h < 28; h++) for (let w = 6; w < 22; w++) lab[(d * H + h) * W + w] = 1;
    const labels = Tensor.from(lab, [1, 1, D, H, W]);
    const points = { coords: p.points as Vec3[], labels: p.labels };
    const box = p.box as Box6;
    const sets: WindowPrompt[] = [{ box }, { points }, { points, box }];
    const x = constant(Tensor.from(win, [1, 1, D, H, W]));
    const tokens = model.encodeImage(x);
    let total: Var | null = null;
    for (const s of sets) {
      const l = diceBce(model.decode(tokens, s, null), labels);
      total = total ? add(total, l) : l;
    }
    backward(total!);
    const loss = (await total!.value.readFloat32())[0]!;
    expect(Math.abs(loss - p.loss) / p.loss).toBeLessThanOrEqual(1e-4);
    total!.dispose();
    model.releaseStep();
    x.dispose();
    labels.dispose();

    const byName = new Map(model.trainable.map((t) => [t.name, t]));
    const names = [...new Set(Object.keys(golden.outputs).map((k) => k.replace(/\.(grad|after)$/, "")))];
    expect(names.length).toBeGreaterThan(100);
    const gradErr: [string, number][] = [];
    for (const name of names) {
      const tp = byName.get(name);
      expect(tp, name).toBeDefined();
      const ref = golden.outputs[`${name}.grad`]!.data as Float32Array;
      const got = tp!.grad ? sampled(await tp!.grad.readFloat32(), p.sample) : new Float32Array(ref.length);
      const maxRef = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      // An all-zero reference gradient (unused hypernetworks) must be zero here too.
      if (maxRef === 0) expect(got.every((v) => v === 0), name).toBe(true);
      else if (name.endsWith(".k_proj.bias")) {
        // Softmax ignores a shift shared by all keys: this gradient is exactly 0
        // in exact arithmetic (torch's float64 gives ~1e-17, f32 ~1e-9); what is
        // left is rounding, measured against the scale of the weight's gradient.
        const wRef = golden.outputs[`${name.replace(/bias$/, "weight")}.grad`]!.data as Float32Array;
        const scale = wRef.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        gradErr.push([name, got.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / scale]);
      } else gradErr.push([name, relError(got, ref)]);
    }
    const badGrads = gradErr.filter(([, e]) => !(e <= 1e-3));
    expect(badGrads, JSON.stringify(badGrads.slice(0, 40))).toEqual([]);

    const opt = new AdamW(model.trainable, { lr: p.lr, weightDecay: p.weightDecay });
    opt.step();
    // torch steps zero-gradient parameters (weight decay only); ours have no gradient: apply the decay to compare.
    const bad: string[] = [];
    for (const name of names) {
      const tp = byName.get(name)!;
      const ref = golden.outputs[`${name}.after`]!.data as Float32Array;
      let got = sampled(await tp.value.readFloat32(), p.sample);
      if (!tp.grad) got = got.map((v) => v * (1 - p.lr * p.weightDecay));
      if (name.endsWith(".k_proj.bias")) {
        // A zero gradient made of rounding noise: Adam's first step normalises
        // it to up to ±lr per element (PyTorch's own float32 step lands 3e-4 to
        // 8e-4 away from its float64 step on these seven tensors). Bound: lr.
        const e = got.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i]!)), 0);
        if (!(e <= p.lr * 1.001)) bad.push(`${name}: max |err| ${e.toExponential(2)} > lr`);
        continue;
      }
      const e = relError(got, ref);
      if (!(e <= 1e-4)) bad.push(`${name}: ${e.toExponential(2)}`);
    }
    expect(bad).toEqual([]);
    opt.dispose();
  } finally {
    model.dispose();
  }
}, 300_000);
