// Full-size SegVol timings with random weights (`npx tsx bench/segvol_model.ts [--precision f16] [--pipeline] [--json]`):
// the official configuration, written once to $SEGVOL_BENCH_DIR (default
// /tmp/segvol-official) with counter-hash weights and the real CLIP tokenizer
// vendored in weights/clip-tokenizer. Reports the image encoder, one
// decoder pass per prompt kind, the text tower and the peak GPU memory; with
// --pipeline also a 512×512×120 synthetic volume through `segment` with 4
// categories (stage times, windows, and what the shared encodes saved).
// --precision f16 loads the model with f16 weights and activations.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_CONFIG } from "../src/segvol/config.js";
import { SegVol } from "../src/segvol/model.js";
import { segmentVolume } from "../src/segvol/pipeline/segment.js";
import { segvolSegmenter } from "../src/segvol/pipeline/segvol.js";
import type { WindowSegmenter } from "../src/segvol/pipeline/types.js";
import { expectedParameters } from "../src/segvol/params.js";
import { gpu, releaseGpu } from "../src/tensor/device.js";
import { writeSafetensors } from "../src/weights/safetensors.js";
import { hashValues } from "../test/helpers/hashinit.js";

const args = process.argv.slice(2);
const precisionAt = args.indexOf("--precision");
const precision = precisionAt >= 0 ? args[precisionAt + 1] : "f32";
if (precision !== "f32" && precision !== "f16") throw new Error(`--precision must be f32 or f16, got ${String(precision)}`);
const dir = process.env.SEGVOL_BENCH_DIR ?? "/tmp/segvol-official";
const log = (s: string) => process.stderr.write(s + "\n");

/** Scale/offset per parameter so activations stay O(1) with random weights. */
function init(name: string, shape: number[]): { scale: number; offset: number } {
  const isNormWeight = /norm|layer_norm|output_upscaling\.1|mask_downscaling\.[14]/.test(name) && name.endsWith(".weight");
  if (isNormWeight) return { scale: 0.1, offset: 1 };
  if (name.endsWith(".bias")) return { scale: 0.02, offset: 0 };
  if (shape.length >= 2 && name.endsWith(".weight") && !name.includes("embed")) {
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    return { scale: Math.sqrt(3 / fanIn), offset: 0 };
  }
  return { scale: 0.5, offset: 0 };
}

function writeWeights(): void {
  if (existsSync(join(dir, "model.safetensors"))) return;
  mkdirSync(dir, { recursive: true });
  const params = expectedParameters(DEFAULT_CONFIG);
  log(`writing ${params.size} random official-size tensors to ${dir} …`);
  writeSafetensors(
    join(dir, "model.safetensors"),
    [...params].map(([name, shape]) => {
      const { scale, offset } = init(name, shape);
      return { name, dtype: "F32" as const, shape, data: () => hashValues(name, shape.reduce((a, b) => a * b, 1), scale, offset) };
    }),
  );
  writeFileSync(join(dir, "config.json"), JSON.stringify(DEFAULT_CONFIG, null, 1));
  const tok = join(process.cwd(), "weights", "clip-tokenizer");
  for (const f of ["vocab.json", "merges.txt"]) copyFileSync(join(tok, f), join(dir, f));
}

const secs = (t0: number) => Math.round(performance.now() - t0) / 1000;

writeWeights();
let t = performance.now();
const model = await SegVol.fromWeights(dir, { precision });
const g = gpu();
await g.sync();
const results: Record<string, unknown> = { precision, load_s: secs(t) };
const [D, H, W] = model.config.spatial_size;
const window = new Float32Array(D * H * W);
for (let i = 0; i < window.length; i++) window[i] = (Math.sin(i * 0.0007) + 1) / 2;

g.pool.resetPeak();
// First encode includes shader compilation; the second is the steady state.
for (const key of ["encoder_first_s", "encoder_s"]) {
  t = performance.now();
  const e = model.encodeImage(window);
  await g.sync();
  results[key] = secs(t);
  e.dispose();
}
const emb = model.encodeImage(window);
await g.sync();
t = performance.now();
await model.encodeText("liver");
results.text_tower_first_s = secs(t);
t = performance.now();
await model.encodeText("spleen");
results.text_tower_s = secs(t);
const prompts = {
  decode_box_s: { box: [4, 60, 60, 20, 180, 200] as [number, number, number, number, number, number] },
  decode_points_s: { points: { coords: [[10, 100, 120] as [number, number, number]], labels: [1] } },
  decode_text_s: { text: "liver" },
  decode_text_box_s: { text: "liver", box: [4, 60, 60, 20, 180, 200] as [number, number, number, number, number, number] },
};
await model.decode(emb, prompts.decode_box_s); // compile
for (const [key, p] of Object.entries(prompts)) {
  t = performance.now();
  await model.decode(emb, p);
  results[key] = secs(t);
}
emb.dispose();
results.peak_gpu_mib = Math.round(g.pool.stats().peak / 2 ** 20);

