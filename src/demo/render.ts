// Slice images of a CT volume with masks overlaid: axial, coronal and
// sagittal planes through given voxel indices (by default the masks' joint
// centre, `centreSlices`), side by side, resampled to square display pixels,
// with a legend drawn in the built-in bitmap font, as PNG bytes. A box prompt
// is drawn as its outline on each plane (the box projected onto the plane:
// solid where the plane cuts the box, dashed where the box lies off it), and
// point prompts as markers where they project onto each plane (a plus for a
// positive point, a cross for a negative one, in different colours; solid
// on the point's own plane, hollow on the others), so that a picture shows
// the prompt beside the mask it produced.
//
// Orientation (radiological conventions, as clinical viewers show CT):
//   axial    — seen from the feet: patient's right on the image's left,
//              anterior at the top;
//   coronal  — seen from the front: patient's right on the image's left,
//              superior at the top;
//   sagittal — seen from the patient's left: anterior on the image's left,
//              superior at the top.
// Which array axis points where comes from `affine` (voxel → RAS world, as
// NiftiVolume.affine); the default diag(spacing) means i → patient's right,
// j → anterior, k → superior (the phantoms' layout). Each array axis is
// matched to the world axis it mostly follows (oblique scans are shown
// axis-aligned).
import { PNG } from "pngjs";
import { writeFileAtomic } from "../io/atomic.js";
import { drawText, GLYPH_H, textWidth } from "../image/font.js";

export type Rgb = [number, number, number];
export type Vec3 = [number, number, number];

export interface RenderMask {
  name: string;
  /** One byte per voxel (non-zero = inside), i fastest. */
  mask: Uint8Array;
  color?: Rgb;
}

export interface RenderOptions {
  image: Float32Array | Int16Array;
  dims: [number, number, number];
  spacing: [number, number, number];
  masks: RenderMask[];
  /** HU window [low, high] mapped to black..white (default [-160, 240], abdomen). */
  window?: [number, number];
  title?: string;
  /** Voxel → RAS world 4×4 (default diag(spacing)): only its axis directions are used. */
  affine?: number[][];
  /** Longest panel side in pixels (default 300). */
  panelSize?: number;
  /** Voxel indices (i, j, k) of the planes shown: each panel fixes its own array axis at its index (default centreSlices(masks)). */
  slices?: Vec3;
  /** A box prompt, inclusive voxel indices (i0, j0, k0, i1, j1, k1). */
  box?: readonly [number, number, number, number, number, number];
  /** Point prompts: voxel indices (i, j, k); label 1 positive, 0 negative. */
  points?: readonly { ijk: Vec3; label: 0 | 1 }[];
}

/** Distinct overlay colours, used in order for masks without a colour. */
export const PALETTE: readonly Rgb[] = [
  [230, 60, 60], [60, 180, 75], [255, 200, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40],
];

/** Prompt colours: none is in PALETTE, so a prompt never looks like a mask. */
export const BOX_COLOR: Rgb = [0, 255, 255];
export const POSITIVE_COLOR: Rgb = [0, 255, 0];
export const NEGATIVE_COLOR: Rgb = [255, 0, 255];
/** Box outline width and marker half-size, in display pixels. */
const BOX_LINE = 2;
const MARKER_R = 5;
/** Dash length of a box outline whose box the plane does not cut. */
const DASH = 4;

const ALPHA = 0.4;
const BG: Rgb = [16, 16, 16];
const FG: Rgb = [235, 235, 235];

interface Axes {
  /** For world axis w (0 = x right, 1 = y anterior, 2 = z superior): the array axis along it, and +1/−1 whether index grows with w. */
  axis: [number, number, number];
  sign: [number, number, number];
}

