// Training data: image/label pairs in the Medical Segmentation Decathlon
// layout (DIR/imagesTr/NAME.nii.gz with DIR/labelsTr/NAME.nii.gz, label
// values 1..K named by a categories list) turned into random model windows
// the way SegVol's training loader does:
//  1. the spec's preprocessing (src/segvol/pipeline/preprocess.ts: foreground
//     normalisation, the free axis transpose, min-max, foreground crop), the
//     label cropped with the same box;
//  2. zero padding, symmetric, up to the window size (MONAI SpatialPad);
//  3. one of (weights resizeProb : 1 − resizeProb): the whole volume resized
//     to the window (labels nearest-exact; image nearest-exact, as the
//     inference zoom-out, or trilinear), or a window-sized crop centred on a
//     foreground voxel (probability posFraction, upstream pos=2/neg=1) or on
//     a background voxel inside the body (image > 0), clamped to the volume
//     (MONAI RandCropByPosNegLabel); the foreground voxel is drawn uniformly
//     (MONAI) or, with cropCentre "category", from a uniformly drawn category
//     of the case, so small organs are cropped as often as a large liver;
//  4. random flips per axis, random intensity scale (v·(1+f)) and shift
//     (v + o) (MONAI RandFlip / RandScaleIntensity / RandShiftIntensity with
//     SegVol's probabilities 0.2 / 0.1 / 0.1 and ranges ±0.1).
// Every random choice comes from the caller's Rng, drawn in a fixed order
// whatever the probabilities, so a seed reproduces the windows.
import { existsSync, join, readdirSync, statSync } from "../node/host.node.js";
import { readNifti } from "../io/nifti.js";
import { preprocess } from "../segvol/pipeline/preprocess.js";
import { indexMap } from "../segvol/pipeline/resize.js";
import type { Vec3 } from "../segvol/pipeline/types.js";
import type { Rng } from "./rng.js";

export interface MsdCase {
  name: string;
  image: string;
  label: string;
}

const NIFTI = /\.nii(\.gz)?$/i;

/** The image/label pairs of an MSD folder, sorted by name; a missing label is an error. */
export function listMsdCases(dir: string): MsdCase[] {
  const op = "MSD dataset";
  const images = join(dir, "imagesTr");
  const labels = join(dir, "labelsTr");
  for (const d of [images, labels]) {
    if (!existsSync(d) || !statSync(d).isDirectory()) throw new Error(`${op}: ${d} is not a folder (expected DIR/imagesTr and DIR/labelsTr)`);
  }
  // MSD archives carry macOS "._NAME" resource files: not volumes.
  const names = readdirSync(images).filter((f) => NIFTI.test(f) && !f.startsWith(".")).sort();
  if (names.length === 0) throw new Error(`${op}: ${images} has no .nii or .nii.gz files`);
  return names.map((f) => {
    const label = join(labels, f);
    if (!existsSync(label)) throw new Error(`${op}: ${join(images, f)} has no label ${label}`);
    return { name: f.replace(NIFTI, ""), image: join(images, f), label };
  });
}

/** A case after steps 1-2: model space (D, H, W), cropped to the foreground and padded to at least one window. */
export interface PreparedCase {
  name: string;
  shape: Vec3;
  image: Float32Array;
  /** Label values 0..K per voxel. */
  label: Uint8Array;
  /** Voxels with a label > 0 (crop centres for positive windows). */
  foreground: Int32Array;
  /** Voxels with label 0 and image > 0 (crop centres for negative windows). */
  backgroundCount: number;
}

