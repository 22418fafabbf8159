// Synthetic abdominal CT phantoms with exact label maps (the generator is the
// ground truth), for training and testing the demo model without real data.
//
// Geometry. Anatomy is drawn in "adult" millimetres in patient space, RAS:
// X toward the patient's right, Y anterior, Z superior, origin at the body
// centre in-plane and Z = 0 near the renal hila. A global scale s maps adult
// mm to world mm so that the body fills the seed's field of view (the in-plane
// voxel count and spacing follow SegVol-friendly ranges; the anatomy scales
// with them, like a smaller or larger patient). Voxel (i, j, k) lies at world
// (i·sx, j·sy, k·sz) + origin: i grows to the patient's right, j anteriorly,
// k superiorly (affine = diag(spacing), a RAS-aligned NIfTI).
//
// Painting. Unlabelled tissue first (air, skin, subcutaneous fat, muscle wall,
// intra-abdominal fat, lungs, ribs, back muscles, psoas, bowel), then the
// labelled organs in a fixed order; a later organ overwrites an earlier one
// (HU and label together), so labels never overlap and always match the HU
// that was drawn. Each organ's shape is an implicit function evaluated at a
// smoothly displaced point (a few random low-frequency sinusoids), with size
// and position jittered per seed. Texture (smooth value noise) and CT noise
// (Gaussian) are added last; labels are unaffected by noise.
import { existsSync, join, mkdirSync, readdirSync, readFileSync } from "../node/host.node.js";
import { writeFileAtomic } from "../io/atomic.js";
import { niftiFromArray, writeNifti } from "../io/nifti.js";
import { Rng } from "../train/rng.js";

/** Label names; the index is the label value in the label map. */
export const PHANTOM_LABELS: readonly string[] = Object.freeze([
  "background",
  "liver",
  "spleen",
  "left kidney",
  "right kidney",
  "aorta",
  "inferior vena cava",
  "vertebral column",
  "stomach",
  "pancreas",
  "gallbladder",
]);

const L = Object.fromEntries(PHANTOM_LABELS.map((n, i) => [n, i])) as Record<string, number>;

export type Vec3 = [number, number, number];

export interface PhantomOptions {
  /** Voxels along i, j, k (default: seeded, in-plane 128-192, 40-90 slices). */
  dims?: Vec3;
  /** Voxel size in mm (default: seeded, in-plane 0.8-1.5, slices 2.5-5). */
  spacing?: Vec3;
}

export interface Phantom {
  /** HU, i fastest. */
  image: Int16Array;
  /** Label values (index into PHANTOM_LABELS), i fastest. */
  labels: Uint8Array;
  dims: Vec3;
  spacing: Vec3;
  /** Voxel → world (RAS mm), 4×4. */
  affine: number[][];
}

/** A smooth random displacement: per component, a sum of two sinusoids of wavelength 70-200 adult mm. */
class Deform {
  private k: Float64Array; // 6 waves × (kx, ky, kz, phase, amp)
  constructor(rng: Rng, amp: number) {
    this.k = new Float64Array(6 * 5);
    for (let w = 0; w < 6; w++) {
      const lambda = rng.uniform(70, 200);
      // Random direction on the sphere.
      const z = rng.uniform(-1, 1);
      const t = rng.uniform(0, 2 * Math.PI);
      const r = Math.sqrt(1 - z * z);
      const f = (2 * Math.PI) / lambda;
      this.k.set([f * r * Math.cos(t), f * r * Math.sin(t), f * z, rng.uniform(0, 2 * Math.PI), amp * rng.uniform(0.4, 1)], w * 5);
    }
  }
  /** Writes the displaced point into out. */
  apply(x: number, y: number, z: number, out: Float64Array): void {
    const k = this.k;
    let d0 = 0, d1 = 0, d2 = 0;
    for (let w = 0; w < 6; w++) {
      const o = w * 5;
      const v = k[o + 4]! * Math.sin(k[o]! * x + k[o + 1]! * y + k[o + 2]! * z + k[o + 3]!);
      if (w < 2) d0 += v;
      else if (w < 4) d1 += v;
      else d2 += v;
    }
    out[0] = x + d0;
    out[1] = y + d1;
    out[2] = z + d2;
  }
}

