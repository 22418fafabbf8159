// `segvol train`: fine-tunes SegVol on an MSD-layout folder. The loop is
// src/train/trainer.ts; this checks the flags and prints the summary.
import type { Command } from "commander";
import { releaseGpu } from "../tensor/device.js";
import { train, type TrainOptions } from "../train/trainer.js";
import { examples } from "./help.js";
import { collect, names } from "./parse.js";

interface TrainFlags {
  data: string;
  categories: string[];
  weights: string;
  out: string;
  steps: string;
  lr: string;
  warmup: string;
  weightDecay: string;
  clip: string;
  freeze?: string[];
  saveEvery: string;
  seed: string;
  resume?: boolean;
  bceWeight: string;
  resizeProb: string;
  posFraction: string;
  allCategories?: boolean;
  flipProb: string;
  cropCentre: string;
  boxJitter: string;
  setsPerCategory?: string;
  sharedSets?: boolean;
}

function sharedSets(o: TrainFlags): boolean {
  if (o.sharedSets && o.setsPerCategory === undefined) throw new Error("--shared-sets: give --sets-per-category too (it shares that draw between the step's categories)");
  return o.sharedSets ?? false;
}

function int(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min) throw new Error(`${flag} ${v}: expected an integer ≥ ${min}`);
  return n;
}

function prob(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !(n >= 0 && n <= 1)) throw new Error(`${flag} ${v}: expected a probability in [0, 1]`);
  return n;
}

function num(flag: string, v: string, positive: boolean): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0 || (positive && n === 0)) throw new Error(`${flag} ${v}: expected a number ${positive ? "> 0" : "≥ 0"}`);
  return n;
}

function cropCentre(v: string): "voxel" | "category" {
  if (v !== "voxel" && v !== "category") throw new Error(`--crop-centre ${v}: expected voxel or category`);
  return v;
}

/** The trainer's options from the parsed flags; every number checked and named (TrainFlags are commander's strings). */
export function trainOptions(o: TrainFlags): TrainOptions {
  return {
    data: o.data,
    categories: o.categories,
    weights: o.weights,
    out: o.out,
    steps: int("--steps", o.steps, 1),
    lr: num("--lr", o.lr, false),
    warmup: int("--warmup", o.warmup, 0),
    weightDecay: num("--weight-decay", o.weightDecay, false),
    clip: num("--clip", o.clip, true),
    freeze: o.freeze ?? [],
    saveEvery: int("--save-every", o.saveEvery, 0),
    seed: int("--seed", o.seed, 0),
    resume: o.resume ?? false,
    loss: { bceWeight: num("--bce-weight", o.bceWeight, false) },
    step: {
      categories: o.allCategories ? "all" : "one",
      setsPerCategory: o.setsPerCategory === undefined ? undefined : int("--sets-per-category", o.setsPerCategory, 1),
      sharedSets: sharedSets(o),
    },
    augment: { resizeProb: prob("--resize-prob", o.resizeProb), posFraction: prob("--pos-fraction", o.posFraction), flipProb: prob("--flip-prob", o.flipProb), cropCentre: cropCentre(o.cropCentre) },
    prompts: { boxJitter: int("--box-jitter", o.boxJitter, 0) },
  };
}

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description("fine-tune SegVol on NIfTI image/label pairs (MSD layout); checkpoints are weights folders")
    .requiredOption("--data <dir>", "dataset folder with imagesTr/ and labelsTr/ (label values 1..K)")
    .requiredOption("--categories <name>", "name of label value 1, then 2, …; repeatable (or comma-separated)", names("--categories"))
    .requiredOption("--weights <dir>", "initial weights (a folder written by `segvol convert`)")
    .requiredOption("--out <dir>", "output folder: checkpoint/, loss.csv, loss.png")
    .option("--steps <n>", "optimiser steps in total", "1000")
    .option("--lr <x>", "peak learning rate (AdamW)", "1e-4")
    .option("--warmup <n>", "linear warm-up steps before the cosine decay", "10")
    .option("--weight-decay <x>", "AdamW decoupled weight decay", "1e-5")
    .option("--clip <x>", "max global gradient norm", "1")
    .option("--freeze <prefix>", "freeze parameters whose name starts with this (repeatable), e.g. text_encoder. or image_encoder.", collect)
    .option("--save-every <n>", "checkpoint every n steps (0: only at the end)", "100")
    .option("--seed <n>", "random seed (windows, augmentation, prompts)", "0")
    .option("--bce-weight <x>", "weight of the BCE term of the loss (1: the spec's Dice + BCE)", "1")
    .option("--resize-prob <p>", "probability of a whole-volume (zoom-out) window rather than a crop", "0.5")
    .option("--pos-fraction <p>", "probability that a crop is centred on foreground", String(2 / 3))
    .option("--flip-prob <p>", "per-axis probability of a random flip (0 keeps left and right organs on their side)", "0.2")
    .option("--crop-centre <how>", "foreground crop centres: voxel (uniform over foreground voxels, MONAI) or category (a uniform category of the case first)", "voxel")
    .option("--all-categories", "each step trains every category with foreground in the window (upstream's loop), not one random category")
    .option("--box-jitter <n>", "move each box corner by a random −n..n voxels per axis (upstream trains with 10; 0: the label's exact box)", "0")
    .option("--sets-per-category <n>", "prompt sets per category and step, drawn at random from the six (default: all)")
    .option("--shared-sets", "with --sets-per-category: one draw of the sets per step, shared by its categories (fewer, larger decoder batches)")
    .option("--resume", "continue from OUT/checkpoint (same flags)")
    .addHelpText(
      "after",
      examples([
        "segvol phantom --seed 1 --count 8 --out data/phantoms --labels liver --labels spleen",
        "segvol train --data data/phantoms --categories liver --categories spleen --weights weights/demo --out runs/ft --steps 200 --freeze text_encoder.",
        "segvol train --data data/phantoms --categories liver,spleen --weights weights/demo --out runs/ft --resume",
      ]),
    )
    .action(async (o: TrainFlags) => {
      const opts = trainOptions(o);
      try {
        const r = await train(opts);
        const last = r.losses[r.losses.length - 1];
        // A resumed run that was already complete only rewrites its checkpoint: it has no speed to report.
        const speed = r.stepsRun > 0 ? `${r.stepsPerSecond.toFixed(3)} steps/s, peak GPU ${(r.peakBytes / 2 ** 20).toFixed(0)} MiB` : "no steps left to run";
        console.log(`${r.interrupted ? "interrupted at" : "done:"} step ${r.step}, loss ${last?.toFixed(5) ?? "-"}, ${speed}; checkpoint ${r.checkpoint}`);
        if (r.interrupted) process.exitCode = 130;
      } finally {
        releaseGpu();
      }
    });
}
