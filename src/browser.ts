/// <reference types="@webgpu/types" preserve="true" />
// The package root in a browser (package.json "exports" condition
// `browser`, built by scripts/build.mjs as dist/browser.js with no Node
// built-in): the model API on bytes and URLs. The device comes from
// navigator.gpu; weights from a URL or picked Files; NIfTI from and to
// bytes. Node's root (src/index.ts) has all of this too, plus what needs
// files by path (readNifti, writeNifti, convertCheckpoint …).
export { initGpu, releaseGpu, GpuUnavailableError, GpuDeviceLostError, NO_WEBGPU_HELP, type GpuOptions } from "./tensor/device.js";
export { ShapeError } from "./kernels/check.js";
export { SegVol, ImageEmbedding, validateWindowPrompt, type WindowPrompt, type TextEmbedding, type Box6, type SegVolOptions, type Precision } from "./segvol/model.js";
export { urlFiles, pickedFiles, type WeightsFiles, type WeightsSource } from "./segvol/weights_source.js";
export type { Target, SegmentOptions, SegmentResult, TargetResult, Volume } from "./segvol/pipeline/types.js";
export { parseConfig, parseConfigText, DEFAULT_CONFIG, ConfigError, type SegVolConfig } from "./segvol/config.js";
export { tuneModel, modelTuneShapes, type TuneModelOptions } from "./segvol/tune_shapes.js";
export { loadTunedChoices, type CacheOptions } from "./tune/cache.js";
export type { TuneResult, CandidateResult } from "./tune/tuner.js";
export { OFFICIAL_CATEGORIES, UnknownCategoryError, normalizeCategory, parseCategories } from "./segvol/categories.js";
export { ClipTokenizer, TokenizerError } from "./segvol/tokenizer.js";
export { SafetensorsError } from "./weights/safetensors_reader.js";
export {
  decodeNifti,
  checkFinite,
  niftiFromArray,
  niftiFileBytes,
  NiftiError,
  DEFAULT_MAX_VOXELS,
  type NiftiVolume,
  type NiftiHeader,
  type NiftiDatatype,
  type ReadNiftiOptions,
  type VoxelArray,
} from "./io/nifti.js";
export { parseNifti, encodeNifti } from "./io/nifti_bytes.js";