/** An ellipsoid with in-plane rotation `rot` (radians, about Z) and tilt `tilt` (about Y): returns Σ(q/r)² (≤ 1 inside). */
function ellipsoid(c: Vec3, r: Vec3, rot = 0, tilt = 0) {
  const cr = Math.cos(rot), sr = Math.sin(rot), ct = Math.cos(tilt), st = Math.sin(tilt);
  return (x: number, y: number, z: number): number => {
    let dx = x - c[0], dy = y - c[1], dz = z - c[2];
    const ax = cr * dx + sr * dy;
    dy = -sr * dx + cr * dy;
    dx = ct * ax + st * dz;
    dz = -st * ax + ct * dz;
    return (dx / r[0]) ** 2 + (dy / r[1]) ** 2 + (dz / r[2]) ** 2;
  };
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Seeded geometry when not given: in-plane 128-192 voxels, FOV ~200-280 mm clamped to 0.8-1.5 mm spacing, 40-90 slices of 2.5-5 mm. */
function chooseGrid(rng: Rng, opts: PhantomOptions, scaleOf: (fovHalf: number) => number): { dims: Vec3; spacing: Vec3 } {
  const n = opts.dims?.[0] ?? 128 + 16 * rng.int(0, 4);
  const m = opts.dims?.[1] ?? n;
  const nz = opts.dims?.[2] ?? rng.int(40, 90);
  const fov = rng.uniform(200, 280);
  const sx = opts.spacing?.[0] ?? Math.round(clamp(fov / n, 0.8, 1.5) * 1000) / 1000;
  const sy = opts.spacing?.[1] ?? sx;
  const coverage = rng.uniform(240, 330); // adult mm of abdomen covered
  const s = scaleOf(Math.min(n * sx, m * sy) / 2);
  const sz = opts.spacing?.[2] ?? Math.round(clamp((coverage * s) / nz, 2.5, 5) * 1000) / 1000;
  return { dims: [n, m, nz], spacing: [sx, sy, sz] };
}

function checkOptions(opts: PhantomOptions): void {
  if (opts.dims && (opts.dims.length !== 3 || !opts.dims.every((d) => Number.isInteger(d) && d >= 8 && d <= 1024))) {
    throw new Error(`generatePhantom: dims must be three integers in [8, 1024], got ${JSON.stringify(opts.dims)}`);
  }
  if (opts.spacing && (opts.spacing.length !== 3 || !opts.spacing.every((d) => Number.isFinite(d) && d > 0 && d <= 20))) {
    throw new Error(`generatePhantom: spacing must be three numbers in (0, 20] mm, got ${JSON.stringify(opts.spacing)}`);
  }
}

/** The voxel grid of one phantom and the volumes painted on it, voxel v = k·nx·ny + j·nx + i. */
class Canvas {
  readonly nxy: number;
  readonly hu: Float32Array;
  readonly lab: Uint8Array;
  /** Adult mm inside the skin (negative outside). */
  readonly depth: Float32Array;
  /** Depth of the abdominal cavity boundary at each voxel. */
  readonly wall: Float32Array;
  /** Texture amplitude of the tissue drawn. */
  readonly texAmp: Float32Array;

  /**
   * `s` is world mm per adult mm; X, Y, Z the adult-mm coordinate of each
   * index, and `zCentre` the adult-mm Z of the volume's middle slice.
   */
  constructor(
    readonly dims: Vec3,
    readonly spacing: Vec3,
    readonly s: number,
    readonly zCentre: number,
    readonly X: Float64Array,
    readonly Y: Float64Array,
    readonly Z: Float64Array,
  ) {
    this.nxy = dims[0] * dims[1];
    const N = this.nxy * dims[2];
    this.hu = new Float32Array(N);
    this.lab = new Uint8Array(N);
    this.depth = new Float32Array(N);
    this.wall = new Float32Array(N);
    this.texAmp = new Float32Array(N);
  }

  /**
   * Paints voxels whose adult-mm coordinates lie in the box and for which fn
   * returns a HU (not NaN): inside the abdominal cavity, or (`"body"`) anywhere
   * deeper than the skin.
   */
  paint(box: [Vec3, Vec3], label: number, tex: number, fn: (x: number, y: number, z: number, v: number) => number, where: "cavity" | "body" = "cavity"): void {
    const [nx, ny, nz] = this.dims;
    const [sx, sy, sz] = this.spacing;
    const { s, zCentre, nxy, X, Y, Z, hu, lab, depth, wall, texAmp } = this;
    const i0 = Math.max(0, Math.floor((box[0][0] * s) / sx + (nx - 1) / 2)), i1 = Math.min(nx - 1, Math.ceil((box[1][0] * s) / sx + (nx - 1) / 2));
    const j0 = Math.max(0, Math.floor((box[0][1] * s) / sy + (ny - 1) / 2)), j1 = Math.min(ny - 1, Math.ceil((box[1][1] * s) / sy + (ny - 1) / 2));
    const k0 = Math.max(0, Math.floor(((box[0][2] - zCentre) * s) / sz + (nz - 1) / 2)), k1 = Math.min(nz - 1, Math.ceil(((box[1][2] - zCentre) * s) / sz + (nz - 1) / 2));
    for (let k = k0; k <= k1; k++) {
      for (let j = j0; j <= j1; j++) {
        for (let i = i0; i <= i1; i++) {
          const v = k * nxy + j * nx + i;
          const d = depth[v]!;
          if (where === "cavity" ? d <= wall[v]! + 1 : d <= 3) continue;
          const h = fn(X[i]!, Y[j]!, Z[k]!, v);
          if (Number.isNaN(h)) continue;
          hu[v] = h;
          lab[v] = label;
          texAmp[v] = tex;
        }
      }
    }
  }
}

/** The body's outline and the spine's course, which the later organs are placed against. */
interface Body {
  /** Half-axes (adult mm): left-right, antero-posterior. */
  a: number;
  b: number;
  /** A box around the whole body, for paint. */
  box: [Vec3, Vec3];
  /** Vertebral body centre (Y) at Z = 0 and along Z, and its X. */
  spineY0: number;
  spineY: (z: number) => number;
  spineX: number;
}

/** The liver, spleen and stomach shapes, and the lung domes above them. */
interface UpperOrgans {
  liverC: Vec3;
  liverDef: Deform;
  liverMain: Shape;
  leftLobe: Shape;
  rightTip: Shape;
  spleenC: Vec3;
  spleenF: Shape;
  spleenDef: Deform;
  stomC: Vec3;
  stomR: Vec3;
  stomF: Shape;
  stomDef: Deform;
  /** Air above this (in units of the stomach's Y radius). */
  stomLevel: number;
  lungDome: number;
  lungDomeLeft: number;
}

type Shape = (x: number, y: number, z: number) => number;

const around = (c: Vec3, r: number): [Vec3, Vec3] => [[c[0] - r, c[1] - r, c[2] - r], [c[0] + r, c[1] + r, c[2] + r]];
const jit = (rng: Rng, v: number, f: number) => v * (1 + rng.uniform(-f, f));
const shift = (rng: Rng, c: Vec3, d: number): Vec3 => [c[0] + rng.uniform(-d, d), c[1] + rng.uniform(-d, d), c[2] + rng.uniform(-d, d)];

/**
 * One synthetic abdominal CT and its label map, deterministic per seed. Every
 * stage draws from the one generator in a fixed order: reordering stages or
 * draws changes every phantom (and the demo model's held-out scores).
 */
export function generatePhantom(seed: number, opts: PhantomOptions = {}): Phantom {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`generatePhantom: seed must be an integer in [0, 2^32), got ${seed}`);
  checkOptions(opts);
  const rng = new Rng(seed);
  const { canvas, affine, bodyA, bodyB } = frameBody(rng, opts);
  const body = drawBodyWall(rng, canvas, bodyA, bodyB);
  const organs = placeUpperOrgans(rng, body);
  drawThorax(rng, canvas, body, organs);
  drawBackMuscles(rng, canvas, body);
  drawBowel(rng, canvas);
  // Labelled organs, in precedence order (later wins).
  drawLiverSpleenStomach(rng, canvas, organs);
  drawPancreas(rng, canvas, body, organs);
  drawGallbladder(rng, canvas, organs);
  drawKidneys(rng, canvas, body);
  drawGreatVessels(rng, canvas, body);
  drawVertebralColumn(rng, canvas, body);
  const image = addTextureAndNoise(rng, canvas);
  const [nx, ny, nz] = canvas.dims;
  const [sx, sy, sz] = canvas.spacing;
  return { image, labels: canvas.lab, dims: [nx, ny, nz], spacing: [sx, sy, sz], affine };
}

