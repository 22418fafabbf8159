// `segvol-webgpu/engine`: what the model is built from, for kernel
// researchers and for new networks. The device and tensors with their
// scopes; `ops`, the forward kernels; the tape (`Var`, `noGrad`,
// `backward`) with `grad`, the differentiable ops; the module system and
// layers; the safetensors format.
export { initGpu, gpu, releaseGpu, GpuUnavailableError, GpuDeviceLostError, type Gpu, type GpuOptions } from "../tensor/device.js";
export { Tensor, type DType } from "../tensor/tensor.js";
export { scope, scopeAsync, keep } from "../tensor/scope.js";
export { ShapeError } from "../kernels/check.js";
export { deviceProfile, setDeviceProfile, readProfile, type DeviceProfile, type VariantOverrides, type SubgroupSizes } from "../kernels/profile.js";
export * as ops from "./ops.js";
export { Var, param, constant, detach, noGrad, scoped, backward, zeroGrad, customOp, isRecording, type BackwardFn } from "../autograd/autograd.js";
export * as grad from "./grad.js";
export { Module, Parameter, sequence } from "../nn/module.js";
export { Linear, LayerNorm, Embedding, Mlp, MultiHeadAttention, ConvTranspose3d } from "../nn/layers.js";
export { SafetensorsFile, SafetensorsError, writeSafetensors, loadTensorToGpu, type TensorInfo, type TensorToWrite } from "../weights/safetensors.js";
