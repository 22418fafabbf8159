// The app's segmentation worker: loads the model (the demo model shipped
// beside the app, or the Files of a weights folder the user picked) and runs
// SegVol's zoom-out-zoom-in on the page's volume, posting progress. The page
// stays responsive; Cancel terminates this worker (app.ts starts a new one).
import { SegVol } from "../../src/browser.js";
import type { FromWorker, ToWorker } from "./protocol.js";

let model: Promise<SegVol> | null = null;
let weights: File[] | null = null;

const post = (m: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);

function load(): Promise<SegVol> {
  model ??= (async () => {
    post({ type: "progress", stage: "loading the model", done: 0, total: 1 });
    const m = await SegVol.fromWeights(weights ?? new URL("weights/demo/", self.location.href).href);
    post({ type: "loaded", source: m.source, categories: m.categories ? [...m.categories] : null });
    return m;
  })();
  model.catch(() => (model = null));
  return model;
}

/** Label map: each voxel gets the 1-based index of the target whose mask holds it with the highest logit. */
function labelMap(targets: { mask: Uint8Array; logits: Float32Array }[], n: number): Int16Array {
  const labels = new Int16Array(n);
  const best = new Float32Array(n).fill(-Infinity);
  targets.forEach((t, k) => {
    for (let v = 0; v < n; v++) {
      if (t.mask[v] && t.logits[v]! > best[v]!) {
        best[v] = t.logits[v]!;
        labels[v] = k + 1;
      }
    }
  });
  return labels;
}

self.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  try {
    if (msg.type === "weights") {
      weights = msg.files;
      model = null;
      await load();
      return;
    }
    const m = await load();
    const t0 = performance.now();
    const result = await m.segment({ dims: msg.dims, data: msg.data }, msg.targets, {
      onProgress: (done, total, stage) => post({ type: "progress", stage, done, total }),
    });
    const labels = labelMap(result.targets, msg.data.length);
    const targets = result.targets.map((t) => ({ name: t.name, voxels: t.voxels, mask: t.mask }));
    post({ type: "result", targets, labels, seconds: (performance.now() - t0) / 1000 }, [labels.buffer, ...targets.map((t) => t.mask.buffer)]);
  } catch (e) {
    post({ type: "error", message: (e as Error).message });
  }
};
