// Slice images of a CT volume with masks overlaid: axial, coronal and
// sagittal planes through the masks' joint centre (or the volume centre when
// no mask has a voxel), side by side, resampled to square display pixels,
// with a legend drawn in the built-in bitmap font, as PNG bytes.
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
import { drawText, GLYPH_H, textWidth } from "./font.js";

export type Rgb = [number, number, number];

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
}

/** Distinct overlay colours, used in order for masks without a colour. */
export const PALETTE: readonly Rgb[] = [
  [230, 60, 60], [60, 180, 75], [255, 200, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40],
];

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
}

/** Renders the three planes with the masks to PNG bytes. */
export function renderSlices(o: RenderOptions): Uint8Array {
  const op = "renderSlices";
  check(o, op);
  const [nx, ny, nz] = o.dims;
  const dims = o.dims;
  const strides = [1, nx, nx * ny];
  const affine = o.affine ?? [[o.spacing[0], 0, 0, 0], [0, o.spacing[1], 0, 0], [0, 0, o.spacing[2], 0]];
  const { axis, sign } = axesOf(affine, op);
  const [lo, hi] = o.window ?? [-160, 240];
  const panelSize = o.panelSize ?? 300;

  // Centre: the joint centroid of all masks, else the middle voxel.
  const centre = [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2];
  {
    let cnt = 0;
    const sum = [0, 0, 0];
    const any = new Uint8Array(nx * ny * nz);
    for (const m of o.masks) for (let v = 0; v < any.length; v++) if (m.mask[v]) any[v] = 1;
    for (let v = 0; v < any.length; v++) {
      if (!any[v]) continue;
      cnt++;
      sum[0] += v % nx;
      sum[1] += Math.floor(v / nx) % ny;
      sum[2] += Math.floor(v / (nx * ny));
    }
    if (cnt > 0) for (let a = 0; a < 3; a++) centre[a] = sum[a]! / cnt;
  }

  // World extent (mm) along each world axis, and the display pixel size.
  const ext = [0, 1, 2].map((w) => dims[axis[w]!]! * o.spacing[axis[w]!]!);
  const pix = Math.max(...ext) / panelSize;

  /**
   * A plane spanned by world axes (horizontal u, vertical v), fixed array
   * index along the third. uDir/vDir: +1 when screen coordinate grows with
   * the world coordinate.
   */
  const makePanel = (name: string, u: number, uDir: number, v: number, vDir: number, fixedW: number, edges: Panel["edges"]): Panel => {
    const w = Math.max(1, Math.round(ext[u]! / pix)), h = Math.max(1, Math.round(ext[v]! / pix));
    const gray = new Uint8Array(w * h);
    const voxel = new Int32Array(w * h);
    const au = axis[u]!, av = axis[v]!, af = axis[fixedW]!;
    const fixed = Math.round(centre[af]!);
    const nu = dims[au]!, nv = dims[av]!;
    for (let py = 0; py < h; py++) {
      // Continuous index along av for this row (pixel centres).
      let tv = ((py + 0.5) / h) * nv - 0.5; // 0..nv-1 top to bottom in screen terms
      // Screen v grows downward; world direction vDir·sign tells which array end is at the top.
      if (vDir * sign[v]! < 0) tv = nv - 1 - tv;
      for (let px = 0; px < w; px++) {
        let tu = ((px + 0.5) / w) * nu - 0.5;
        if (uDir * sign[u]! < 0) tu = nu - 1 - tu;
        const cu = clampI(tu, nu), cv = clampI(tv, nv);
        const iu = Math.round(cu), iv = Math.round(cv);
        const base = fixed * strides[af]!;
        voxel[py * w + px] = base + iu * strides[au]! + iv * strides[av]!;
        // Bilinear image value.
        const u0 = Math.floor(cu), v0 = Math.floor(cv);
        const u1 = Math.min(u0 + 1, nu - 1), v1 = Math.min(v0 + 1, nv - 1);
        const fu = cu - u0, fv = cv - v0;
        const at = (a: number, b: number) => o.image[base + a * strides[au]! + b * strides[av]!]!;
        const val = (at(u0, v0) * (1 - fu) + at(u1, v0) * fu) * (1 - fv) + (at(u0, v1) * (1 - fu) + at(u1, v1) * fu) * fv;
        gray[py * w + px] = Math.round(Math.min(1, Math.max(0, (val - lo) / (hi - lo))) * 255);
      }
    }
    return { name: `${name} ${fixed}`, w, h, gray, voxel, edges };
  };
  // Screen x grows to the right, screen y downward. Axial: x → patient's left
  // (world −x), y → posterior (world −y). Coronal: x → left, y → inferior.
  // Sagittal: x → posterior, y → inferior.
  const panels = [
    makePanel("AXIAL", 0, -1, 1, -1, 2, ["R", "L", "A", "P"]),
    makePanel("CORONAL", 0, -1, 2, -1, 1, ["R", "L", "S", "I"]),
    makePanel("SAGITTAL", 1, -1, 2, -1, 0, ["A", "P", "S", "I"]),
  ];
  // Label the fixed index with its array axis letter.
  const axisName = ["I", "J", "K"];
  panels[0]!.name = `AXIAL ${axisName[axis[2]]}=${Math.round(centre[axis[2]]!)}`;
  panels[1]!.name = `CORONAL ${axisName[axis[1]]}=${Math.round(centre[axis[1]]!)}`;
  panels[2]!.name = `SAGITTAL ${axisName[axis[0]]}=${Math.round(centre[axis[0]]!)}`;

  // Layout: title, panels in a row with their names, legend rows.
  const M = 10, GAP = 10, S = 2; // margin, gap, font scale
  const lineH = GLYPH_H * S + 6;
  const titleH = o.title ? lineH + 4 : 0;
  const panelsW = panels.reduce((a, p) => a + p.w, 0) + GAP * (panels.length - 1);
  const panelsH = Math.max(...panels.map((p) => p.h));
  const width = Math.max(panelsW + 2 * M, textWidth(o.title ?? "", S) + 2 * M);
  const colors = o.masks.map((m, n) => m.color ?? PALETTE[n % PALETTE.length]!);
  // Legend items flow left to right, wrapping.
  const items: { x: number; y: number }[] = [];
  let lx = M, ly = 0;
  for (const m of o.masks) {
    const iw = 14 + 6 + textWidth(m.name, S) + 18;
    if (lx + iw > width - M && lx > M) { lx = M; ly += lineH; }
    items.push({ x: lx, y: ly });
    lx += iw;
  }
  const legendTop = M + titleH + panelsH + 4 + lineH + 6;
  const height = legendTop + (o.masks.length ? ly + lineH : 0) + M;

  const png = new PNG({ width, height });
  const px = png.data;
  for (let t = 0; t < width * height; t++) px.set([BG[0], BG[1], BG[2], 255], t * 4);
  const put = (x: number, y: number, c: Rgb, a = 1) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const t = (y * width + x) * 4;
    for (let ch = 0; ch < 3; ch++) px[t + ch] = Math.round(px[t + ch]! * (1 - a) + c[ch]! * a);
  };
  const text = (s: string, x: number, y: number, c: Rgb = FG) => drawText(s, x, y, S, (a, b) => put(a, b, c));
  if (o.title) text(o.title, M, M);

  let x0 = M;
  const y0 = M + titleH;
  for (const p of panels) {
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
    text(p.name, x0, y0 + panelsH + 6);
    x0 += p.w + GAP;
  }
  o.masks.forEach((m, n) => {
    const it = items[n]!;
    const y = legendTop + it.y;
    for (let dy = 0; dy < 14; dy++) for (let dx = 0; dx < 14; dx++) put(it.x + dx, y + dy, colors[n]!);
    text(m.name, it.x + 20, y);
  });
  return new Uint8Array(PNG.sync.write(png));
}

function clampI(t: number, n: number): number {
  return Math.min(n - 1, Math.max(0, t));
}

/** Writes PNG bytes to `path` atomically. */
export function writePng(path: string, bytes: Uint8Array): void {
  if (!path.toLowerCase().endsWith(".png")) throw new Error(`writePng: ${path}: name must end in .png`);
  writeFileAtomic(path, bytes, { what: "writePng" });
}
