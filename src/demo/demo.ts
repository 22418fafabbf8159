// `segvol demo`: the embedded demo model segments a phantom it has never
// seen (seed outside its training range, recipe.json's trainSeeds) by text prompts (every
// organ the model knows, in one segment call so the window encodes are
// shared), one organ by a box prompt and one by point prompts, and scores
// every mask with Dice against the phantom's own label map.
//
// Progress: the GPU kernels are compiled first, as a stage of their own (it
// is most of a machine's first run), so that no target's time includes it.
// Pictures: all four show the same planes (through the ground truth's
// centre), box.png with the box prompt and points.png with the points.
//
// Output folder: everything is written into a temporary folder beside DIR
// and renamed into place, so DIR is either a complete demo output or
// untouched. An existing DIR is replaced only when it is empty or a previous
// demo output (it holds demo.json written by `segvol demo` and nothing but
// the demo's own file names); anything else is refused.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { replaceDir, writeFileAtomic } from "../io/atomic.js";
import { niftiFromArray, writeNifti } from "../io/nifti.js";
import { SegVol, type Precision } from "../segvol/model.js";
import type { SegmentResult, Target, Vec3 } from "../segvol/pipeline/types.js";
import { gpu, releaseGpu } from "../tensor/device.js";
import { generatePhantom, PHANTOM_LABELS, type Phantom } from "./phantom.js";
import { centreSlices, renderSlices, writePng } from "./render.js";

/** The organs of the shipped demo model (`npm run train:demo`), used when the weights folder does not name its categories. */
export const DEMO_CATEGORIES: readonly string[] = Object.freeze(["liver", "spleen", "left kidney", "right kidney"]);
/** Default phantom seed: outside the training seeds. */
export const DEMO_SEED = 4242;
/** Training seeds assumed for a weights folder without recipe.json: `npm run train:demo`'s first stage. */
const DEFAULT_TRAIN_SEEDS: [number, number] = [1000, 1023];
/** Organs prompted by a box and by points, first one the model knows. */
const BOX_PREFERENCE = ["liver", "spleen", "right kidney", "left kidney"];
const POINT_PREFERENCE = ["spleen", "left kidney", "right kidney", "liver"];
const PRODUCER = "segvol demo";

export type DemoPrompt = "text" | "box" | "points";

export interface DemoTargetResult {
  name: string;
  prompt: DemoPrompt;
  dice: number;
  seconds: number;
}

export interface DemoResult {
  targets: DemoTargetResult[];
  /** Seconds spent compiling the GPU kernels, before the first target (included in `seconds`). */
  compileSeconds: number;
  seconds: number;
  /** Absolute paths of the written files. */
  files: string[];
}

export interface DemoOptions {
  /** Weights folder (config.json, model.safetensors, tokenizer). */
  weights: string;
  /** Output folder (default ./segvol-demo). */
  out?: string;
  /** Phantom seed (default 4242); the model's training seeds (trainingSeeds) are refused. */
  seed?: number;
  /** Smaller or fixed phantom geometry (tests). */
  phantom?: { dims?: Vec3; spacing?: Vec3 };
  /** GPU storage precision of the model (SegVolOptions.precision; default f32). */
  precision?: Precision;
  onProgress?: (line: string) => void;
}

/** Refuses a weights folder without a model, with one line on how to get one. */
export function checkDemoWeights(dir: string): void {
  if (!existsSync(join(dir, "model.safetensors"))) {
    throw new Error(
      `demo: no model.safetensors in ${dir}: the demo model is not trained/shipped yet; ` +
        "make it with `npm run train:demo` and copy its checkpoint folder there, or pass --weights DIR",
    );
  }
}

/**
 * The organs the model knows: `categories.json` (a JSON list) in the weights
 * folder, else the categories of the training run (trainer_state.json of a
 * `segvol train` checkpoint), else the demo organs. Only phantom organs count.
 */
export function demoCategories(weights: string): string[] {
  let cats: unknown = null;
  const list = join(weights, "categories.json");
  const state = join(weights, "trainer_state.json");
  if (existsSync(list)) cats = JSON.parse(readFileSync(list, "utf8"));
  else if (existsSync(state)) cats = (JSON.parse(readFileSync(state, "utf8")) as { options?: { categories?: unknown } }).options?.categories ?? null;
  if (cats === null) return [...DEMO_CATEGORIES];
  if (!Array.isArray(cats) || cats.length === 0 || !cats.every((c) => typeof c === "string")) {
    throw new Error(`demo: categories in ${weights} must be a non-empty list of names, got ${JSON.stringify(cats)}`);
  }
  const unknown = cats.filter((c) => PHANTOM_LABELS.indexOf(c) < 1);
  if (unknown.length) throw new Error(`demo: ${weights} names categories the phantom does not draw: ${unknown.join(", ")}`);
  return cats as string[];
}

