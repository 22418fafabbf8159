// The WebGPU adapter in Node: Dawn through the npm package `webgpu` (a native
// addon). device.ts imports this module only in Node, and only when the first
// device is asked for; a browser build replaces it with dawn.browser.ts, so a
// page's bundle never holds the addon.
import { create, globals } from "webgpu";

// WebGPU constants (GPUBufferUsage, GPUMapMode, …) as globals, as in a browser.
Object.assign(globalThis, globals);

// The object returned by `create()` must outlive every device made from it:
// if it is garbage-collected Node aborts. Module scope keeps it for the
// life of the process.
let navigatorGpu: GPU | null = null;

/** Dawn's adapter, or null where it finds none. */
export async function requestDawnAdapter(): Promise<GPUAdapter | null> {
  if (!process.env.XDG_RUNTIME_DIR) {
    // Mesa's Vulkan loader warns (and some setups fail) without it.
    process.env.XDG_RUNTIME_DIR = "/tmp";
  }
  if (!navigatorGpu) {
    // Dawn rounds timestamp queries to a coarse grid unless told not to
    // (a browser's guard against timing attacks); kernel profiles time
    // dispatches of a few microseconds.
    navigatorGpu = create(["disable-dawn-features=timestamp_quantization"]);
  }
  return navigatorGpu.requestAdapter({ powerPreference: "high-performance" });
}