function axesOf(affine: number[][], op: string): Axes {
  const axis: number[] = [], sign: number[] = [];
  const used = new Set<number>();
  for (let w = 0; w < 3; w++) {
    let best = -1, bestV = 0;
    for (let a = 0; a < 3; a++) {
      const v = Math.abs(affine[w]?.[a] ?? 0);
      if (!used.has(a) && v > bestV) { best = a; bestV = v; }
    }
    if (best < 0) throw new Error(`${op}: affine ${JSON.stringify(affine)} does not map the three array axes to three world axes`);
    used.add(best);
    axis.push(best);
    sign.push(Math.sign(affine[w]![best]!));
  }
  return { axis: axis as Axes["axis"], sign: sign as Axes["sign"] };
}

function check(o: RenderOptions, op: string): void {
  const [a, b, c] = o.dims;
  if (o.dims.length !== 3 || !o.dims.every((d) => Number.isInteger(d) && d >= 1)) throw new Error(`${op}: dims must be three positive integers, got ${JSON.stringify(o.dims)}`);
  const n = a * b * c;
  if (o.image.length !== n) throw new Error(`${op}: image has ${o.image.length} values but dims ${o.dims.join("×")} need ${n}`);
  if (o.spacing.length !== 3 || !o.spacing.every((s) => Number.isFinite(s) && s > 0)) throw new Error(`${op}: spacing must be three positive numbers, got ${JSON.stringify(o.spacing)}`);
  for (const m of o.masks) {
    if (m.mask.length !== n) throw new Error(`${op}: mask "${m.name}" has ${m.mask.length} values but dims ${o.dims.join("×")} need ${n}`);
  }
  if (o.window && !(o.window.length === 2 && o.window[0] < o.window[1])) throw new Error(`${op}: window must be [low, high] with low < high, got ${JSON.stringify(o.window)}`);
  if (o.affine && (o.affine.length < 3 || o.affine.some((r) => r.length < 3))) throw new Error(`${op}: affine must be 4×4`);
  const inVolume = (p: readonly number[]) => p.length === 3 && p.every((x, a) => Number.isInteger(x) && x >= 0 && x < o.dims[a]!);
  if (o.slices && !inVolume(o.slices)) throw new Error(`${op}: slices must be three voxel indices inside dims ${o.dims.join("×")}, got ${JSON.stringify(o.slices)}`);
  if (o.box && !(o.box.length === 6 && inVolume(o.box.slice(0, 3)) && inVolume(o.box.slice(3)) && [0, 1, 2].every((a) => o.box![a]! <= o.box![a + 3]!))) {
    throw new Error(`${op}: box must be (i0, j0, k0, i1, j1, k1) inside dims ${o.dims.join("×")} with each min ≤ max, got ${JSON.stringify(o.box)}`);
  }
  for (const pt of o.points ?? []) {
    if (!inVolume(pt.ijk) || (pt.label !== 0 && pt.label !== 1)) throw new Error(`${op}: point ${JSON.stringify(pt)} must have voxel indices inside dims ${o.dims.join("×")} and label 0 or 1`);
  }
}

/**
 * The voxel (i, j, k) whose planes the pictures show: the joint centroid of
 * all the masks, rounded, or the middle voxel when no mask has a voxel. One
 * function, so that pictures meant to be compared can share their planes.
 */
export function centreSlices(masks: readonly Uint8Array[], dims: Vec3): Vec3 {
  const [nx, ny, nz] = dims;
  const sum = [0, 0, 0];
  let cnt = 0;
  for (let v = 0; v < nx * ny * nz; v++) {
    if (!masks.some((m) => m[v] !== 0)) continue;
    cnt++;
    sum[0] += v % nx;
    sum[1] += Math.floor(v / nx) % ny;
    sum[2] += Math.floor(v / (nx * ny));
  }
  const centre = cnt > 0 ? sum.map((x) => x / cnt) : dims.map((n) => (n - 1) / 2);
  return centre.map((x) => Math.round(x)) as Vec3;
}

