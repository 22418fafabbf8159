// The SegVol training loss (spec §7): Dice (smooth 1) + BCE-with-logits, one
// fused GPU operation returning the loss, its two terms and ∂loss/∂logits.
// Its kernels live in src/kernels/loss.ts; training calls it from here.
export { diceBceLoss, type SegLoss, type SegLossOptions } from "../kernels/loss.js";
