// The engine's ops on tensors (`import { ops } from "segvol-webgpu/engine"`):
// the forward kernels, by name. Each validates its inputs and throws a
// ShapeError naming the op and the shapes. Kernel internals (workgroup
// sizes, tile tables, WGSL snippets) are not part of the API.
export { unary, binary, add, sub, mul, div, maximum, minimum, relu, gelu, quickGelu, sigmoid, exp, threshold, clamp, affine, elementwiseVariants, chooseElementwise, type UnaryOp, type BinaryOp, type ElementwiseVariant } from "../kernels/elementwise.js";
export { reduce, sum, mean, min, max, reduceVariants, chooseReduceVariant, type ReduceOp, type ReduceVariant } from "../kernels/reduce.js";
export { slice, pad, permute, concat, gather, cast } from "../kernels/layout.js";
export { matmul, chooseMatmulVariant, type MatmulOptions, type MatmulChoice } from "../kernels/matmul.js";
export { softmax, softmaxVariants, chooseSoftmaxVariant, type SoftmaxVariant } from "../kernels/softmax.js";
export { layerNorm, chooseLayerNormVariant, type LayerNormVariant } from "../kernels/layernorm.js";
export { attention, attentionVariants, chooseAttentionVariant, type AttentionOptions } from "../kernels/attention.js";
export { gemmVariants, chooseGemmVariant, type GemmVariant } from "../kernels/conv_gemm.js";
export { rowVariants, type RowVariant, type AttentionVariant } from "../kernels/profile.js";
export { conv3d, type Conv3dOptions } from "../kernels/conv3d.js";
export { convTranspose3d, type ConvTranspose3dOptions } from "../kernels/conv_transpose3d.js";
export { patchEmbed } from "../kernels/patch_embed.js";
export { resize3d, chooseResize, resizeVariants, type ResizeMode, type ResizeVariant } from "../kernels/resample.js";
export type { Activation } from "../kernels/activation.js";