/** A panel: its pixel grid and, per pixel, the voxel index shown (nearest) and the image value (bilinear). */
interface Panel {
  name: string;
  w: number;
  h: number;
  gray: Uint8Array;
  voxel: Int32Array;
  /** Orientation letters at the left, right, top and bottom edges. */
  edges: [string, string, string, string];
  /** Array axes along the panel's width and height, the fixed one and its index. */
  au: number;
  av: number;
  af: number;
  fixed: number;
  /** The pixel position (continuous) of the centre of the voxel at indices iu along au, iv along av. */
  screen: (iu: number, iv: number) => [number, number];
}

/** What the panels are cut from: the volume, how its axes map to the world, and the display scale. */
interface PlaneSource {
  image: Float32Array | Int16Array;
  dims: Vec3;
  strides: Vec3;
  /** World axis → array axis and direction (axesOf). */
  axis: Axes["axis"];
  sign: Axes["sign"];
  /** Voxel indices of the planes shown. */
  slices: Vec3;
  /** World extent (mm) along each world axis, and the display pixel size (mm). */
  ext: number[];
  pix: number;
  /** HU window mapped to black..white. */
  lo: number;
  hi: number;
}

/** Layout constants: margin, gap between panels, font scale, legend swatch size. */
const M = 10, GAP = 10, S = 2, SW = 14;
const LINE_H = GLYPH_H * S + 6;

/** A legend entry: its name and how to draw its swatch with its top-left corner at (x, y). */
interface LegendItem {
  name: string;
  swatch: (x: number, y: number, put: Put) => void;
}

type Put = (x: number, y: number, c: Rgb, a?: number) => void;

/** The RGBA picture being drawn: a background fill, then `put` blends colours onto it. */
class Picture {
  readonly png: PNG;
  constructor(readonly width: number, readonly height: number) {
    this.png = new PNG({ width, height });
    const px = this.png.data;
    for (let t = 0; t < width * height; t++) px.set([BG[0], BG[1], BG[2], 255], t * 4);
  }

  readonly put: Put = (x, y, c, a = 1) => {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const px = this.png.data;
    const t = (y * this.width + x) * 4;
    for (let ch = 0; ch < 3; ch++) px[t + ch] = Math.round(px[t + ch]! * (1 - a) + c[ch]! * a);
  };

  text(s: string, x: number, y: number, c: Rgb = FG): void {
    drawText(s, x, y, S, (a, b) => this.put(a, b, c));
  }
}

/** Renders the three planes with the masks to PNG bytes. */
export function renderSlices(o: RenderOptions): Uint8Array {
  const op = "renderSlices";
  check(o, op);
  const panels = makePanels(o, op);
  const colors = o.masks.map((m, n) => m.color ?? PALETTE[n % PALETTE.length]!);
  const legend = legendItems(o, colors);

  // Layout: title, panels in a row with their names, legend rows.
  const titleH = o.title ? LINE_H + 4 : 0;
  const panelsW = panels.reduce((a, p) => a + p.w, 0) + GAP * (panels.length - 1);
  const panelsH = Math.max(...panels.map((p) => p.h));
  const width = Math.max(panelsW + 2 * M, textWidth(o.title ?? "", S) + 2 * M);
  const { items, rowsH } = flowLegend(legend, width);
  const legendTop = M + titleH + panelsH + 4 + LINE_H + 6;
  const height = legendTop + rowsH + M;

  const pic = new Picture(width, height);
  if (o.title) pic.text(o.title, M, M);
  let x0 = M;
  for (const p of panels) {
    drawPanel(pic, p, o, colors, x0, M + titleH);
    pic.text(p.name, x0, M + titleH + panelsH + 6);
    x0 += p.w + GAP;
  }
  legend.forEach((it, n) => {
    const { x, y } = items[n]!;
    it.swatch(x, legendTop + y, pic.put);
    pic.text(it.name, x + SW + 6, legendTop + y);
  });
  return new Uint8Array(PNG.sync.write(pic.png));
}