/** The patient's size, the voxel grid and where the patient lies in it. */
function frameBody(rng: Rng, opts: PhantomOptions): { canvas: Canvas; affine: number[][]; bodyA: number; bodyB: number } {
  // Body half-axes (adult mm) and how much of the FOV the body fills.
  const bodyA = rng.uniform(150, 175);
  const bodyB = bodyA * rng.uniform(0.66, 0.78);
  const fill = rng.uniform(0.8, 0.92);
  const { dims, spacing } = chooseGrid(rng, opts, (fovHalf) => (fovHalf * fill) / bodyA);
  const [nx, ny, nz] = dims;
  const [sx, sy, sz] = spacing;
  const s = (Math.min(nx * sx, ny * sy) / 2) * fill / bodyA; // world mm per adult mm
  // Patient slightly off-centre; the volume's Z window slides along the body.
  const offX = rng.uniform(-0.04, 0.04) * nx * sx;
  const offY = rng.uniform(-0.06, 0.02) * ny * sy;
  const zCentre = rng.uniform(0, 40); // adult mm at the volume's middle slice
  const origin: Vec3 = [-(nx - 1) / 2 * sx + offX, -(ny - 1) / 2 * sy + offY, -(nz - 1) / 2 * sz + zCentre * s];
  const affine = [
    [sx, 0, 0, origin[0]],
    [0, sy, 0, origin[1]],
    [0, 0, sz, origin[2]],
    [0, 0, 0, 1],
  ];
  // Adult-mm coordinate of each index (body centred at world (offX, offY)).
  const X = Float64Array.from({ length: nx }, (_, i) => ((i - (nx - 1) / 2) * sx) / s);
  const Y = Float64Array.from({ length: ny }, (_, j) => ((j - (ny - 1) / 2) * sy) / s);
  const Z = Float64Array.from({ length: nz }, (_, k) => ((k - (nz - 1) / 2) * sz) / s + zCentre);
  return { canvas: new Canvas(dims, spacing, s, zCentre, X, Y, Z), affine, bodyA, bodyB };
}