/** Steps 1-2 for one case: read both files, preprocess, crop the label alike, pad to the window. */
export function prepareCase(c: MsdCase, numCategories: number, spatialSize: Vec3): PreparedCase {
  const op = `MSD case ${c.name}`;
  const img = readNifti(c.image);
  const lab = readNifti(c.label);
  if (img.dims.some((d, a) => d !== lab.dims[a])) {
    throw new Error(`${op}: image ${c.image} is ${img.dims.join("×")} but label ${c.label} is ${lab.dims.join("×")}`);
  }
  const pre = preprocess({ dims: img.dims, data: img.data });
  const [, FH, FW] = pre.fullShape;
  const { start } = pre.cropBox;
  const [cd, ch, cw] = pre.shape;
  // Pad symmetrically (extra voxel after), as MONAI SpatialPad.
  const shape = pre.shape.map((s, a) => Math.max(s, spatialSize[a]!)) as Vec3;
  const before = pre.shape.map((s, a) => Math.floor((shape[a]! - s) / 2)) as Vec3;
  const n = shape[0] * shape[1] * shape[2];
  const image = new Float32Array(n);
  const label = new Uint8Array(n);
  for (let d = 0; d < cd; d++) {
    for (let h = 0; h < ch; h++) {
      const src = ((start[0] + d) * FH + start[1] + h) * FW + start[2];
      const dst = ((before[0] + d) * shape[1] + before[1] + h) * shape[2] + before[2];
      image.set(pre.data.subarray((d * ch + h) * cw, (d * ch + h + 1) * cw), dst);
      for (let w = 0; w < cw; w++) {
        const v = lab.data[src + w]!;
        if (!(Number.isInteger(v) && v >= 0 && v <= numCategories)) {
          const [i, j, k] = [start[2] + w, start[1] + h, start[0] + d];
          throw new Error(`${op}: label ${c.label} has value ${v} at (i, j, k) = (${i}, ${j}, ${k}); expected integers 0..${numCategories} (one per category)`);
        }
        label[dst + w] = v;
      }
    }
  }
  let fgCount = 0, bgCount = 0;
  for (let i = 0; i < n; i++) {
    if (label[i]! > 0) fgCount++;
    else if (image[i]! > 0) bgCount++;
  }
  const foreground = new Int32Array(fgCount);
  for (let i = 0, k = 0; i < n; i++) if (label[i]! > 0) foreground[k++] = i;
  return { name: c.name, shape, image, label, foreground, backgroundCount: bgCount };
}

export interface AugmentOptions {
  /** Probability of a whole-volume resize rather than a crop (default 0.5, upstream OneOf weights 1:1). */
  resizeProb?: number;
  /** Image interpolation of the whole-volume resize (default nearest-exact, as the inference zoom-out). */
  imageResize?: "nearest-exact" | "trilinear";
  /** Probability that a crop is centred on foreground (default 2/3: upstream pos=2, neg=1). */
  posFraction?: number;
  /**
   * How a foreground centre is drawn: "voxel" (default, MONAI) uniformly over
   * all foreground voxels, which centres most crops on the largest organ;
   * "category" first draws one of the case's categories uniformly, then a
   * voxel of it.
   */
  cropCentre?: "voxel" | "category";
  /** Per-axis flip probability (default 0.2). */
  flipProb?: number;
  /** Intensity scale: probability (default 0.1) and range ±factor (default 0.1). */
  scaleProb?: number;
  scaleFactor?: number;
  /** Intensity shift: probability (default 0.1) and range ±offset (default 0.1). */
  shiftProb?: number;
  shiftOffset?: number;
}

export interface TrainWindow {
  name: string;
  /** C-order [D, H, W] of the window. */
  image: Float32Array;
  /** One binary mask per category (every category, empty ones included). */
  labels: Map<string, Uint8Array>;
  mode: "resize" | "crop";
  /** Crop start in the prepared case (zeros for a resize). */
  origin: Vec3;
  flips: [boolean, boolean, boolean];
  /** The intensity transform applied: v·scale + shift. */
  scale: number;
  shift: number;
}

/** Rank-th voxel (0-based) with label 0 and image > 0. */
function backgroundVoxel(c: PreparedCase, rank: number): number {
  for (let i = 0, r = 0; i < c.image.length; i++) {
    if (c.label[i] === 0 && c.image[i]! > 0 && r++ === rank) return i;
  }
  throw new Error(`MSD case ${c.name}: internal error, background voxel ${rank} not found`);
}

function trilinearAxis(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; t: Float32Array } {
  // PyTorch align_corners=False: src = (dst + 0.5)·in/out − 0.5, clamped at 0.
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize), t = new Float32Array(outSize);
  const s = inSize / outSize;
  for (let d = 0; d < outSize; d++) {
    const x = Math.max(0, (d + 0.5) * s - 0.5);
    const a = Math.min(Math.floor(x), inSize - 1);
    i0[d] = a;
    i1[d] = Math.min(a + 1, inSize - 1);
    t[d] = x - a;
  }
  return { i0, i1, t };
}

