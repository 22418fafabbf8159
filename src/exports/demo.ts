// `segvol-webgpu/demo`: the synthetic abdominal CT phantom and the demo
// that segments it with the shipped model.
export { generatePhantom, writePhantom, PHANTOM_LABELS, type Phantom, type PhantomOptions, type WritePhantomOptions } from "../demo/phantom.js";
export { runDemo, DEMO_CATEGORIES, type DemoOptions, type DemoResult } from "../demo/demo.js";