/**
 * The phantom seeds a demo weights folder was trained on, inclusive: the
 * `trainSeeds` that `npm run train:demo --ship` writes into recipe.json, else
 * the recipe's default first-stage range.
 */
export function trainingSeeds(weights: string): [number, number] {
  const file = join(weights, "recipe.json");
  if (!existsSync(file)) return [...DEFAULT_TRAIN_SEEDS];
  let seeds: unknown;
  try {
    seeds = (JSON.parse(readFileSync(file, "utf8")) as { trainSeeds?: unknown }).trainSeeds;
  } catch (e) {
    throw new Error(`demo: ${file} is not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(seeds) || seeds.length !== 2 || !seeds.every((x) => Number.isInteger(x)) || seeds[0] > seeds[1]) {
    throw new Error(`demo: ${file}: trainSeeds must be [first, last] integers, got ${JSON.stringify(seeds)}`);
  }
  return [seeds[0], seeds[1]];
}

/** Dice of two masks (non-zero = inside); 1 when both are empty. */
export function dice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`dice: masks of ${a.length} and ${b.length} voxels`);
  let inter = 0, na = 0, nb = 0;
  for (let v = 0; v < a.length; v++) {
    const x = a[v] !== 0, y = b[v] !== 0;
    if (x) na++;
    if (y) nb++;
    if (x && y) inter++;
  }
  return na + nb === 0 ? 1 : (2 * inter) / (na + nb);
}

/** Inclusive voxel bounding box (i0, j0, k0, i1, j1, k1) of a mask. */
export function boundingBox(mask: Uint8Array, dims: Vec3): [number, number, number, number, number, number] {
  const [I, J] = dims;
  const lo = [Infinity, Infinity, Infinity], hi = [-1, -1, -1];
  for (let v = 0; v < mask.length; v++) {
    if (!mask[v]) continue;
    const p = [v % I, Math.floor(v / I) % J, Math.floor(v / (I * J))];
    for (let a = 0; a < 3; a++) {
      if (p[a]! < lo[a]!) lo[a] = p[a]!;
      if (p[a]! > hi[a]!) hi[a] = p[a]!;
    }
  }
  if (hi[0]! < 0) throw new Error("boundingBox: empty mask");
  return [lo[0]!, lo[1]!, lo[2]!, hi[0]!, hi[1]!, hi[2]!];
}

/**
 * Three positive points inside a mask, deterministically: the mask voxel
 * nearest the centroid, then the mask voxel farthest from it, then the one
 * farthest from both (spread over the organ, as a user would click).
 */
export function samplePoints(mask: Uint8Array, dims: Vec3, count = 3): Vec3[] {
  const [I, J] = dims;
  const pos: Vec3[] = [];
  for (let v = 0; v < mask.length; v++) if (mask[v]) pos.push([v % I, Math.floor(v / I) % J, Math.floor(v / (I * J))]);
  if (pos.length === 0) throw new Error("samplePoints: empty mask");
  const c = [0, 1, 2].map((a) => pos.reduce((s, p) => s + p[a]!, 0) / pos.length);
  const d2 = (p: readonly number[], q: readonly number[]) => (p[0]! - q[0]!) ** 2 + (p[1]! - q[1]!) ** 2 + (p[2]! - q[2]!) ** 2;
  let best = pos[0]!;
  for (const p of pos) if (d2(p, c) < d2(best, c)) best = p;
  const chosen: Vec3[] = [best];
  while (chosen.length < Math.min(count, pos.length)) {
    let far = pos[0]!, farD = -1;
    for (const p of pos) {
      const d = Math.min(...chosen.map((q) => d2(p, q)));
      if (d > farD) { far = p; farD = d; }
    }
    chosen.push(far);
  }
  // Far points sit on the boundary; pull each halfway to the centre point and snap to the nearest mask voxel so the click is well inside.
  // Distinct points: a snapped point never repeats one already taken (small masks).
  const taken = new Set<string>([best.join()]);
  return chosen.map((p, n) => {
    if (n === 0) return p;
    const mid = [0, 1, 2].map((a) => (p[a]! + best[a]!) / 2);
    let q: Vec3 | null = null;
    for (const r of pos) if (!taken.has(r.join()) && (q === null || d2(r, mid) < d2(q, mid))) q = r;
    q ??= p; // unreachable: count ≤ mask voxels leaves an untaken one
    taken.add(q.join());
    return q;
  });
}

/** True for the demo's own output names. */
function isDemoFile(name: string): boolean {
  return /^(phantom|labels|text_labels)\.nii\.gz$/.test(name) || /^(box|points)_[a-z_]+\.nii\.gz$/.test(name) ||
    /^(text|box|points|ground_truth)\.png$/.test(name) || name === "demo.json";
}

function checkOutputDir(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new Error(`demo: output ${out} exists and is not a folder`);
  const entries = readdirSync(out);
  if (entries.length === 0) return;
  let ours = entries.includes("demo.json") && entries.every(isDemoFile);
  if (ours) {
    try {
      ours = (JSON.parse(readFileSync(join(out, "demo.json"), "utf8")) as { producer?: string }).producer === PRODUCER;
    } catch {
      ours = false;
    }
  }
  if (!ours) throw new Error(`demo: output folder ${out} is not empty and not a previous segvol demo output; choose another --out or remove it`);
}


const fileStem = (organ: string) => organ.replace(/ /g, "_");

/** One target of the demo: the prompt given to `segment`, the organ it is scored against, and its kind. */
interface PlannedTarget {
  target: Target;
  organ: string;
  prompt: DemoPrompt;
}

/** The demo's targets: every category by text, then one organ by its box and one by points. */
interface DemoPlan {
  /** Each category's ground-truth mask. */
  truth: Map<string, Uint8Array>;
  plan: PlannedTarget[];
  boxOrgan: string;
  pointOrgan: string;
  box: [number, number, number, number, number, number];
  points: Vec3[];
  pointPrompts: { ijk: Vec3; label: 1 }[];
}

/** Runs the demo; see the file comment. */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = performance.now();
  const log = opts.onProgress ?? (() => {});
  const { seed, weights, categories, out } = checkDemoRun(opts);
  log(`phantom seed ${seed}`);
  const ph: Phantom = generatePhantom(seed, opts.phantom ?? {});
  const plan = planTargets(ph, categories, seed);
  log(`box ${plan.box.join(",")} on ${plan.boxOrgan}; points ${plan.points.map((p) => p.join(",")).join(" ")} on ${plan.pointOrgan}`);
  const { result, compileSeconds } = await segmentPhantom(weights, opts.precision ?? "f32", ph, plan.plan, log);
  const scored = scoreTargets(categories, plan, result, ph.labels.length);
  const names = writeDemoOutput(out, { seed, weights, categories, ph, plan, result, scored, compileSeconds, started });
  return { targets: scored.targets, compileSeconds, seconds: Math.round(performance.now() - started) / 1000, files: names.map((f) => join(out, f)) };
}

/** Checks everything the run depends on before any work: the seed, the weights, their categories, the output folder. */
function checkDemoRun(opts: DemoOptions): { seed: number; weights: string; categories: string[]; out: string } {
  const seed = opts.seed ?? DEMO_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`demo: seed ${seed}: expected an integer in [0, 2^32)`);
  const weights = resolve(opts.weights);
  checkDemoWeights(weights);
  const [first, last] = trainingSeeds(weights);
  if (seed >= first && seed <= last) {
    throw new Error(`demo: seed ${seed} is a training phantom (${first}-${last}); the demo must show an unseen one`);
  }
  const categories = demoCategories(weights);
  const out = resolve(opts.out ?? "segvol-demo");
  checkOutputDir(out);
  return { seed, weights, categories, out };
}

/** The ground truth per category and the targets: text for each, a box on one organ in view, points on another. */
function planTargets(ph: Phantom, categories: string[], seed: number): DemoPlan {
  const n = ph.labels.length;
  const truth = new Map<string, Uint8Array>();
  for (const organ of categories) {
    const l = PHANTOM_LABELS.indexOf(organ);
    const m = new Uint8Array(n);
    for (let v = 0; v < n; v++) m[v] = ph.labels[v] === l ? 1 : 0;
    truth.set(organ, m);
  }
  const present = (o: string) => truth.get(o)!.some((x) => x !== 0);
  const pick = (pref: string[], avoid?: string) =>
    pref.find((o) => o !== avoid && truth.has(o) && present(o)) ?? categories.find((o) => o !== avoid && present(o)) ?? categories.find(present);
  const boxOrgan = pick(BOX_PREFERENCE);
  const pointOrgan = pick(POINT_PREFERENCE, boxOrgan);
  if (!boxOrgan || !pointOrgan) throw new Error(`demo: phantom seed ${seed} has none of ${categories.join(", ")} in view`);

  const plan: PlannedTarget[] = categories.map((organ) => ({ target: { name: `text:${organ}`, text: organ }, organ, prompt: "text" }));
  const box = boundingBox(truth.get(boxOrgan)!, ph.dims);
  plan.push({ target: { name: `box:${boxOrgan}`, box }, organ: boxOrgan, prompt: "box" });
  const points = samplePoints(truth.get(pointOrgan)!, ph.dims);
  const pointPrompts = points.map((ijk) => ({ ijk, label: 1 as const }));
  plan.push({ target: { name: `points:${pointOrgan}`, points: pointPrompts }, organ: pointOrgan, prompt: "points" });
  return { truth, plan, boxOrgan, pointOrgan, box, points, pointPrompts };
}

/**
 * Loads the model, compiles the kernels (a stage of its own) and segments
 * every target in one call; the model and the GPU are released whatever happens.
 */
async function segmentPhantom(weights: string, precision: Precision, ph: Phantom, plan: readonly PlannedTarget[], log: (line: string) => void): Promise<{ result: SegmentResult; compileSeconds: number }> {
  const model = await SegVol.fromWeights(weights, { precision });
  const volume = { dims: ph.dims, data: Float32Array.from(ph.image) };
  const prompts = plan.map((p) => p.target);
  let result, compileSeconds;
  // Progress at each stage's start, every tenth of it, and its end (not one line per window).
  let lastStage = "", lastTenth = -1;
  const progress = (done: number, total: number, stage: string) => {
    const tenth = Math.floor((10 * done) / Math.max(total, 1));
    if (stage === lastStage && tenth === lastTenth) return;
    lastStage = stage;
    lastTenth = tenth;
    log(`${stage} ${done}/${total} windows`);
  };
  try {
    // Kernels are compiled on their first use. A zoom-out pass runs every
    // kernel the segmentation uses (the zoom-in windows have the zoom-out
    // window's shape, and their prompts take the same kernels), so running
    // it first, and discarding its masks, compiles them all at the cost of
    // one encode and a decode per target. Should the segmentation still
    // compile some, progress says so.
    log("compiling kernels (the first run on a machine takes longest)");
    const t0 = performance.now(), before = gpu().pipelineCount;
    await model.segment(volume, prompts, { zoomIn: false });
    compileSeconds = Math.round(performance.now() - t0) / 1000;
    const compiled = gpu().pipelineCount;
    log(`compiled ${compiled - before} kernels in ${compileSeconds} s`);
    result = await model.segment(volume, prompts, { onProgress: progress });
    if (gpu().pipelineCount > compiled) log(`compiled ${gpu().pipelineCount - compiled} more kernels during the segmentation (their time is in the targets')`);
  } finally {
    model.dispose();
    releaseGpu();
  }
  return { result, compileSeconds };
}

/** The ground-truth label map, the text label map and each target's Dice and time. */
interface Scores {
  gt: Uint8Array;
  textMap: Int16Array;
  /** Text target k's mask in the text label map. */
  textMask: (k: number) => Int16Array;
  targets: DemoTargetResult[];
}

/**
 * The text label map: where text masks overlap, the voxel goes to the
 * organ with the highest logit. Text Dice is scored on this map (what
 * text_labels.nii.gz holds), box and point Dice on their own masks.
 */
function scoreTargets(categories: readonly string[], { truth, plan }: DemoPlan, result: SegmentResult, n: number): Scores {
  const gt = new Uint8Array(n);
  const textMap = new Int16Array(n);
  const best = new Float32Array(n).fill(-Infinity);
  categories.forEach((organ, k) => {
    const m = truth.get(organ)!;
    for (let v = 0; v < n; v++) if (m[v]) gt[v] = k + 1;
    const r = result.targets[k]!;
    for (let v = 0; v < n; v++) {
      if (r.mask[v] && r.logits[v]! > best[v]!) {
        best[v] = r.logits[v]!;
        textMap[v] = k + 1;
      }
    }
  });
  const textMask = (k: number) => textMap.map((x) => (x === k + 1 ? 1 : 0));
  const targets: DemoTargetResult[] = plan.map((p, t) => {
    const r = result.targets[t]!;
    const mask = p.prompt === "text" ? textMask(t) : r.mask;
    return { name: p.organ, prompt: p.prompt, dice: dice(mask, truth.get(p.organ)!), seconds: Math.round(r.seconds * 1000) / 1000 };
  });
  return { gt, textMap, textMask, targets };
}

/** What writeDemoOutput writes: the run's inputs, its plan, results and scores. */
interface DemoOutput {
  seed: number;
  weights: string;
  categories: string[];
  ph: Phantom;
  plan: DemoPlan;
  result: SegmentResult;
  scored: Scores;
  compileSeconds: number;
  /** performance.now() at the run's start, for demo.json's seconds. */
  started: number;
}

/**
 * Writes the volumes, pictures and demo.json into a temporary sibling folder,
 * then renames it into place (see the file comment); returns the file names.
 */
function writeDemoOutput(out: string, d: DemoOutput): string[] {
  const { seed, categories, ph, result, scored } = d;
  const { truth, plan, boxOrgan, pointOrgan, box, points, pointPrompts } = d.plan;
  const { targets, textMask } = scored;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.demo-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(tmp);
  const names: string[] = [];
  let done = false;
  try {
    const like = niftiFromArray(ph.dims, new Float32Array(ph.labels.length), { affine: ph.affine });
    const nii = (name: string, data: ArrayLike<number>, type: "uint8" | "int16") => {
      writeNifti(join(tmp, name), like, data, type, { descrip: PRODUCER });
      names.push(name);
    };
    const png = (name: string, bytes: Uint8Array) => {
      writePng(join(tmp, name), bytes);
      names.push(name);
    };
    nii("phantom.nii.gz", ph.image, "int16");
    // Ground truth numbered 1..K in the categories' order, as text_labels.
    nii("labels.nii.gz", scored.gt, "uint8");
    nii("text_labels.nii.gz", scored.textMap, "int16");
    const boxT = plan.length - 2, pointT = plan.length - 1;
    nii(`box_${fileStem(boxOrgan)}.nii.gz`, result.targets[boxT]!.mask, "uint8");
    nii(`points_${fileStem(pointOrgan)}.nii.gz`, result.targets[pointT]!.mask, "uint8");
    // One choice of planes for every picture, so that they compare side by side.
    const slices = centreSlices([...truth.values()], ph.dims);
    const view = { image: ph.image, dims: ph.dims, spacing: ph.spacing, affine: ph.affine, slices };
    const score = (t: number) => `${targets[t]!.name} ${targets[t]!.dice.toFixed(3)}`;
    png("text.png", renderSlices({ ...view, title: `TEXT PROMPTS (SEED ${seed})`, masks: categories.map((_organ, k) => ({ name: score(k), mask: new Uint8Array(textMask(k)) })) }));
    png("box.png", renderSlices({ ...view, title: `BOX PROMPT: ${boxOrgan}`, masks: [{ name: score(boxT), mask: result.targets[boxT]!.mask }], box }));
    png("points.png", renderSlices({ ...view, title: `POINT PROMPTS: ${pointOrgan}`, masks: [{ name: score(pointT), mask: result.targets[pointT]!.mask }], points: pointPrompts }));
    png("ground_truth.png", renderSlices({ ...view, title: `GROUND TRUTH (SEED ${seed})`, masks: categories.map((organ) => ({ name: organ, mask: truth.get(organ)! })) }));
    const seconds = Math.round(performance.now() - d.started) / 1000;
    const summary = { producer: PRODUCER, seed, weights: d.weights, categories, box: { organ: boxOrgan, ijk: box }, points: { organ: pointOrgan, ijk: points }, slices, targets, compileSeconds: d.compileSeconds, seconds };
    writeFileAtomic(join(tmp, "demo.json"), new TextEncoder().encode(JSON.stringify(summary, null, 1) + "\n"), { what: "demo" });
    names.push("demo.json");
    replaceDir(tmp, out);
    done = true;
  } finally {
    if (!done) rmSync(tmp, { recursive: true, force: true });
  }
  return names;
}