function resizeTrilinear(src: Float32Array, inShape: Vec3, outShape: Vec3): Float32Array {
  const [, H, W] = inShape;
  const [ad, ah, aw] = inShape.map((n, a) => trilinearAxis(n, outShape[a]!)) as [ReturnType<typeof trilinearAxis>, ReturnType<typeof trilinearAxis>, ReturnType<typeof trilinearAxis>];
  const out = new Float32Array(outShape[0] * outShape[1] * outShape[2]);
  const at = (d: number, h: number, w: number) => src[(d * H + h) * W + w]!;
  let o = 0;
  for (let d = 0; d < outShape[0]; d++) {
    const d0 = ad.i0[d]!, d1 = ad.i1[d]!, td = ad.t[d]!;
    for (let h = 0; h < outShape[1]; h++) {
      const h0 = ah.i0[h]!, h1 = ah.i1[h]!, th = ah.t[h]!;
      for (let w = 0; w < outShape[2]; w++) {
        const w0 = aw.i0[w]!, w1 = aw.i1[w]!, tw = aw.t[w]!;
        const lerp = (a: number, b: number, t: number) => a + (b - a) * t;
        const c0 = lerp(lerp(at(d0, h0, w0), at(d0, h0, w1), tw), lerp(at(d0, h1, w0), at(d0, h1, w1), tw), th);
        const c1 = lerp(lerp(at(d1, h0, w0), at(d1, h0, w1), tw), lerp(at(d1, h1, w0), at(d1, h1, w1), tw), th);
        out[o++] = lerp(c0, c1, td);
      }
    }
  }
  return out;
}

/** Gathers out[d,h,w] = src[md[d], mh[h], mw[w]] (nearest resizes, crops and flips are all such maps). */
function gather<T extends Float32Array | Uint8Array>(src: T, inShape: Vec3, maps: [Int32Array, Int32Array, Int32Array], out: T): T {
  const [, H, W] = inShape;
  const [md, mh, mw] = maps;
  let o = 0;
  for (let d = 0; d < md.length; d++) {
    for (let h = 0; h < mh.length; h++) {
      const row = (md[d]! * H + mh[h]!) * W;
      for (let w = 0; w < mw.length; w++) out[o++] = src[row + mw[w]!]!;
    }
  }
  return out;
}

function checkProb(name: string, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new Error(`MSD dataset: ${name} must be a probability in [0, 1], got ${p}`);
  return p;
}

const byLabelCache = new WeakMap<PreparedCase, Int32Array[]>();

/**
 * The case's foreground voxels grouped by label, ascending label, labels the
 * case lacks left out. Derived from `foreground` on first use (only
 * cropCentre "category" needs it) and kept while the case is.
 */
export function foregroundByLabel(c: PreparedCase): Int32Array[] {
  let groups = byLabelCache.get(c);
  if (!groups) {
    // Labels are bytes: count per value, then fill each value's list in voxel order.
    const count = new Int32Array(256);
    for (const i of c.foreground) count[c.label[i]!]++;
    const lists = Array.from(count, (n) => new Int32Array(n));
    const filled = new Int32Array(256);
    for (const i of c.foreground) lists[c.label[i]!]![filled[c.label[i]!]++] = i;
    groups = lists.filter((v) => v.length > 0);
    byLabelCache.set(c, groups);
  }
  return groups;
}

/**
 * A foreground voxel from one uniform draw u in [0, 1) (one draw either way,
 * so both modes consume the same random stream): "voxel" takes voxel
 * ⌊u·n⌋; "category" splits u into a category among the case's present ones
 * and a position within that category's voxels.
 */
function foregroundCentre(c: PreparedCase, u: number, mode: "voxel" | "category"): number {
  if (mode === "voxel") return c.foreground[Math.floor(u * c.foreground.length)]!;
  const present = foregroundByLabel(c);
  const x = u * present.length;
  const k = Math.min(Math.floor(x), present.length - 1);
  const voxels = present[k]!;
  return voxels[Math.min(Math.floor((x - k) * voxels.length), voxels.length - 1)]!;
}