/** The axial, coronal and sagittal panels, oriented by the affine, through `o.slices` (default: the masks' centre). */
function makePanels(o: RenderOptions, op: string): Panel[] {
  const [nx, ny] = o.dims;
  const dims = o.dims;
  const affine = o.affine ?? [[o.spacing[0], 0, 0, 0], [0, o.spacing[1], 0, 0], [0, 0, o.spacing[2], 0]];
  const { axis, sign } = axesOf(affine, op);
  const [lo, hi] = o.window ?? [-160, 240];
  const panelSize = o.panelSize ?? 300;
  const slices = o.slices ?? centreSlices(o.masks.map((m) => m.mask), dims);
  // World extent (mm) along each world axis, and the display pixel size.
  const ext = [0, 1, 2].map((w) => dims[axis[w]!]! * o.spacing[axis[w]!]!);
  const pix = Math.max(...ext) / panelSize;
  const src: PlaneSource = { image: o.image, dims, strides: [1, nx, nx * ny], axis, sign, slices, ext, pix, lo, hi };
  // Screen x grows to the right, screen y downward. Axial: x → patient's left
  // (world −x), y → posterior (world −y). Coronal: x → left, y → inferior.
  // Sagittal: x → posterior, y → inferior.
  const panels = [
    makePanel(src, "AXIAL", 0, -1, 1, -1, 2, ["R", "L", "A", "P"]),
    makePanel(src, "CORONAL", 0, -1, 2, -1, 1, ["R", "L", "S", "I"]),
    makePanel(src, "SAGITTAL", 1, -1, 2, -1, 0, ["A", "P", "S", "I"]),
  ];
  // Label the fixed index with its array axis letter.
  const axisName = ["I", "J", "K"];
  panels[0]!.name = `AXIAL ${axisName[axis[2]]}=${slices[axis[2]]}`;
  panels[1]!.name = `CORONAL ${axisName[axis[1]]}=${slices[axis[1]]}`;
  panels[2]!.name = `SAGITTAL ${axisName[axis[0]]}=${slices[axis[0]]}`;
  return panels;
}

/**
 * A plane spanned by world axes (horizontal u, vertical v), fixed array
 * index along the third. uDir/vDir: +1 when screen coordinate grows with
 * the world coordinate.
 */
function makePanel(src: PlaneSource, name: string, u: number, uDir: number, v: number, vDir: number, fixedW: number, edges: Panel["edges"]): Panel {
  const { image, dims, strides, axis, sign, slices, ext, pix, lo, hi } = src;
  const w = Math.max(1, Math.round(ext[u]! / pix)), h = Math.max(1, Math.round(ext[v]! / pix));
  const gray = new Uint8Array(w * h);
  const voxel = new Int32Array(w * h);
  const au = axis[u]!, av = axis[v]!, af = axis[fixedW]!;
  const fixed = slices[af]!;
  const nu = dims[au]!, nv = dims[av]!;
  // Screen v grows downward; world direction vDir·sign tells which array end is at the top.
  const flipU = uDir * sign[u]! < 0, flipV = vDir * sign[v]! < 0;
  for (let py = 0; py < h; py++) {
    // Continuous index along av for this row (pixel centres).
    let tv = ((py + 0.5) / h) * nv - 0.5; // 0..nv-1 top to bottom in screen terms
    if (flipV) tv = nv - 1 - tv;
    for (let px = 0; px < w; px++) {
      let tu = ((px + 0.5) / w) * nu - 0.5;
      if (flipU) tu = nu - 1 - tu;
      const cu = clampI(tu, nu), cv = clampI(tv, nv);
      const iu = Math.round(cu), iv = Math.round(cv);
      const base = fixed * strides[af]!;
      voxel[py * w + px] = base + iu * strides[au]! + iv * strides[av]!;
      // Bilinear image value.
      const u0 = Math.floor(cu), v0 = Math.floor(cv);
      const u1 = Math.min(u0 + 1, nu - 1), v1 = Math.min(v0 + 1, nv - 1);
      const fu = cu - u0, fv = cv - v0;
      const at = (a: number, b: number) => image[base + a * strides[au]! + b * strides[av]!]!;
      const val = (at(u0, v0) * (1 - fu) + at(u1, v0) * fu) * (1 - fv) + (at(u0, v1) * (1 - fu) + at(u1, v1) * fu) * fv;
      gray[py * w + px] = Math.round(Math.min(1, Math.max(0, (val - lo) / (hi - lo))) * 255);
    }
  }
  // The inverse of the pixel → index mapping above.
  const screen = (iu: number, iv: number): [number, number] => [
    ((flipU ? nu - 1 - iu : iu) + 0.5) * (w / nu) - 0.5,
    ((flipV ? nv - 1 - iv : iv) + 0.5) * (h / nv) - 0.5,
  ];
  return { name: `${name} ${fixed}`, w, h, gray, voxel, edges, au, av, af, fixed, screen };
}

