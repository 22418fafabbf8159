// All ops, for `import { ops } from "segvol-webgpu"`.
export * from "./elementwise.js";
export * from "./resample.js";
export * from "./reduce.js";
export * from "./layout.js";
export * from "./matmul.js";
export * from "./softmax.js";
export * from "./layernorm.js";
export * from "./attention.js";
export * from "./conv3d.js";
export * from "./conv_transpose3d.js";
export * from "./patch_embed.js";
export * from "./activation.js";