/** Body: superellipse cross-section varying along Z, skin/fat/muscle layers; also places the spine. */
function drawBodyWall(rng: Rng, canvas: Canvas, bodyA: number, bodyB: number): Body {
  const p = rng.uniform(2.0, 2.5);
  const bodyWave = [rng.uniform(0.02, 0.06), rng.uniform(0, 6.3), rng.uniform(250, 450)];
  const fatT = rng.uniform(8, 28); // subcutaneous fat thickness
  const fatAnt = rng.uniform(1.0, 1.6); // thicker anteriorly
  const muscleT = rng.uniform(7, 12);
  const backFlat = rng.uniform(0.82, 0.92);
  const spineY0 = -bodyB * backFlat + rng.uniform(72, 82); // vertebral body centre, 7-8 cm in front of the back skin
  const lordosis = [rng.uniform(4, 10), rng.uniform(0, 6.3)];
  const spineY = (z: number) => spineY0 + lordosis[0]! * Math.sin(z / 160 + lordosis[1]!);
  const spineX = rng.uniform(-4, 4);
  const [nx, ny, nz] = canvas.dims;
  const { nxy, X, Y, Z, hu, depth, wall, texAmp } = canvas;
  for (let k = 0; k < nz; k++) {
    const z = Z[k]!;
    const g = 1 + bodyWave[0]! * Math.sin((2 * Math.PI * z) / bodyWave[2]! + bodyWave[1]!);
    const a = bodyA * g, bAnt = bodyB * g, bPost = bodyB * g * backFlat;
    for (let j = 0; j < ny; j++) {
      const y = Y[j]!;
      const b = y >= 0 ? bAnt : bPost;
      for (let i = 0; i < nx; i++) {
        const x = X[i]!;
        const r = Math.hypot(x, y) || 1e-6;
        const c = Math.abs(x) / r, sn = Math.abs(y) / r;
        const R = (Math.pow(c / a, p) + Math.pow(sn / b, p)) ** (-1 / p);
        const d = R - r;
        const v = k * nxy + j * nx + i;
        depth[v] = d;
        const fat = fatT * (y > 0 ? 1 + (fatAnt - 1) * sn : 1);
        wall[v] = 2 + fat + muscleT;
        if (d < 0) { hu[v] = -1000; texAmp[v] = 0; }
        else if (d < 2) { hu[v] = 20; texAmp[v] = 4; }
        else if (d < 2 + fat) { hu[v] = -105; texAmp[v] = 6; }
        else if (d < 2 + fat + muscleT) { hu[v] = 45; texAmp[v] = 6; }
        else { hu[v] = -90; texAmp[v] = 10; } // intra-abdominal fat
      }
    }
  }
  const box: [Vec3, Vec3] = [[-bodyA * 1.1, -bodyB * 1.1, -1e4], [bodyA * 1.1, bodyB * 1.1, 1e4]];
  return { a: bodyA, b: bodyB, box, spineY0, spineY, spineX };
}

/** Organ placement, drawn before the lungs are painted so that they can sit above the liver dome. */
function placeUpperOrgans(rng: Rng, body: Body): UpperOrgans {
  const { spineY0 } = body;
  const liverC = shift(rng, [72, spineY0 + 28, 62], 8);
  const liverR: Vec3 = [jit(rng, 68, 0.12), jit(rng, 80, 0.1), jit(rng, 78, 0.15)];
  const liverTop = liverC[2] + liverR[2] * 0.95;
  const liverDef = new Deform(rng, 9);
  const liverMain = ellipsoid(liverC, liverR, rng.uniform(-0.2, 0.1), rng.uniform(-0.15, 0.15));
  const leftLobe = ellipsoid([liverC[0] - 85 + rng.uniform(-10, 10), liverC[1] + 38, liverC[2] + 22], [jit(rng, 55, 0.2), jit(rng, 28, 0.2), jit(rng, 34, 0.2)], rng.uniform(-0.2, 0.2));
  const rightTip = ellipsoid([liverC[0] + 22, liverC[1] - 18, liverC[2] - 70], [jit(rng, 38, 0.15), jit(rng, 45, 0.15), jit(rng, 50, 0.2)]);

  const spleenC = shift(rng, [-92, spineY0 - 12, 68], 8);
  const spleenR: Vec3 = [jit(rng, 26, 0.15), jit(rng, 52, 0.15), jit(rng, 48, 0.2)];
  const spleenF = ellipsoid(spleenC, spleenR, rng.uniform(0.5, 0.8));
  const spleenDef = new Deform(rng, 6);

  const stomC = shift(rng, [-52, spineY0 + 68, 92], 8);
  const stomR: Vec3 = [jit(rng, 42, 0.15), jit(rng, 36, 0.15), jit(rng, 50, 0.2)];
  const stomF = ellipsoid(stomC, stomR, rng.uniform(-0.6, -0.2), rng.uniform(-0.3, 0.3));
  const stomDef = new Deform(rng, 7);
  const stomLevel = rng.uniform(-0.2, 0.6);

  const lungDome = liverTop + rng.uniform(2, 10);
  const lungDomeLeft = Math.max(stomC[2] + stomR[2], spleenC[2] + spleenR[2]) + rng.uniform(2, 10);
  return { liverC, liverDef, liverMain, leftLobe, rightTip, spleenC, spleenF, spleenDef, stomC, stomR, stomF, stomDef, stomLevel, lungDome, lungDomeLeft };
}