/** Steps 3-4 on a prepared case: one random training window. */
export function sampleWindow(c: PreparedCase, categories: readonly string[], spatialSize: Vec3, rng: Rng, opts: AugmentOptions = {}): TrainWindow {
  const resizeProb = checkProb("resizeProb", opts.resizeProb ?? 0.5);
  const posFraction = checkProb("posFraction", opts.posFraction ?? 2 / 3);
  const flipProb = checkProb("flipProb", opts.flipProb ?? 0.2);
  const scaleProb = checkProb("scaleProb", opts.scaleProb ?? 0.1);
  const shiftProb = checkProb("shiftProb", opts.shiftProb ?? 0.1);
  const scaleFactor = opts.scaleFactor ?? 0.1;
  const shiftOffset = opts.shiftOffset ?? 0.1;
  const imageResize = opts.imageResize ?? "nearest-exact";
  const cropCentre = opts.cropCentre ?? "voxel";
  if (cropCentre !== "voxel" && cropCentre !== "category") throw new Error(`MSD dataset: cropCentre must be "voxel" or "category", got ${JSON.stringify(cropCentre)}`);
  if (c.shape.some((s, a) => s < spatialSize[a]!)) {
    throw new Error(`MSD case ${c.name}: prepared shape [${c.shape.join(", ")}] is smaller than the window [${spatialSize.join(", ")}]`);
  }
  // Draws in a fixed order, whatever the options.
  const resize = rng.chance(resizeProb);
  const positive = rng.chance(posFraction);
  const centreDraw = rng.float();
  const flips = [rng.chance(flipProb), rng.chance(flipProb), rng.chance(flipProb)] as [boolean, boolean, boolean];
  const doScale = rng.chance(scaleProb);
  const scaleDraw = rng.uniform(-scaleFactor, scaleFactor);
  const doShift = rng.chance(shiftProb);
  const shiftDraw = rng.uniform(-shiftOffset, shiftOffset);

  let maps: [Int32Array, Int32Array, Int32Array];
  let origin: Vec3 = [0, 0, 0];
  if (resize) {
    maps = c.shape.map((n, a) => indexMap(n, spatialSize[a]!, "nearest-exact")) as typeof maps;
  } else {
    // Centre: a foreground voxel, or a background voxel inside the body; either falls back to the other.
    const nFg = c.foreground.length, nBg = c.backgroundCount;
    let centre: number;
    if ((positive && nFg > 0) || nBg === 0) {
      centre = nFg > 0 ? foregroundCentre(c, centreDraw, cropCentre) : Math.floor(centreDraw * c.image.length);
    } else {
      centre = backgroundVoxel(c, Math.floor(centreDraw * nBg));
    }
    const [, H, W] = c.shape;
    const pos: Vec3 = [Math.floor(centre / (H * W)), Math.floor(centre / W) % H, centre % W];
    origin = pos.map((p, a) => Math.min(Math.max(0, p - Math.floor(spatialSize[a]! / 2)), c.shape[a]! - spatialSize[a]!)) as Vec3;
    maps = spatialSize.map((s, a) => Int32Array.from({ length: s }, (_, k) => origin[a]! + k)) as typeof maps;
  }
  for (let a = 0; a < 3; a++) if (flips[a]) maps[a]!.reverse();

  const n = spatialSize[0] * spatialSize[1] * spatialSize[2];
  let image: Float32Array;
  if (resize && imageResize === "trilinear") {
    image = resizeTrilinear(c.image, c.shape, spatialSize);
    const identity = spatialSize.map((s) => Int32Array.from({ length: s }, (_, k) => k)) as typeof maps;
    for (let a = 0; a < 3; a++) if (flips[a]) identity[a]!.reverse();
    image = gather(image, spatialSize, identity, new Float32Array(n));
  } else {
    image = gather(c.image, c.shape, maps, new Float32Array(n));
  }
  const labelMap = gather(c.label, c.shape, maps, new Uint8Array(n));
  const scale = doScale ? 1 + scaleDraw : 1;
  const shift = doShift ? shiftDraw : 0;
  if (scale !== 1 || shift !== 0) for (let i = 0; i < n; i++) image[i] = image[i]! * scale + shift;
  const labels = new Map<string, Uint8Array>();
  categories.forEach((name, k) => {
    const m = new Uint8Array(n);
    for (let i = 0; i < n; i++) if (labelMap[i] === k + 1) m[i] = 1;
    labels.set(name, m);
  });
  return { name: c.name, image, labels, mode: resize ? "resize" : "crop", origin, flips, scale, shift };
}