/** Legend: each mask, then the prompts drawn (a box, positive and negative points), each with its swatch. */
function legendItems(o: RenderOptions, colors: readonly Rgb[]): LegendItem[] {
  const legend: LegendItem[] = o.masks.map((m, n) => ({
    name: m.name,
    swatch: (x, y, put) => { for (let dy = 0; dy < SW; dy++) for (let dx = 0; dx < SW; dx++) put(x + dx, y + dy, colors[n]!); },
  }));
  if (o.box) {
    legend.push({ name: "BOX", swatch: (x, y, put) => {
      for (let dy = 0; dy < SW; dy++) for (let dx = 0; dx < SW; dx++) if (Math.min(dx, dy, SW - 1 - dx, SW - 1 - dy) < BOX_LINE) put(x + dx, y + dy, BOX_COLOR);
    } });
  }
  for (const [label, name] of [[1, "POSITIVE POINT"], [0, "NEGATIVE POINT"]] as const) {
    if (o.points?.some((pt) => pt.label === label)) legend.push({ name, swatch: (x, y, put) => marker(x + (SW - 1) / 2, y + (SW - 1) / 2, label, false, () => true, put) });
  }
  return legend;
}

/** Legend items flow left to right, wrapping at the picture's width: their positions and the rows' height. */
function flowLegend(legend: readonly LegendItem[], width: number): { items: { x: number; y: number }[]; rowsH: number } {
  const items: { x: number; y: number }[] = [];
  let lx = M, ly = 0;
  for (const it of legend) {
    const iw = SW + 6 + textWidth(it.name, S) + 18;
    if (lx + iw > width - M && lx > M) { lx = M; ly += LINE_H; }
    items.push({ x: lx, y: ly });
    lx += iw;
  }
  return { items, rowsH: legend.length ? ly + LINE_H : 0 };
}

/** One panel at (x0, y0): the grey image, the masks, its orientation letters and the prompts. */
function drawPanel(pic: Picture, p: Panel, o: RenderOptions, colors: readonly Rgb[], x0: number, y0: number): void {
  const put = pic.put;
  for (let y = 0; y < p.h; y++) for (let x = 0; x < p.w; x++) { const g = p.gray[y * p.w + x]!; put(x0 + x, y0 + y, [g, g, g]); }
  // Masks in order, later on top: translucent fill, opaque 1-pixel contour.
  o.masks.forEach((m, n) => {
    const c = colors[n]!;
    const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < p.w && y < p.h && m.mask[p.voxel[y * p.w + x]!] !== 0;
    for (let y = 0; y < p.h; y++) {
      for (let x = 0; x < p.w; x++) {
        if (!inside(x, y)) continue;
        const edge = !inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1);
        put(x0 + x, y0 + y, c, edge ? 1 : ALPHA);
      }
    }
  });
  // Orientation letters (small) inside the panel edges.
  const [le, re, te, be] = p.edges;
  const yellow: Rgb = [255, 220, 0];
  drawText(le, x0 + 2, y0 + Math.floor(p.h / 2) - 3, 1, (a, b) => put(a, b, yellow));
  drawText(re, x0 + p.w - 7, y0 + Math.floor(p.h / 2) - 3, 1, (a, b) => put(a, b, yellow));
  drawText(te, x0 + Math.floor(p.w / 2) - 2, y0 + 2, 1, (a, b) => put(a, b, yellow));
  drawText(be, x0 + Math.floor(p.w / 2) - 2, y0 + p.h - 9, 1, (a, b) => put(a, b, yellow));
  // Prompts on top of everything: they are what the picture is about.
  const onPanel = (x: number, y: number) => x >= 0 && y >= 0 && x < p.w && y < p.h;
  const putPanel = (x: number, y: number, c: Rgb) => put(x0 + x, y0 + y, c);
  if (o.box) drawBox(p, o.box, o.dims, onPanel, putPanel);
  for (const pt of o.points ?? []) {
    const [cx, cy] = p.screen(pt.ijk[p.au]!, pt.ijk[p.av]!);
    marker(cx, cy, pt.label, pt.ijk[p.af] !== p.fixed, onPanel, putPanel);
  }
}