if (args.includes("--pipeline")) {
  // A 512×512×120 synthetic CT through `segment` with 4 categories. With
  // random weights the zoom-out masks are large, so the zoom-in plans need
  // dozens of windows per category (about a minute each on 2 lavapipe
  // cores): the first MEASURED zoom-in windows run the real network, the
  // rest are planned and counted but not computed, and their time is
  // extrapolated from the measured ones. Counts and plans are exact.
  const MEASURED = Number(process.env.SEGVOL_BENCH_ZOOMIN ?? 2);
  const [I, J, K] = [512, 512, 120];
  const data = new Float32Array(I * J * K);
  for (let k = 0, x = 0; k < K; k++)
    for (let j = 0; j < J; j++)
      for (let i = 0; i < I; i++, x++) {
        const body = ((i - I / 2) / (0.45 * I)) ** 2 + ((j - J / 2) / (0.4 * J)) ** 2 <= 1;
        const organ = ((i - 0.6 * I) / (0.12 * I)) ** 2 + ((j - 0.45 * J) / (0.1 * J)) ** 2 + ((k - K / 2) / (0.3 * K)) ** 2 <= 1;
        data[x] = body ? (organ ? 120 : 30) + ((x * 7919) % 61) - 30 : -1000;
      }
  const names = ["liver", "spleen", "left kidney", "right kidney"];
  const real = segvolSegmenter(model);
  let encodes = 0;
  let measuredEncodeS = 0;
  let measuredDecodeS = 0;
  let measuredDecodes = 0;
  let skippedDecodes = 0;
  const SKIPPED = Symbol("skipped");
  const windowSize = D * H * W;
  const sampled: WindowSegmenter = {
    spatialSize: real.spatialSize,
    encode: async (w) => {
      // Encode 0 is the zoom-out window; then MEASURED zoom-in windows.
      if (encodes++ > MEASURED) return SKIPPED;
      const t0 = performance.now();
      const e = await real.encode(w);
      await g.sync();
      if (encodes > 1) measuredEncodeS += (performance.now() - t0) / 1000;
      return e;
    },
    decode: async (e, p) => {
      if (e === SKIPPED) {
        skippedDecodes++;
        return new Float32Array(windowSize).fill(-1);
      }
      const t0 = performance.now();
      const out = await real.decode(e, p);
      if (encodes > 1) {
        measuredDecodeS += (performance.now() - t0) / 1000;
        measuredDecodes++;
      }
      return out;
    },
    release: (e) => {
      if (e !== SKIPPED) real.release(e);
    },
  };
  g.pool.resetPeak();
  t = performance.now();
  const res = await segmentVolume(
    sampled,
    { dims: [I, J, K], data },
    names.map((n) => ({ name: n, text: n })),
    { onProgress: (d, n, stage) => log(`  ${stage} ${d}/${n}`) },
  );
  const measuredEncodes = Math.min(MEASURED, res.stats.zoomInEncodes);
  const perEncode = measuredEncodeS / Math.max(1, measuredEncodes);
  const perDecode = measuredDecodeS / Math.max(1, measuredDecodes);
  const unrun = res.stats.zoomInEncodes - measuredEncodes;
  results.pipeline = {
    volume: "512x512x120",
    measured_s: secs(t),
    stages_s: res.stats.seconds,
    zoom_in_encodes_run: measuredEncodes,
    zoom_in_encodes_extrapolated: unrun,
    zoom_in_s_extrapolated: Math.round((res.stats.seconds.zoomIn + unrun * perEncode + skippedDecodes * perDecode) * 10) / 10,
    encodes: res.stats.encodes,
    decodes: res.stats.decodes,
    zoom_in_windows_all_targets: res.stats.zoomInWindows,
    // Upstream re-encodes the zoom-out window and every zoom-in window per category.
    encodes_without_sharing: names.length + res.stats.zoomInWindows,
    per_target: res.targets.map((x) => ({ name: x.name, windows: x.windows, roi: x.zoomIn?.roi ?? null })),
    peak_gpu_mib: Math.round(g.pool.stats().peak / 2 ** 20),
  };
}
model.dispose();
releaseGpu();
if (args.includes("--json")) process.stdout.write(JSON.stringify(results) + "\n");
else console.log(JSON.stringify(results, null, 1));
