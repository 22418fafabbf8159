// Public library entry.
export { initGpu, gpu, releaseGpu, GpuUnavailableError, GpuDeviceLostError, type Gpu, type GpuOptions } from "./tensor/device.js";
export { Tensor, type DType } from "./tensor/tensor.js";
export { scope, scopeAsync, keep } from "./tensor/scope.js";
export * as ops from "./kernels/index.js";
export { readNifti, writeNifti, checkFinite, niftiFromArray, type NiftiVolume, type NiftiHeader, type NiftiDatatype } from "./io/nifti.js";
export { readNpy, readNpyF32, writeNpy } from "./io/npy.js";
export { ClipTokenizer } from "./segvol/tokenizer.js";
