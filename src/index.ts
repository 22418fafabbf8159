/// <reference types="@webgpu/types" preserve="true" />
// The types of GPUDevice, GPUBuffer … in the declarations below come from
// @webgpu/types (a dependency), so a consumer needs no setup of its own for them.
//
// The package root: the model API (load weights, segment volumes, read and
// write NIfTI, read DICOM series and write DICOM-SEG, talk DICOMweb, convert
// a checkpoint) and the errors it throws. The engine
// (tensors, ops, the tape, layers) is `segvol-webgpu/engine`; training is
// `segvol-webgpu/train`; the phantom demo is `segvol-webgpu/demo`.
export { initGpu, releaseGpu, GpuUnavailableError, GpuDeviceLostError, NO_WEBGPU_HELP, type GpuOptions } from "./tensor/device.js";
export { ShapeError } from "./kernels/check.js";
export { SegVol, ImageEmbedding, validateWindowPrompt, type WindowPrompt, type TextEmbedding, type Box6, type SegVolOptions, type Precision } from "./segvol/model.js";
export { urlFiles, pickedFiles, type WeightsFiles, type WeightsSource } from "./segvol/weights_source.js";
export type { Target, SegmentOptions, SegmentResult, TargetResult, Volume } from "./segvol/pipeline/types.js";
export { parseConfig, parseConfigText, loadConfig, DEFAULT_CONFIG, ConfigError, type SegVolConfig } from "./segvol/config.js";
export { tuneModel, modelTuneShapes, type TuneModelOptions } from "./segvol/tune_shapes.js";
export { loadTunedChoices, type CacheOptions } from "./tune/cache.js";
export type { TuneResult, CandidateResult } from "./tune/tuner.js";
export { OFFICIAL_CATEGORIES, UnknownCategoryError, readCategories, normalizeCategory, parseCategories } from "./segvol/categories.js";
export { ClipTokenizer, TokenizerError } from "./segvol/tokenizer.js";
export { convertCheckpoint, ConvertError, ConvertMismatchError } from "./segvol/convert.js";
export { CheckpointError } from "./weights/checkpoint.js";
export { SafetensorsError } from "./weights/safetensors.js";
export {
  readNifti,
  decodeNifti,
  writeNifti,
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
export { readNpy, readNpyF32, writeNpy, NpyError } from "./io/npy.js";
export {
  readDicomSeries,
  listDicomSeries,
  seriesAsNifti,
  encodeDicomSeg,
  writeDicomSeg,
  DicomWebClient,
  readDicomWebSeries,
  checkDicomWebUrl,
  DicomError,
  SUPPORTED_TRANSFER_SYNTAXES,
  SEGMENTATION_STORAGE,
  type DicomDataset,
  type DicomInstance,
  type DicomSeries,
  type DicomSeriesSummary,
  type ReadDicomOptions,
  type DicomSegIds,
  type DicomSegOptions,
  type SegSegment,
  type SegSource,
  type DicomWebOptions,
  type DicomWebSeries,
} from "./dicom/index.js";
