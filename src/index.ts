/// <reference types="@webgpu/types" preserve="true" />
// The types of GPUDevice, GPUBuffer … in the declarations below come from
// @webgpu/types (a dependency), so a consumer needs no setup of its own for them.
// Public library entry.
export { initGpu, gpu, releaseGpu, GpuUnavailableError, GpuDeviceLostError, type Gpu, type GpuOptions } from "./tensor/device.js";
export { Tensor, type DType } from "./tensor/tensor.js";
export { scope, scopeAsync, keep } from "./tensor/scope.js";
export * as ops from "./kernels/index.js";
export {
  readNifti,
  decodeNifti,
  writeNifti,
  checkFinite,
  niftiFromArray,
  DEFAULT_MAX_VOXELS,
  type NiftiVolume,
  type NiftiHeader,
  type NiftiDatatype,
  type ReadNiftiOptions,
  type VoxelArray,
} from "./io/nifti.js";
export { readNpy, readNpyF32, writeNpy } from "./io/npy.js";
export { ClipTokenizer } from "./segvol/tokenizer.js";
export { SegVol, ImageEmbedding, type WindowPrompt, type TextEmbedding, type Box6 } from "./segvol/model.js";
export { parseConfig, loadConfig, DEFAULT_CONFIG, type SegVolConfig } from "./segvol/config.js";
export { OFFICIAL_CATEGORIES, UnknownCategoryError, readCategories, normalizeCategory } from "./segvol/categories.js";
export type { Target, SegmentOptions, SegmentResult, TargetResult, Volume } from "./segvol/pipeline/types.js";
export { convertCheckpoint } from "./segvol/convert.js";
export { SafetensorsFile, writeSafetensors } from "./weights/safetensors.js";
export { train, type TrainOptions, type TrainResult, type StepOptions } from "./train/trainer.js";
export { MsdDataset, type AugmentOptions, type MsdDatasetOptions } from "./train/data.js";
export { generatePhantom, writePhantom, PHANTOM_LABELS, type Phantom, type PhantomOptions } from "./demo/phantom.js";
export { runDemo, type DemoOptions, type DemoResult } from "./demo/demo.js";