/** Lungs (bases) and heart above the diaphragm, ribs along the wall. */
function drawThorax(rng: Rng, canvas: Canvas, body: Body, organs: UpperOrgans): void {
  const { lungDome, lungDomeLeft } = organs;
  const { spineX, spineY } = body;
  const { hu, texAmp, depth, wall } = canvas;
  const heart = ellipsoid([-15, 35, Math.max(lungDome, lungDomeLeft) + 65], [65, 50, 55]);
  canvas.paint(body.box, 0, 8, (x, y, z, v) => {
    const dome = (x > 0 ? lungDome : lungDomeLeft) - 0.004 * (Math.abs(x) - 70) ** 2 - 0.003 * (y + 30) ** 2;
    if (z < dome) return NaN;
    if (heart(x, y, z) <= 1) return 40;
    if (Math.abs(x - spineX) < 30 && y > spineY(z) - 30) return hu[v]!; // mediastinum: keep the fat
    texAmp[v] = 25;
    return -850;
  });
  // Ribs: small bone ovals just inside the muscle wall, in oblique bands.
  const ribPhase = rng.uniform(0, 40);
  canvas.paint(body.box, 0, 20, (x, y, z, v) => {
    if (z < 20 && !(z > -30 && Math.abs(x) > body.a * 0.55)) return NaN;
    const d = depth[v]! - wall[v]!;
    if (d > 7 || d < -1) return NaN;
    const theta = Math.atan2(y, Math.abs(x));
    if (theta > 0.75) return NaN; // not in front of the abdomen
    const band = (((z + ribPhase + 70 * theta) % 38) + 38) % 38;
    return band < 10 ? 650 : NaN;
  }, "body");
}

/** Back muscles and psoas (unlabelled). */
function drawBackMuscles(rng: Rng, canvas: Canvas, body: Body): void {
  const { spineX, spineY } = body;
  const paraR = rng.uniform(22, 30);
  canvas.paint(body.box, 0, 6, (x, y, z) => {
    const sy0 = spineY(z);
    for (const side of [-1, 1]) {
      if (((x - spineX - side * 32) / paraR) ** 2 + ((y - sy0 + 40) / 22) ** 2 <= 1) return 50;
    }
    const psoasR = clamp(6 + (25 - z) * 0.15, 0, 24);
    if (psoasR > 3) {
      for (const side of [-1, 1]) {
        if (((x - spineX - side * (28 + psoasR * 0.5)) / psoasR) ** 2 + ((y - sy0 - 2) / (psoasR * 0.9)) ** 2 <= 1) return 50;
      }
    }
    return NaN;
  }, "body");
}

/** Bowel loops (unlabelled): walls, fluid, gas, below the liver and stomach. */
function drawBowel(rng: Rng, canvas: Canvas): void {
  const nLoops = rng.int(14, 26);
  for (let b = 0; b < nLoops; b++) {
    const c: Vec3 = [rng.uniform(-110, 110), rng.uniform(-20, 80), rng.uniform(-160, 40)];
    const r = rng.uniform(12, 24);
    const gas = rng.chance(0.35);
    const f = ellipsoid(c, [r, r * rng.uniform(0.7, 1.1), r * rng.uniform(0.8, 1.6)], rng.uniform(0, 3.14));
    const inner = (1 - 3 / r) ** 2;
    canvas.paint(around(c, r * 1.7), 0, 10, (x, y, z) => {
      const e = f(x, y, z);
      if (e > 1) return NaN;
      if (e > inner) return 40;
      return gas && y > c[1] ? -1000 : 15;
    });
  }
}

/** The liver (three lobes), the spleen and the stomach (wall, fluid, an air cap). */
function drawLiverSpleenStomach(rng: Rng, canvas: Canvas, o: UpperOrgans): void {
  const q = new Float64Array(3);
  const liverHU = rng.uniform(52, 68);
  const { liverC, stomC, stomR } = o;
  canvas.paint([[liverC[0] - 200, liverC[1] - 110, liverC[2] - 170], [liverC[0] + 120, liverC[1] + 110, liverC[2] + 110]], L.liver!, 8, (x, y, z) => {
    o.liverDef.apply(x, y, z, q);
    const e = Math.min(o.liverMain(q[0]!, q[1]!, q[2]!), o.leftLobe(q[0]!, q[1]!, q[2]!), o.rightTip(q[0]!, q[1]!, q[2]!));
    return e <= 1 ? liverHU : NaN;
  });
  const spleenHU = rng.uniform(45, 55);
  canvas.paint(around(o.spleenC, 80), L.spleen!, 7, (x, y, z) => {
    o.spleenDef.apply(x, y, z, q);
    return o.spleenF(q[0]!, q[1]!, q[2]!) <= 1 ? spleenHU : NaN;
  });
  const stomInner = (1 - 5 / Math.min(...stomR)) ** 2;
  const fluidHU = rng.uniform(5, 25);
  canvas.paint(around(stomC, 80), L.stomach!, 6, (x, y, z) => {
    o.stomDef.apply(x, y, z, q);
    const e = o.stomF(q[0]!, q[1]!, q[2]!);
    if (e > 1) return NaN;
    if (e > stomInner) return 42;
    return q[1]! > stomC[1] + o.stomLevel * stomR[1] ? -1000 : fluidHU;
  });
}