/**
 * A box's outline on a panel: the pixels showing a voxel inside the box's
 * projection (its range along the panel's two axes) within BOX_LINE pixels of
 * one outside it or of the panel's edge. Dashed when the panel's plane does
 * not cut the box.
 */
function drawBox(p: Panel, box: NonNullable<RenderOptions["box"]>, dims: Vec3, onPanel: (x: number, y: number) => boolean, put: (x: number, y: number, c: Rgb) => void): void {
  const stride = [1, dims[0], dims[0] * dims[1]];
  const index = (voxel: number, a: number) => Math.floor(voxel / stride[a]!) % dims[a]!;
  const within = (i: number, a: number) => i >= box[a]! && i <= box[a + 3]!;
  const inside = (x: number, y: number) => {
    if (!onPanel(x, y)) return false;
    const v = p.voxel[y * p.w + x]!;
    return within(index(v, p.au), p.au) && within(index(v, p.av), p.av);
  };
  const cut = within(p.fixed, p.af);
  for (let y = 0; y < p.h; y++) {
    for (let x = 0; x < p.w; x++) {
      if (!inside(x, y) || (!cut && Math.floor((x + y) / DASH) % 2 === 1)) continue;
      let edge = false;
      for (let d = 1; d <= BOX_LINE && !edge; d++) edge = !inside(x - d, y) || !inside(x + d, y) || !inside(x, y - d) || !inside(x, y + d);
      if (edge) put(x, y, BOX_COLOR);
    }
  }
}

/**
 * A point marker on the pixel nearest (cx, cy): a plus for a positive point,
 * a cross for a negative one, 3 pixels thick; `hollow` leaves out the
 * middle, drawing only the outline. Drawn where `keep` allows.
 */
function marker(cx: number, cy: number, label: 0 | 1, hollow: boolean, keep: (x: number, y: number) => boolean, put: (x: number, y: number, c: Rgb) => void): void {
  const x0 = Math.round(cx), y0 = Math.round(cy);
  const ink = (dx: number, dy: number) => {
    const ax = Math.abs(dx), ay = Math.abs(dy);
    return Math.max(ax, ay) <= MARKER_R && (label === 1 ? Math.min(ax, ay) <= 1 : Math.abs(ax - ay) <= 1);
  };
  for (let dy = -MARKER_R; dy <= MARKER_R; dy++) {
    for (let dx = -MARKER_R; dx <= MARKER_R; dx++) {
      if (!ink(dx, dy) || !keep(x0 + dx, y0 + dy)) continue;
      if (hollow && ink(dx - 1, dy) && ink(dx + 1, dy) && ink(dx, dy - 1) && ink(dx, dy + 1)) continue;
      put(x0 + dx, y0 + dy, label === 1 ? POSITIVE_COLOR : NEGATIVE_COLOR);
    }
  }
}

function clampI(t: number, n: number): number {
  return Math.min(n - 1, Math.max(0, t));
}

/** Writes PNG bytes to `path` atomically. */
export function writePng(path: string, bytes: Uint8Array): void {
  if (!path.toLowerCase().endsWith(".png")) throw new Error(`writePng: ${path}: name must end in .png`);
  writeFileAtomic(path, bytes, { what: "writePng" });
}