export interface MsdDatasetOptions {
  categories: readonly string[];
  /** The model window (D, H, W), the config's spatial_size. */
  spatialSize: Vec3;
  augment?: AugmentOptions;
  /**
   * Bytes of prepared cases kept in memory (default 2 GiB; the least recently
   * used are evicted beyond it, one case is always kept). A real CT volume is
   * hundreds of MB prepared, so only a few stay; small phantoms all fit, which
   * saves re-reading and re-preprocessing a file on every step.
   */
  cacheBytes?: number;
}

function preparedBytes(c: PreparedCase): number {
  // Per-label lists (cropCentre "category") hold the foreground once more.
  return c.image.byteLength + c.label.byteLength + 2 * c.foreground.byteLength;
}

/** An MSD folder as a source of random training windows. */
export class MsdDataset {
  readonly cases: MsdCase[];
  readonly categories: readonly string[];
  readonly spatialSize: Vec3;
  private readonly augment: AugmentOptions;
  private readonly cacheBytes: number;
  private readonly cache = new Map<number, PreparedCase>();
  private cachedBytes = 0;

  constructor(dir: string, opts: MsdDatasetOptions) {
    const cats = opts.categories;
    if (cats.length === 0 || cats.length > 255) throw new Error(`MSD dataset: give 1..255 category names, got ${cats.length}`);
    if (cats.some((c) => typeof c !== "string" || c.trim() === "")) throw new Error(`MSD dataset: empty category name in [${cats.join(", ")}]`);
    if (new Set(cats).size !== cats.length) throw new Error(`MSD dataset: duplicate category names in [${cats.join(", ")}]`);
    if (opts.spatialSize.length !== 3 || !opts.spatialSize.every((s) => Number.isInteger(s) && s > 0)) {
      throw new Error(`MSD dataset: spatialSize must be three positive integers, got [${opts.spatialSize.join(", ")}]`);
    }
    this.cases = listMsdCases(dir);
    this.categories = [...cats];
    this.spatialSize = [...opts.spatialSize] as Vec3;
    this.augment = opts.augment ?? {};
    this.cacheBytes = opts.cacheBytes ?? 2 * 2 ** 30;
    if (!(this.cacheBytes >= 0)) throw new Error(`MSD dataset: cacheBytes must be ≥ 0, got ${this.cacheBytes}`);
  }

  get length(): number {
    return this.cases.length;
  }

  /** Case i after preprocessing and padding (cached, least recently used evicted). */
  prepared(i: number): PreparedCase {
    if (!(Number.isInteger(i) && i >= 0 && i < this.cases.length)) throw new Error(`MSD dataset: case index ${i} out of range 0..${this.cases.length - 1}`);
    let c = this.cache.get(i);
    if (c) {
      this.cache.delete(i);
    } else {
      c = prepareCase(this.cases[i]!, this.categories.length, this.spatialSize);
      this.cachedBytes += preparedBytes(c);
    }
    this.cache.set(i, c);
    // Evict the least recently used beyond the budget (Map order is use order; the newest stays).
    while (this.cachedBytes > this.cacheBytes && this.cache.size > 1) {
      const [k, old] = this.cache.entries().next().value!;
      this.cache.delete(k);
      this.cachedBytes -= preparedBytes(old);
    }
    return c;
  }

  /** A random window of case `index` (default: a random case). */
  sample(rng: Rng, index?: number): TrainWindow {
    const i = index ?? rng.below(this.cases.length);
    return sampleWindow(this.prepared(i), this.categories, this.spatialSize, rng, this.augment);
  }
}