/** Pancreas: a tube along a curve from the head (right of the aorta) to the tail (at the splenic hilum). */
function drawPancreas(rng: Rng, canvas: Canvas, body: Body, organs: UpperOrgans): void {
  const q = new Float64Array(3);
  const { spineY0 } = body;
  const { spleenC } = organs;
  const pts: Vec3[] = [];
  const P0 = shift(rng, [30, spineY0 + 34, -2], 6), P1 = shift(rng, [-8, spineY0 + 52, 14], 6), P2: Vec3 = [spleenC[0] + 25, spleenC[1] + 28, spleenC[2] - 30];
  for (let t = 0; t <= 16; t++) {
    const u = t / 16;
    pts.push([0, 1, 2].map((a) => (1 - u) ** 2 * P0[a]! + 2 * u * (1 - u) * P1[a]! + u * u * P2[a]!) as Vec3);
  }
  const panR = [jit(rng, 16, 0.15), jit(rng, 10, 0.15)];
  const panDef = new Deform(rng, 4);
  const panHU = rng.uniform(38, 50);
  const panBox: [Vec3, Vec3] = [
    [Math.min(P0[0], P2[0]) - 30, Math.min(P0[1], P1[1], P2[1]) - 30, Math.min(P0[2], P2[2]) - 30],
    [Math.max(P0[0], P2[0]) + 30, Math.max(P0[1], P1[1], P2[1]) + 30, Math.max(P1[2], P2[2]) + 30],
  ];
  canvas.paint(panBox, L.pancreas!, 14, (x, y, z) => {
    panDef.apply(x, y, z, q);
    for (let t = 0; t < pts.length; t++) {
      const c = pts[t]!;
      const r = panR[0]! + ((panR[1]! - panR[0]!) * t) / (pts.length - 1);
      if ((q[0]! - c[0]) ** 2 + (q[1]! - c[1]) ** 2 + ((q[2]! - c[2]) / 1.3) ** 2 <= r * r) return panHU;
    }
    return NaN;
  });
}

/** The gallbladder, under the liver. */
function drawGallbladder(rng: Rng, canvas: Canvas, organs: UpperOrgans): void {
  const { liverC } = organs;
  const gbC: Vec3 = [liverC[0] - 25 + rng.uniform(-8, 8), liverC[1] + 48, liverC[2] - 55 + rng.uniform(-10, 10)];
  const gbF = ellipsoid(gbC, [jit(rng, 14, 0.2), jit(rng, 15, 0.2), jit(rng, 34, 0.2)], 0, rng.uniform(-0.5, 0.1));
  const gbHU = rng.uniform(0, 20);
  canvas.paint(around(gbC, 45), L.gallbladder!, 4, (x, y, z) => (gbF(x, y, z) <= 1 ? gbHU : NaN));
}

/** Kidneys: bean-shaped (a hilar notch facing anteromedially), the right one lower. */
function drawKidneys(rng: Rng, canvas: Canvas, body: Body): void {
  const q = new Float64Array(3);
  const { spineY0 } = body;
  const kidneyHU = rng.uniform(28, 38);
  for (const side of [-1, 1] as const) {
    const c = shift(rng, [side * 62, spineY0 - 8, side < 0 ? 0 : -22], 6);
    const r: Vec3 = [jit(rng, 24, 0.12), jit(rng, 28, 0.12), jit(rng, 54, 0.12)];
    const rot = side * rng.uniform(0.4, 0.7);
    const f = ellipsoid(c, r, rot, side * rng.uniform(0.1, 0.25));
    // Hilum: a sphere on the medial-anterior side.
    const hc: Vec3 = [c[0] - side * r[0] * 0.95, c[1] + r[1] * 0.35, c[2]];
    const hr = r[0] * 0.62;
    const def = new Deform(rng, 4);
    canvas.paint(around(c, 75), side < 0 ? L["left kidney"]! : L["right kidney"]!, 6, (x, y, z) => {
      def.apply(x, y, z, q);
      const e = f(q[0]!, q[1]!, q[2]!);
      if (e > 1) return NaN;
      if ((q[0]! - hc[0]) ** 2 + (q[1]! - hc[1]) ** 2 + ((q[2]! - hc[2]) * 0.6) ** 2 < hr * hr) return NaN;
      return e > 0.45 ? kidneyHU : kidneyHU - 12; // cortex / medulla
    });
  }
}

/** Great vessels along the spine, contrast-enhanced (portal venous phase), and the iliac arteries below the bifurcation. */
function drawGreatVessels(rng: Rng, canvas: Canvas, body: Body): void {
  const { spineX, spineY } = body;
  const aortaHU = rng.uniform(150, 230), ivcHU = rng.uniform(100, 150);
  const aortaR = jit(rng, 11.5, 0.15), bif = rng.uniform(-150, -120);
  const ivcR = [jit(rng, 13, 0.15), jit(rng, 9, 0.15)];
  canvas.paint(body.box, L["inferior vena cava"]!, 6, (x, y, z) => {
    const cy = spineY(z) + 38 + Math.max(0, z) * 0.18;
    const cx = spineX + 24 + Math.max(0, z) * 0.08;
    return z > bif - 15 && ((x - cx) / ivcR[0]!) ** 2 + ((y - cy) / ivcR[1]!) ** 2 <= 1 ? ivcHU : NaN;
  }, "body");
  canvas.paint(body.box, L.aorta!, 6, (x, y, z) => {
    if (z < bif) return NaN;
    return (x - spineX + 12) ** 2 + (y - spineY(z) - 32) ** 2 <= aortaR * aortaR ? aortaHU : NaN;
  }, "body");
  // Common iliac arteries (unlabelled): two tubes diverging below the bifurcation.
  canvas.paint(body.box, 0, 6, (x, y, z) => {
    if (z >= bif) return NaN;
    for (const side of [-1, 1]) {
      const cx = spineX - 12 + side * (bif - z) * 0.5;
      if ((x - cx) ** 2 + (y - spineY(z) - 32) ** 2 <= (aortaR * 0.7) ** 2) return aortaHU;
    }
    return NaN;
  });
}

