// The library page: loads the browser bundle (dist/browser.js's build, served
// as ./segvol.js, external to this script) as a web developer would, and
// offers the tests: segment a phantom, read a picked NIfTI, the WebGPU status.
import type * as Lib from "../../../src/browser.js";
import { generatePhantom } from "../../../src/demo/phantom.js";
import type { Target } from "../../../src/segvol/pipeline/types.js";
import { f32Base64, toBase64 } from "./util.js";

const lib = (await import(/* external */ "./segvol.js" as string)) as typeof Lib;
const $ = (id: string) => document.getElementById(id)!;

/** Segments phantom `seed` with the demo model at `weights` (a URL relative to the page); masks and logits as base64. */
async function segmentPhantom(seed: number, weights: string, targets: Target[]) {
  const ph = generatePhantom(seed);
  const t0 = performance.now();
  const model = await lib.SegVol.fromWeights(weights);
  const loaded = performance.now();
  const result = await model.segment({ dims: ph.dims, data: Float32Array.from(ph.image) }, targets);
  const done = performance.now();
  model.dispose();
  return {
    dims: ph.dims,
    loadSeconds: (loaded - t0) / 1000,
    segmentSeconds: (done - loaded) / 1000,
    targets: result.targets.map((t) => ({ name: t.name, voxels: t.voxels, mask: toBase64(t.mask), logits: f32Base64(t.logits) })),
  };
}

/** Reads the picked file as NIfTI; shows the volume or the error in the page. */
async function onPick(input: HTMLInputElement): Promise<void> {
  const file = input.files?.[0];
  if (!file) return;
  $("error").textContent = "";
  $("volume").textContent = "";
  try {
    const vol = await lib.parseNifti(new Uint8Array(await file.arrayBuffer()), file.name);
    $("volume").textContent = `${file.name}: ${vol.dims.join("×")} ${vol.datatype}`;
  } catch (e) {
    $("error").textContent = `${file.name}: ${(e as Error).message}`;
  }
  input.value = "";
}

$("file").addEventListener("change", (ev) => void onPick(ev.target as HTMLInputElement));

// The WebGPU status, shown as a page would show it.
try {
  const g = await lib.initGpu();
  $("status").textContent = `WebGPU ready: ${g.adapter.vendor} ${g.adapter.architecture} ${g.adapter.description}`.trim();
} catch (e) {
  $("status").textContent = (e as Error).message;
}

Object.assign(globalThis, { segvolTest: { segmentPhantom, lib } });
$("ready").textContent = "ready";
