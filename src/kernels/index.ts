// All ops, for `import { ops } from "segvol-webgpu"`.
export * from "./elementwise.js";
export * from "./resample.js";
export * from "./reduce.js";
export * from "./layout.js";
