// The SegVol training loop (spec §7). One step:
//  1. a random window of a random case (MsdDataset, seeded Rng);
//  2. one category of the window (a random one among those with foreground;
//     a random one when the window has none), or with `step.categories:
//     "all"` every category with foreground, and per category its prompts
//     (box, points, and the six prompt sets, or the three spatial ones
//     without a text tower; `step.setsPerCategory` draws fewer at random,
//     per category or, with `step.sharedSets`, once for the step);
//  3. the image encoded ONCE; every prompt set decodes from that same Var,
//     so the backward pass accumulates the six decoders' gradients into it;
//     (sets with one token layout decode as one batch, `step.batchPrompts`);
//  4. loss = Σ over prompt sets of Dice + BCE (averaged over the step's
//     categories); backward; clip by global norm;
//     AdamW with the warm-up + cosine learning rate; gradients cleared.
// Checkpoints (src/train/checkpoint.ts) go to OUT/checkpoint every
// `saveEvery` steps, at the end and on SIGINT; `resume` restores weights,
// optimiser, RNG, step and loss history, so a resumed run draws the same
// windows and prompts and reproduces the uninterrupted run's losses.
import { join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { binary } from "../kernels/elementwise.js";
import { gpu } from "../tensor/device.js";
import { Tensor } from "../tensor/tensor.js";
import { Var, backward, constant, customOp, zeroGrad } from "../autograd/autograd.js";
import { disposeOptimState, loadTrainerState, saveCheckpoint } from "./checkpoint.js";
import { clipGradNorm } from "./clip.js";
import { MsdDataset, listMsdCases, type AugmentOptions } from "./data.js";
import { diceBceLoss, type SegLossOptions } from "./loss.js";
import { add, affine, gather } from "../autograd/ops.js";
import { writeLossFiles } from "./loss_plot.js";
import { AdamW } from "./optim.js";
import { samplePrompts, type PromptOptions, type StepPrompts } from "./prompts.js";
import { Rng } from "./rng.js";
import { learningRate, checkSchedule, type ScheduleOptions } from "./schedule.js";
import { TrainableSegVol, promptLayout } from "./segvol_train.js";
import type { WindowPrompt } from "../segvol/model.js";

/** Dice + BCE of logits against a label tensor, as a tape node (its gradient is computed with the loss). */
export function diceBce(logits: Var, labels: Tensor, opts: SegLossOptions = {}): Var {
  const { loss, terms, grad } = diceBceLoss(logits.value, labels, opts);
  terms.dispose();
  return customOp("diceBceLoss", [logits], loss, (g) => [binary("mul", grad, g)], [grad]);
}

export interface TrainOptions {
  data: string;
  categories: string[];
  /** Source weights folder (`segvol convert` output); with `resume`, OUT/checkpoint is loaded instead. */
  weights: string;
  out: string;
  steps: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  /** Max global gradient norm. */
  clip: number;
  freeze: string[];
  /** Checkpoint every N steps (0: only at the end). */
  saveEvery: number;
  seed: number;
  resume: boolean;
  augment?: AugmentOptions;
  prompts?: PromptOptions;
  /** Loss weighting (default: the spec's Dice + BCE). */
  loss?: SegLossOptions;
  /** Categories and prompt sets per step (default: one category, all sets). */
  step?: StepOptions;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Stop (with a checkpoint) once this returns true after a step; for tests, like SIGINT. */
  stopAfter?: (step: number) => boolean;
  /** Listen for SIGINT (default true). */
  handleSigint?: boolean;
}

export interface TrainResult {
  /** Loss of every step done so far (resumed runs include the earlier steps). */
  losses: number[];
  /** Steps done in total. */
  step: number;
  /** Steps this run did (0 when a resumed run was already complete). */
  stepsRun: number;
  /** Steps of this run per second of wall time (excluding checkpoint writes). */
  stepsPerSecond: number;
  interrupted: boolean;
  checkpoint: string;
  /** Peak bytes of GPU tensors during this run. */
  peakBytes: number;
}

function checkOptions(o: TrainOptions): void {
  const bad = (m: string) => {
    throw new Error(`train: ${m}`);
  };
  if (!Number.isInteger(o.steps) || o.steps < 1) bad(`--steps must be an integer ≥ 1, got ${o.steps}`);
  if (!Number.isInteger(o.saveEvery) || o.saveEvery < 0) bad(`--save-every must be an integer ≥ 0, got ${o.saveEvery}`);
  if (!Number.isInteger(o.seed) || o.seed < 0) bad(`--seed must be an integer ≥ 0, got ${o.seed}`);
  if (!(Number.isFinite(o.weightDecay) && o.weightDecay >= 0)) bad(`--weight-decay must be ≥ 0, got ${o.weightDecay}`);
  if (!(Number.isFinite(o.clip) && o.clip > 0)) bad(`--clip must be > 0, got ${o.clip}`);
  if (o.categories.length === 0) bad("--categories: give at least one category name");
  checkSchedule(schedule(o));
}

function schedule(o: TrainOptions): ScheduleOptions {
  return { baseLr: o.lr, warmupSteps: Math.min(o.warmup, o.steps), totalSteps: o.steps };
}

export interface StepOptions {
  /**
   * Which categories of the window a step trains: "one" (default) is one
   * random category with foreground in the window; "all" is every category
   * with foreground there, as upstream, which loops over a batch's
   * categories. The image is encoded once either way; "all" costs one decoder
   * pass per category and prompt set, and teaches the text prompts to tell
   * the organs of one window apart.
   */
  categories?: "one" | "all";
  /** Prompt sets per category: all of them (default; six with text) or this many drawn at random, kept in upstream order. */
  setsPerCategory?: number;
  /**
   * With `setsPerCategory`, draw which prompt sets once per step and use
   * them for every category of the step (default false: a draw per
   * category). Each category still sees each set equally often; the step's
   * sets then share a few token layouts, so batched decoding
   * (`batchPrompts`) needs fewer, larger batches.
   */
  sharedSets?: boolean;
  /**
   * Decode the step's prompt sets that share a token layout (e.g. the
   * box+text sets of every category) as one batch (default true). The loss
   * and gradients are the same sums either way, up to float rounding; the
   * batch records the decoder's dispatches once per layout, not per set.
   */
  batchPrompts?: boolean;
}

/** The (category, prompt set) pairs of one step, drawn from `rng` in a fixed order. */
function stepTargets(
  win: { labels: Map<string, Uint8Array> },
  cats: readonly string[],
  spatial: [number, number, number],
  hasText: boolean,
  rng: Rng,
  promptOpts: PromptOptions,
  stepOpts: StepOptions,
): { cat: string; mask: Uint8Array; sets: StepPrompts["sets"] }[] {
  const present = cats.filter((c) => win.labels.get(c)!.some((v) => v > 0));
  let chosen: string[];
  if (present.length === 0) chosen = [cats[rng.below(cats.length)]!];
  else if ((stepOpts.categories ?? "one") === "all") chosen = present;
  else chosen = [present[rng.below(present.length)]!];
  const k = stepOpts.setsPerCategory;
  const setCount = hasText ? 6 : 3;
  const shared = stepOpts.sharedSets && k !== undefined && k < setCount ? new Set(rng.distinct(setCount, k)) : null;
  return chosen.map((cat) => {
    const mask = win.labels.get(cat)!;
    const prompts = samplePrompts(mask, spatial, hasText ? cat : null, rng, promptOpts);
    let sets = prompts.sets;
    if (sets.length !== setCount) throw new Error(`train: ${sets.length} prompt sets for "${cat}", expected ${setCount}`);
    if (k !== undefined && k < sets.length) {
      const keep = shared ?? new Set(rng.distinct(sets.length, k));
      sets = sets.filter((_, i) => keep.has(i));
    }
    return { cat, mask, sets };
  });
}

/**
 * One training step. Returns the loss: per category the sum over its prompt
 * sets, averaged over the step's categories (the gradient is that of the same
 * average, so "one" and "all" steps are on one scale).
 */
export async function trainStep(
  model: TrainableSegVol,
  data: MsdDataset,
  rng: Rng,
  promptOpts: PromptOptions = {},
  lossOpts: SegLossOptions = {},
  stepOpts: StepOptions = {},
): Promise<number> {
  const k = stepOpts.setsPerCategory;
  if (k !== undefined && !(Number.isInteger(k) && k >= 1)) throw new Error(`train: setsPerCategory must be an integer ≥ 1, got ${k}`);
  const win = data.sample(rng);
  const spatial = data.spatialSize;
  const targets = stepTargets(win, data.categories, spatial, model.hasText, rng, promptOpts, stepOpts);
  const [D, H, W] = spatial;
  const temps: Var[] = [];
  const labels: Tensor[] = [];
  let tokens: Var | null = null;
  let total: Var | null = null;
  try {
    const window = constant(Tensor.from(win.image, [1, model.config.in_channels, D, H, W]));
    temps.push(window);
    await model.prepare();
    tokens = model.encodeImage(window);
    // The step's categories' text embeddings (rows of one batched pass),
    // only when a set has text: a recorded pass that no loss reaches would
    // leak. Then every (category, prompt set) pair, grouped by token layout
    // when batching.
    const withText = targets.some((t) => t.sets.some((s) => s.prompt.text !== undefined));
    const texts = model.hasText && withText ? model.textEmbeddings(targets.map((t) => t.cat)) : null;
    const groups = new Map<string, { prompt: WindowPrompt; row: number; mask: Uint8Array }[]>();
    targets.forEach((t, row) => {
      t.sets.forEach((s, i) => {
        const key = stepOpts.batchPrompts === false ? `${t.cat} ${i}` : promptLayout(s.prompt);
        let g = groups.get(key);
        if (!g) groups.set(key, (g = []));
        g.push({ prompt: s.prompt, row, mask: t.mask });
      });
    });
    const n = D * H * W;
    for (const g of groups.values()) {
      const lab = new Float32Array(g.length * n);
      g.forEach((item, b) => lab.set(item.mask, b * n));
      const y = Tensor.from(lab, [g.length, 1, D, H, W]);
      labels.push(y);
      const rows = g[0]!.prompt.text !== undefined ? gather(texts!, g.map((item) => item.row)) : null;
      // Rows gathered from a frozen tower's (untaped) embeddings are ours to free.
      if (rows && !rows.onTape) temps.push(rows);
      const logits = model.decodeBatch(tokens, g.map((item) => item.prompt), rows);
      // The batched loss averages over its items; the step sums over sets.
      let l = diceBce(logits, y, lossOpts);
      if (g.length > 1) l = affine(l, g.length, 0);
      total = total ? add(total, l) : l;
    }
    if (targets.length > 1) total = affine(total!, 1 / targets.length, 0);
    backward(total!);
    return (await total!.value.readFloat32())[0]!;
  } finally {
    total?.dispose();
    // A recorded image embedding was freed by backward; a frozen encoder's is ours.
    if (tokens && !tokens.onTape) tokens.dispose();
    for (const t of temps) t.dispose();
    model.releaseStep();
    for (const y of labels) y.dispose();
  }
}

/** Trains (or resumes) and writes checkpoints and the loss files under `out`. */
export async function train(o: TrainOptions): Promise<TrainResult> {
  checkOptions(o);
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const out = resolve(o.out);
  const ckptDir = join(out, "checkpoint");
  if (o.resume && !existsSync(ckptDir)) throw new Error(`train --resume: ${ckptDir} does not exist (no checkpoint to resume from)`);
  const srcDir = o.resume ? ckptDir : resolve(o.weights);
  listMsdCases(o.data); // a bad data folder fails before the weights are loaded

  const model = await TrainableSegVol.fromWeights(srcDir, { freeze: o.freeze });
  const optimizer = new AdamW(model.trainable, { lr: o.lr, weightDecay: o.weightDecay });
  const data = new MsdDataset(o.data, { categories: o.categories, spatialSize: [...model.config.spatial_size] as [number, number, number], augment: o.augment });
  const rng = new Rng(o.seed);
  let step = 0;
  let losses: number[] = [];
  const runOptions = runOptionsOf(o);
  if (o.resume) ({ step, losses } = resumeState(ckptDir, runOptions, optimizer, rng, log));
  const trainableCount = model.trainable.reduce((n, p) => n + p.value.size, 0);
  log(`training ${model.trainable.length} tensors (${trainableCount} parameters), ${model.frozenNames.length} frozen; ${data.length} cases; ${o.steps} steps`);

  let interrupted = false;
  const onSigint = () => {
    // A second Ctrl-C gives up on the checkpoint (the last saved one stays intact: saves are atomic).
    if (interrupted) process.exit(130);
    interrupted = true;
    log("interrupt: saving a checkpoint after this step… (Ctrl-C again to quit without it)");
  };
  const listen = o.handleSigint ?? true;
  if (listen) process.on("SIGINT", onSigint);
  const save = async () => {
    await saveCheckpoint(ckptDir, {
      model,
      optimizer,
      sourceDir: srcDir,
      state: { step, rng: rng.state(), losses, options: runOptions },
    });
    writeLossFiles(out, losses);
  };
  const sched = schedule(o);
  const pool = gpu().pool;
  pool.resetPeak();
  let stepTime = 0;
  let stepsRun = 0;
  try {
    while (step < o.steps && !interrupted) {
      const t0 = performance.now();
      const loss = await trainStep(model, data, rng, o.prompts, o.loss, o.step);
      clipGradNorm(model.trainable, o.clip).dispose();
      optimizer.lr = learningRate(step, sched);
      optimizer.step();
      zeroGrad(model.vars.values());
      step++;
      stepsRun++;
      losses.push(loss);
      stepTime += performance.now() - t0;
      log(`step ${step}/${o.steps}  loss ${loss.toFixed(5)}  lr ${optimizer.lr.toExponential(2)}  ${((1000 * stepsRun) / stepTime).toFixed(3)} steps/s`);
      if (o.stopAfter?.(step)) interrupted = true;
      if (!interrupted && step < o.steps && o.saveEvery > 0 && step % o.saveEvery === 0) await save();
    }
    await save();
    log(`${interrupted ? "interrupted; " : ""}checkpoint at step ${step}: ${ckptDir}`);
    return {
      losses,
      step,
      stepsRun,
      stepsPerSecond: stepTime > 0 ? (1000 * stepsRun) / stepTime : 0,
      interrupted,
      checkpoint: ckptDir,
      peakBytes: pool.stats().peak,
    };
  } finally {
    if (listen) process.off("SIGINT", onSigint);
    optimizer.dispose();
    model.dispose();
  }
}

/** The options a checkpoint records (trainer_state.json), so that a resumed run can be checked against them. */
function runOptionsOf(o: TrainOptions) {
  return {
    categories: o.categories,
    freeze: o.freeze,
    steps: o.steps,
    lr: o.lr,
    warmup: o.warmup,
    weightDecay: o.weightDecay,
    clip: o.clip,
    seed: o.seed,
    augment: o.augment ?? {},
    prompts: o.prompts ?? {},
    loss: o.loss ?? {},
    step: o.step ?? {},
  };
}

/**
 * Restores the optimiser and the RNG from a checkpoint and returns its step
 * and losses. A resumed run must train the same categories with the same
 * parameters frozen, or the optimiser state would not fit.
 */
function resumeState(
  ckptDir: string,
  runOptions: ReturnType<typeof runOptionsOf>,
  optimizer: AdamW,
  rng: Rng,
  log: (line: string) => void,
): { step: number; losses: number[] } {
  const st = loadTrainerState(ckptDir);
  try {
    const prev = st.json.options;
    for (const k of ["categories", "freeze"] as const) {
      if (JSON.stringify(prev[k]) !== JSON.stringify(runOptions[k])) {
        throw new Error(`train --resume: --${k} ${JSON.stringify(runOptions[k])} differs from the checkpoint's ${JSON.stringify(prev[k])}`);
      }
    }
    optimizer.loadState(st.optim);
  } finally {
    disposeOptimState(st.optim);
  }
  rng.setState(st.json.rng);
  const step = st.json.step;
  log(`resumed from ${ckptDir} at step ${step}`);
  return { step, losses: [...st.json.losses] };
}