/**
 * Vertebral column: bodies (cortical shell, cancellous core) and posterior
 * elements stacked along Z; discs and the spinal canal are unlabelled.
 */
function drawVertebralColumn(rng: Rng, canvas: Canvas, body: Body): void {
  const { spineX, spineY } = body;
  const period = rng.uniform(34, 40), discT = rng.uniform(7, 10), vPhase = rng.uniform(0, period);
  const vbR = [jit(rng, 23, 0.1), jit(rng, 16, 0.1)];
  const cortexHU = rng.uniform(750, 950), cancHU = rng.uniform(300, 420);
  canvas.paint(body.box, L["vertebral column"]!, 20, (x, y, z) => {
    const sy0 = spineY(z);
    const dx = x - spineX, dy = y - sy0;
    const ph = (((z + vPhase) % period) + period) % period;
    const inDisc = ph < discT;
    const endDist = Math.min(ph - discT, period - ph); // distance to the nearest end plate
    const eb = (dx / vbR[0]!) ** 2 + (dy / vbR[1]!) ** 2;
    if (eb <= 1) {
      if (inDisc) return NaN;
      return eb > 0.78 || endDist < 2 ? cortexHU : cancHU;
    }
    if (inDisc) return NaN;
    // Canal behind the body; neural arch around it; spinous and transverse processes.
    const cyc = -vbR[1]! - 10;
    const rc = Math.hypot(dx, dy - cyc);
    if (rc < 9) return NaN;
    if (rc < 15 && dy < cyc + 6) return cortexHU * 0.8;
    if (Math.abs(dx) < 4.5 && dy < cyc - 9 && dy > cyc - 38) return cortexHU * 0.8;
    if (Math.abs(dy - cyc - 2) < 4.5 && Math.abs(dx) > 9 && Math.abs(dx) < 34 && ph > discT + 8 && ph < period - 8) return cortexHU * 0.8;
    return NaN;
  }, "body");
  canvas.paint(body.box, 0, 6, (x, y, z) => {
    // Discs and the spinal canal contents, drawn where the column left gaps.
    const sy0 = spineY(z);
    const dx = x - spineX, dy = y - sy0;
    const ph = (((z + vPhase) % period) + period) % period;
    if (ph < discT && (dx / vbR[0]!) ** 2 + (dy / vbR[1]!) ** 2 <= 1) return 85;
    if (Math.hypot(dx, dy + vbR[1]! + 10) < 9) return 15;
    return NaN;
  }, "body");
}

/** The CT image: the painted HU plus tissue texture (smooth value noise) and CT noise, in int16. */
function addTextureAndNoise(rng: Rng, canvas: Canvas): Int16Array {
  const { dims, hu, texAmp, depth } = canvas;
  const [sx, sy, sz] = canvas.spacing;
  const noiseSd = rng.uniform(10, 20);
  const tex = valueNoise(rng, dims, [Math.max(1, Math.round(5 / sx)), Math.max(1, Math.round(5 / sy)), Math.max(1, Math.round(5 / sz))]);
  const N = hu.length;
  const image = new Int16Array(N);
  for (let v = 0; v < N; v++) {
    let h = hu[v]! + texAmp[v]! * tex[v]!;
    if (depth[v]! >= 0) h += noiseSd * gauss(rng);
    else h += 8 * gauss(rng); // air is quieter after the reconstruction's clipping
    image[v] = Math.round(clamp(h, -1024, 3071));
  }
  return image;
}

/** Standard normal (Box-Muller, one value per call; the pair's twin is dropped for simplicity). */
function gauss(rng: Rng): number {
  const u = 1 - rng.float();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.float());
}

/** Zero-mean, unit-ish smooth noise: uniform values on a coarse lattice (step voxels per axis), trilinearly interpolated. */
function valueNoise(rng: Rng, dims: Vec3, step: Vec3): Float32Array {
  const g = dims.map((d, a) => Math.floor((d - 1) / step[a]!) + 2) as Vec3;
  const lat = new Float32Array(g[0] * g[1] * g[2]);
  for (let t = 0; t < lat.length; t++) lat[t] = (rng.float() - 0.5) * 3.4; // sd ≈ 1
  const out = new Float32Array(dims[0] * dims[1] * dims[2]);
  let v = 0;
  for (let k = 0; k < dims[2]; k++) {
    const fk = k / step[2], k0 = Math.floor(fk), wk = fk - k0;
    for (let j = 0; j < dims[1]; j++) {
      const fj = j / step[1], j0 = Math.floor(fj), wj = fj - j0;
      for (let i = 0; i < dims[0]; i++, v++) {
        const fi = i / step[0], i0 = Math.floor(fi), wi = fi - i0;
        const o = (k0 * g[1] + j0) * g[0] + i0;
        const a = lat[o]! * (1 - wi) + lat[o + 1]! * wi;
        const b = lat[o + g[0]]! * (1 - wi) + lat[o + g[0] + 1]! * wi;
        const o2 = o + g[0] * g[1];
        const c = lat[o2]! * (1 - wi) + lat[o2 + 1]! * wi;
        const d = lat[o2 + g[0]]! * (1 - wi) + lat[o2 + g[0] + 1]! * wi;
        out[v] = (a * (1 - wj) + b * wj) * (1 - wk) + (c * (1 - wj) + d * wj) * wk;
      }
    }
  }
  return out;
}

