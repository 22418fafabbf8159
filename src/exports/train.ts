// `segvol-webgpu/train`: fine-tuning SegVol (the loop, one step, the
// trainable model, data, optimisers and the loss).
export { train, trainStep, diceBce, type TrainOptions, type TrainResult, type StepOptions } from "../train/trainer.js";
export { TrainableSegVol, promptLayout, type TrainableSegVolOptions } from "../train/segvol_train.js";
export { MsdDataset, listMsdCases, type AugmentOptions, type MsdDatasetOptions, type MsdCase } from "../train/data.js";
export { AdamW, SGD, type AdamWOptions, type SGDOptions, type Optimizer, type TrainParam } from "../train/optim.js";
export { diceBceLoss, type SegLossOptions } from "../train/loss.js";
export { initWeights } from "../train/init.js";
export { Rng } from "../train/rng.js";
