// All ops, for `import { ops } from "segvol-webgpu"`.
export * from "./elementwise.js";