/**
 * The label map restricted to some organs, renumbered 1..K in the order
 * given (other organs become background), so that `segvol train
 * --categories a,b,c` (label values 1..K) can train on a subset.
 */
export function selectLabels(labels: Uint8Array, names: readonly string[]): Uint8Array {
  const map = new Uint8Array(256);
  const seen = new Set<string>();
  names.forEach((n, k) => {
    const l = PHANTOM_LABELS.indexOf(n);
    if (l < 1) throw new Error(`phantom labels: unknown organ "${n}"; known: ${PHANTOM_LABELS.slice(1).join(", ")}`);
    if (seen.has(n)) throw new Error(`phantom labels: "${n}" given twice`);
    seen.add(n);
    map[l] = k + 1;
  });
  const out = new Uint8Array(labels.length);
  for (let v = 0; v < labels.length; v++) out[v] = map[labels[v]!]!;
  return out;
}

/** MSD `dataset.json` contents: label names (index = value) and the cases. */
export function phantomDatasetJson(cases: readonly string[], labelNames: readonly string[] = PHANTOM_LABELS.slice(1)): string {
  return JSON.stringify({
    name: "segvol-phantoms",
    description: "Synthetic abdominal CT phantoms (segvol phantom); labels are exactly what was drawn",
    modality: { "0": "CT" },
    labels: Object.fromEntries(["background", ...labelNames].map((n, i) => [String(i), n])),
    numTraining: cases.length,
    training: cases.map((n) => ({ image: `./imagesTr/${n}.nii.gz`, label: `./labelsTr/${n}.nii.gz` })),
  }, null, 2) + "\n";
}

export interface WritePhantomOptions extends PhantomOptions {
  /** Organs to keep in the label file, renumbered 1..K in this order (default: all of PHANTOM_LABELS). */
  labels?: readonly string[];
}

/**
 * Generates phantom `seed` and writes DIR/imagesTr/phantom_<seed>.nii.gz
 * (int16 HU) and DIR/labelsTr/phantom_<seed>.nii.gz (uint8 labels), then
 * rewrites DIR/dataset.json listing the label names and every phantom now in
 * the folder (earlier runs with other seeds included). Returns the case name
 * and the phantom (its labels as drawn, all organs; for previews without
 * generating it twice).
 */
export function writePhantom(dir: string, seed: number, opts: WritePhantomOptions = {}): { name: string; phantom: Phantom } {
  const names = opts.labels ?? PHANTOM_LABELS.slice(1);
  if (names.length === 0) throw new Error("writePhantom: labels must name at least one organ");
  // One folder, one label numbering: refuse to mix selections.
  const dsPath = join(dir, "dataset.json");
  if (existsSync(dsPath)) {
    let had: unknown;
    try {
      had = (JSON.parse(readFileSync(dsPath, "utf8")) as { labels?: unknown }).labels;
    } catch {
      throw new Error(`writePhantom: ${dsPath} exists but is not JSON; use another folder`);
    }
    const want = Object.fromEntries(["background", ...names].map((n, i) => [String(i), n]));
    if (JSON.stringify(had) !== JSON.stringify(want)) {
      throw new Error(`writePhantom: ${dsPath} has labels ${JSON.stringify(had)} but this run writes ${JSON.stringify(want)}; use another folder`);
    }
  }
  const ph = generatePhantom(seed, opts);
  const labels = opts.labels ? selectLabels(ph.labels, names) : ph.labels;
  const imgDir = join(dir, "imagesTr"), labDir = join(dir, "labelsTr");
  mkdirSync(imgDir, { recursive: true });
  mkdirSync(labDir, { recursive: true });
  const name = `phantom_${seed}`;
  const geometry = niftiFromArray(ph.dims, Float32Array.from(ph.image), { affine: ph.affine, datatype: "int16" });
  writeNifti(join(imgDir, `${name}.nii.gz`), geometry, ph.image, "int16", { descrip: `segvol phantom seed ${seed}` });
  writeNifti(join(labDir, `${name}.nii.gz`), geometry, labels, "uint8", { descrip: `segvol phantom labels seed ${seed}` });
  writeFileAtomic(join(dir, "dataset.json"), Buffer.from(phantomDatasetJson(existingPhantoms(imgDir, labDir), names)), { what: "writePhantom" });
  return { name, phantom: ph };
}

function existingPhantoms(imgDir: string, labDir: string): string[] {
  return readdirSync(imgDir)
    .filter((f) => /^phantom_\d+\.nii\.gz$/.test(f) && existsSync(join(labDir, f)))
    .map((f) => f.replace(/\.nii\.gz$/, ""))
    .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)));
}
