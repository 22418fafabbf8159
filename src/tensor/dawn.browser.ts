// dawn.node.ts's stand-in in the browser build (scripts/build.mjs maps every
// `*.node.js` import of src/ to its `*.browser.ts` sibling): device.ts never
// calls it outside Node, and the page's bundle holds no native addon.
export async function requestDawnAdapter(): Promise<GPUAdapter | null> {
  throw new Error("Dawn (the npm package `webgpu`) is Node-only; in a page the device comes from navigator.gpu");
}
