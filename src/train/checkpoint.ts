// Training checkpoints: one folder that `SegVol.fromWeights` loads
// (model.safetensors + config.json + the tokenizer files) plus the trainer's
// state (trainer_state.safetensors: the optimiser's moment tensors;
// trainer_state.json: step counts, RNG state, step, loss history, options).
// A checkpoint is written to a temporary folder beside the target and then
// renamed over it, so an interrupted save never leaves a half checkpoint.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { SafetensorsFile, loadTensorToGpu, writeSafetensors, type TensorToWrite } from "../weights/safetensors.js";
import { TOKENIZER_FILES } from "../segvol/tokenizer.js";
import { keep } from "../tensor/scope.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Optimizer, OptimState } from "./optim.js";
import type { TrainableSegVol } from "./segvol_train.js";
import { replaceDir } from "../io/atomic.js";

export const STATE_JSON = "trainer_state.json";
export const STATE_TENSORS = "trainer_state.safetensors";

export interface TrainerStateJson {
  version: 1;
  /** Optimiser steps done. */
  step: number;
  rng: [number, number, number, number];
  /** Loss of every step done, in order. */
  losses: number[];
  /** The optimiser's numeric state (step counts per parameter). */
  counts: Record<string, number>;
  /** Options of the run (categories and freeze must match on resume). */
  options: Record<string, unknown>;
}

export interface CheckpointInput {
  model: TrainableSegVol;
  optimizer: Optimizer;
  /** Folder with config.json and tokenizer files to copy. */
  sourceDir: string;
  state: Omit<TrainerStateJson, "version" | "counts">;
}

/** Writes the checkpoint folder `dir` atomically (temp folder + rename). */
export async function saveCheckpoint(dir: string, input: CheckpointInput): Promise<void> {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.ckpt-${process.pid}-${Date.now()}.tmp`);
  mkdirSync(tmp);
  try {
    writeSafetensors(join(tmp, "model.safetensors"), await input.model.exportTensors(), { producer: "segvol train" });
    copyFileSync(join(input.sourceDir, "config.json"), join(tmp, "config.json"));
    for (const f of TOKENIZER_FILES) if (existsSync(join(input.sourceDir, f))) copyFileSync(join(input.sourceDir, f), join(tmp, f));
    const st = input.optimizer.state();
    const tensors: TensorToWrite[] = [];
    const counts: Record<string, number> = {};
    for (const [k, v] of Object.entries(st)) {
      if (typeof v === "number") counts[k] = v;
      else tensors.push({ name: k, dtype: "F32", shape: [...v.shape], data: await v.readFloat32() });
    }
    writeSafetensors(join(tmp, STATE_TENSORS), tensors, { producer: "segvol train" });
    const json: TrainerStateJson = { version: 1, counts, ...input.state };
    writeFileSync(join(tmp, STATE_JSON), JSON.stringify(json) + "\n");
    replaceDir(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export interface LoadedTrainerState {
  json: TrainerStateJson;
  /** Optimiser state for `loadState` (tensors owned by the caller: dispose after loading). */
  optim: OptimState;
}

/** Reads the trainer state of a checkpoint folder. */
export function loadTrainerState(dir: string): LoadedTrainerState {
  const jp = join(dir, STATE_JSON);
  if (!existsSync(jp) || !existsSync(join(dir, STATE_TENSORS))) throw new Error(`resume: ${dir} has no ${STATE_JSON} / ${STATE_TENSORS} (not a training checkpoint)`);
  const json = JSON.parse(readFileSync(jp, "utf8")) as TrainerStateJson;
  if (json.version !== 1 || !Number.isInteger(json.step) || !Array.isArray(json.losses) || !Array.isArray(json.rng)) {
    throw new Error(`resume: ${jp} is not a trainer state this version understands`);
  }
  const file = SafetensorsFile.open(join(dir, STATE_TENSORS));
  const optim: OptimState = { ...json.counts };
  for (const k of file.keys()) optim[k] = keep(loadTensorToGpu(file, k));
  return { json, optim };
}

/** Frees the tensors of a loaded optimiser state. */
export function disposeOptimState(s: OptimState): void {
  for (const v of Object.values(s)) if (typeof v !== "number") (v as Tensor).dispose();
}
