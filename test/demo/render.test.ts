// Slice renderer: PNG size from the layout, mask colour exactly where the
// mask is (right place under radiological orientation), none elsewhere;
// bad input named; atomic PNG writing; the font draws its glyphs.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { afterAll, describe, expect, it } from "vitest";
import { drawText, glyph, GLYPH_H, GLYPH_W, textWidth } from "../../src/image/font.js";
import { generatePhantom, PHANTOM_LABELS } from "../../src/demo/phantom.js";
import { BOX_COLOR, centreSlices, NEGATIVE_COLOR, POSITIVE_COLOR, renderSlices, writePng, type Rgb } from "../../src/demo/render.js";

const tmp = mkdtempSync(join(tmpdir(), "render-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A small volume: i 20 × 1 mm, j 16 × 1.5 mm, k 10 × 3 mm (extents 20, 24, 30 mm).
const dims: [number, number, number] = [20, 16, 10];
const spacing: [number, number, number] = [1, 1.5, 3];
const N = dims[0] * dims[1] * dims[2];
const image = new Int16Array(N);
for (let v = 0; v < N; v++) image[v] = ((v * 37) % 400) - 160; // grey levels across the window
// Mask: i 12..17 (patient's right), j 2..5 (posterior), k 6..8 (placed clear of the
// orientation letters, which are drawn on top).
const mask = new Uint8Array(N);
for (let k = 6; k <= 8; k++) for (let j = 2; j <= 5; j++) for (let i = 12; i <= 17; i++) mask[(k * dims[1] + j) * dims[0] + i] = 1;
const BLUE: [number, number, number] = [0, 0, 255];

/** Pixels inside a rectangle where blue clearly dominates (the overlay), as a list of [x, y]. */
function bluePixels(png: PNG, x0: number, y0: number, w: number, h: number): [number, number][] {
  const out: [number, number][] = [];
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) {
    const t = (y * png.width + x) * 4;
    const [r, g, b] = [png.data[t]!, png.data[t + 1]!, png.data[t + 2]!];
    if (b > r + 30 && b > g + 30) out.push([x, y]);
  }
  return out;
}

describe("renderSlices", () => {
  // panelSize 60 → 0.5 mm per pixel: axial 40×48, coronal 40×60, sagittal 48×60.
  // Layout: margin 10, gap 10; panels at x = 10, 60, 110; y = 10.
  const png = PNG.sync.read(Buffer.from(renderSlices({ image, dims, spacing, masks: [{ name: "box", mask, color: BLUE }], panelSize: 60 })));

  it("produces a PNG of the layout's size", () => {
    expect(png.width).toBe(10 + 40 + 10 + 40 + 10 + 48 + 10);
    // panels 60 + 4 + name line 20 + 6, legend line 20, margins 10 + 10.
    expect(png.height).toBe(10 + 60 + 4 + 20 + 6 + 20 + 10);
  });

  it("colours exactly the mask's pixels, in radiological orientation", () => {
    // Axial (through k = 7): mask i 12..17 → 12 px, j 2..5 → 12 px.
    // Patient's right (high i) on the image left; posterior (low j) at the bottom.
    const ax = bluePixels(png, 10, 10, 40, 48);
    expect(ax.length).toBe(144);
    expect(Math.max(...ax.map((p) => p[0]))).toBeLessThan(10 + 20); // left half
    expect(Math.min(...ax.map((p) => p[1]))).toBeGreaterThanOrEqual(10 + 24); // bottom half
    // Coronal (through j = round(3.5) = 4): 12 px wide, k 6..8 → 18 px tall; superior at the top.
    const co = bluePixels(png, 60, 10, 40, 60);
    expect(co.length).toBe(216);
    expect(Math.max(...co.map((p) => p[0]))).toBeLessThan(60 + 20);
    // k 6..8 of 0..9 with k = 9 at the top: rows (9-8)·6 .. (9-6)·6 + 5.
    expect(Math.min(...co.map((p) => p[1]))).toBe(10 + 6);
    expect(Math.max(...co.map((p) => p[1]))).toBe(10 + 23);
    // Sagittal (through i = round(14.5) = 15): j 2..5 → 12 px, anterior (high j) on the left.
    const sa = bluePixels(png, 110, 10, 48, 60);
    expect(sa.length).toBe(216);
    expect(Math.min(...sa.map((p) => p[0]))).toBeGreaterThanOrEqual(110 + 24);
    // Legend swatch is blue too; nothing else in the image is.
    const all = bluePixels(png, 0, 0, png.width, png.height);
    expect(all.length).toBe(144 + 216 + 216 + 14 * 14);
  });

  it("draws no colour without masks, and an empty mask colours nothing", () => {
    for (const masks of [[], [{ name: "empty", mask: new Uint8Array(N), color: BLUE }]]) {
      const p = PNG.sync.read(Buffer.from(renderSlices({ image, dims, spacing, masks, title: "NO MASK", panelSize: 60 })));
      const blue = bluePixels(p, 0, 0, p.width, p.height);
      expect(blue.length).toBe(masks.length ? 14 * 14 : 0);
    }
  });

  it("follows the affine: flipping i in the affine mirrors the axial overlay", () => {
    const affine = [[-1, 0, 0, 0], [0, 1.5, 0, 0], [0, 0, 3, 0], [0, 0, 0, 1]];
    const p = PNG.sync.read(Buffer.from(renderSlices({ image, dims, spacing, masks: [{ name: "box", mask, color: BLUE }], panelSize: 60, affine })));
    const ax = bluePixels(p, 10, 10, 40, 48);
    expect(ax.length).toBe(144);
    expect(Math.min(...ax.map((q) => q[0]))).toBeGreaterThanOrEqual(10 + 20); // now the right half
  });

  it("shows the planes through `slices` when given (the masks' centre otherwise)", () => {
    const render = (slices?: [number, number, number]) => PNG.sync.read(Buffer.from(renderSlices({ image, dims, spacing, masks: [{ name: "box", mask, color: BLUE }], panelSize: 60, slices })));
    // The mask's centre (14.5, 3.5, 7) rounds to (15, 4, 7): the default render.
    expect(centreSlices([mask], dims)).toEqual([15, 4, 7]);
    expect(render([15, 4, 7]).data.equals(png.data)).toBe(true);
    // Axial plane k = 2 misses the mask (k 6..8); coronal j = 4 and sagittal i = 15 still cut it.
    const off = render([15, 4, 2]);
    expect(bluePixels(off, 10, 10, 40, 48)).toHaveLength(0);
    expect(bluePixels(off, 60, 10, 40, 60)).toHaveLength(216);
    expect(centreSlices([new Uint8Array(N)], dims)).toEqual([10, 8, 5]); // no mask voxel: the middle voxel (rounded)
    expect(() => renderSlices({ image, dims, spacing, masks: [], slices: [20, 0, 0] })).toThrow(/renderSlices: slices/);
  });

  // Pixel rectangles of voxel ranges at panelSize 60 (0.5 mm per pixel), from the layout above:
  // axial x = 10 + (19 − i)·2, y = 10 + (15 − j)·3; coronal x = 60 + (19 − i)·2, y = 10 + (9 − k)·6;
  // sagittal x = 110 + (15 − j)·3, y = 10 + (9 − k)·6.
  const axialRect = (i0: number, i1: number, j0: number, j1: number) => ({ x0: 10 + (19 - i1) * 2, x1: 10 + (19 - i0) * 2 + 1, y0: 10 + (15 - j1) * 3, y1: 10 + (15 - j0) * 3 + 2 });
  const coronalRect = (i0: number, i1: number, k0: number, k1: number) => ({ x0: 60 + (19 - i1) * 2, x1: 60 + (19 - i0) * 2 + 1, y0: 10 + (9 - k1) * 6, y1: 10 + (9 - k0) * 6 + 5 });
  const sagittalRect = (j0: number, j1: number, k0: number, k1: number) => ({ x0: 110 + (15 - j1) * 3, x1: 110 + (15 - j0) * 3 + 2, y0: 10 + (9 - k1) * 6, y1: 10 + (9 - k0) * 6 + 5 });
  type Rect = ReturnType<typeof axialRect>;
  const colourAt = (p: PNG, x: number, y: number): Rgb => {
    const t = (y * p.width + x) * 4;
    return [p.data[t]!, p.data[t + 1]!, p.data[t + 2]!];
  };
  const is = (p: PNG, x: number, y: number, c: Rgb) => colourAt(p, x, y).every((v, ch) => v === c[ch]);
  /** Pixels of colour c inside the panel spanning `area`, split into those on the rectangle's border, inside it, and outside it. */
  const outline = (p: PNG, area: { x: number; y: number; w: number; h: number }, r: Rect, c: Rgb) => {
    let border = 0, inner = 0, outside = 0;
    for (let y = area.y; y < area.y + area.h; y++) for (let x = area.x; x < area.x + area.w; x++) {
      if (!is(p, x, y, c)) continue;
      if (x < r.x0 || x > r.x1 || y < r.y0 || y > r.y1) outside++;
      else if (x === r.x0 || x === r.x1 || y === r.y0 || y === r.y1) border++;
      else inner++;
    }
    return { border, inner, outside, perimeter: 2 * (r.x1 - r.x0 + r.y1 - r.y0) };
  };
  const AXIAL = { x: 10, y: 10, w: 40, h: 48 }, CORONAL = { x: 60, y: 10, w: 40, h: 60 }, SAGITTAL = { x: 110, y: 10, w: 48, h: 60 };

  it("draws a box prompt's outline on each plane: solid where the plane cuts the box, dashed where it does not", () => {
    const box: [number, number, number, number, number, number] = [12, 2, 6, 17, 5, 8];
    const draw = (slices: [number, number, number]) => PNG.sync.read(Buffer.from(renderSlices({ image, dims, spacing, masks: [{ name: "box", mask, color: BLUE }], box, panelSize: 60, slices })));
    const p = draw([14, 4, 7]);
    for (const [area, r] of [[AXIAL, axialRect(12, 17, 2, 5)], [CORONAL, coronalRect(12, 17, 6, 8)], [SAGITTAL, sagittalRect(2, 5, 6, 8)]] as const) {
      const o = outline(p, area, r, BOX_COLOR);
      expect(o.outside).toBe(0);
      expect(o.border).toBe(o.perimeter); // the whole outline, over the mask's contour
      expect(o.inner).toBeLessThan(o.perimeter); // a line, not a fill
      // The mask stays visible inside the outline.
      expect(bluePixels(p, r.x0, r.y0, r.x1 - r.x0 + 1, r.y1 - r.y0 + 1).length).toBeGreaterThan(0);
    }
    // Axial plane k = 2 misses the box: its projection dashed (part of the border), the other planes solid.
    const q = draw([14, 4, 2]);
    const ax = outline(q, AXIAL, axialRect(12, 17, 2, 5), BOX_COLOR);
    expect(ax.outside).toBe(0);
    expect(ax.border).toBeGreaterThan(ax.perimeter / 4);
    expect(ax.border).toBeLessThan(ax.perimeter);
    expect(outline(q, CORONAL, coronalRect(12, 17, 6, 8), BOX_COLOR).border).toBe(outline(q, CORONAL, coronalRect(12, 17, 6, 8), BOX_COLOR).perimeter);
    // Without a box, no pixel has the box colour.
    expect(outline(png, { x: 0, y: 0, w: png.width, h: png.height }, { x0: 0, y0: 0, x1: 0, y1: 0 }, BOX_COLOR)).toMatchObject({ border: 0, inner: 0, outside: 0 });
  });

  it("marks point prompts where they project on each plane: positive and negative in different colours, hollow off their plane", () => {
    // Both points on the axial plane k = 7; neither on the coronal (j = 4) or sagittal (i = 15) plane.
    const pos: [number, number, number] = [14, 3, 7], neg: [number, number, number] = [5, 12, 7];
    const draw = (points: { ijk: [number, number, number]; label: 0 | 1 }[]) =>
      PNG.sync.read(Buffer.from(renderSlices({ image, dims, spacing, masks: [{ name: "box", mask, color: BLUE }], panelSize: 60, slices: [15, 4, 7], points })));
    const p = draw([{ ijk: pos, label: 1 }, { ijk: neg, label: 0 }]);
    const beneath = draw([]);
    expect(POSITIVE_COLOR).not.toEqual(NEGATIVE_COLOR);
    /** The pixel nearest the centre of a voxel drawn over the pixels of r. */
    const centre = (r: Rect): [number, number] => [Math.round((r.x0 + r.x1) / 2), Math.round((r.y0 + r.y1) / 2)];
    /** Pixels of colour c within 6 pixels of (x, y). */
    const near = ([x, y]: [number, number], c: Rgb) => outline(p, { x: x - 6, y: y - 6, w: 13, h: 13 }, { x0: 0, y0: 0, x1: 0, y1: 0 }, c).outside;
    // On their own plane: solid, the marker's colour at the centre of the point's voxel.
    for (const [at, c] of [[centre(axialRect(pos[0], pos[0], pos[1], pos[1])), POSITIVE_COLOR], [centre(axialRect(neg[0], neg[0], neg[1], neg[1])), NEGATIVE_COLOR]] as const) {
      expect(colourAt(p, ...at)).toEqual(c);
      expect(near(at, c)).toBeGreaterThan(12);
    }
    // Off their plane: hollow, the picture beneath at the voxel's centre and the marker's outline around it.
    const offPlane: [[number, number], Rgb][] = [
      [centre(coronalRect(pos[0], pos[0], pos[2], pos[2])), POSITIVE_COLOR], [centre(sagittalRect(pos[1], pos[1], pos[2], pos[2])), POSITIVE_COLOR],
      [centre(coronalRect(neg[0], neg[0], neg[2], neg[2])), NEGATIVE_COLOR], [centre(sagittalRect(neg[1], neg[1], neg[2], neg[2])), NEGATIVE_COLOR],
    ];
    for (const [at, c] of offPlane) {
      expect(colourAt(p, ...at), `(${at.join(", ")})`).toEqual(colourAt(beneath, ...at));
      expect(near(at, c), `(${at.join(", ")})`).toBeGreaterThan(12);
    }
    // A marker is small: each colour covers a few dozen pixels per plane, plus its legend sign.
    for (const c of [POSITIVE_COLOR, NEGATIVE_COLOR]) {
      const n = outline(p, { x: 0, y: 0, w: p.width, h: p.height }, { x0: 0, y0: 0, x1: 0, y1: 0 }, c).outside;
      expect(n).toBeGreaterThan(4 * 12);
      expect(n).toBeLessThan(4 * 60);
    }
  });

  it("names bad input", () => {
    expect(() => renderSlices({ image, dims, spacing, masks: [{ name: "liver", mask: new Uint8Array(5) }] })).toThrow(/renderSlices: mask "liver" has 5 values but dims 20×16×10 need 3200/);
    expect(() => renderSlices({ image: new Int16Array(7), dims, spacing, masks: [] })).toThrow(/renderSlices: image has 7 values/);
    expect(() => renderSlices({ image, dims, spacing, masks: [], window: [10, -10] })).toThrow(/renderSlices: window/);
    expect(() => renderSlices({ image, dims, spacing: [1, 0, 1], masks: [] })).toThrow(/renderSlices: spacing/);
  });

  it("renders a phantom with its labels (every organ coloured somewhere)", () => {
    const ph = generatePhantom(3, { dims: [64, 64, 32] });
    const masks = PHANTOM_LABELS.slice(1).map((name, l) => ({ name, mask: ph.labels.map((v) => (v === l + 1 ? 1 : 0)) }));
    const bytes = renderSlices({ image: ph.image, dims: ph.dims, spacing: ph.spacing, masks, title: "PHANTOM 3", panelSize: 120 });
    const p = PNG.sync.read(Buffer.from(bytes));
    let coloured = 0;
    for (let t = 0; t < p.width * p.height; t++) {
      const [r, g, b] = [p.data[t * 4]!, p.data[t * 4 + 1]!, p.data[t * 4 + 2]!];
      if (Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured++;
    }
    expect(coloured).toBeGreaterThan(500);
  });
});

describe("writePng", () => {
  it("writes the bytes atomically and refuses a non-.png name", () => {
    const bytes = renderSlices({ image, dims, spacing, masks: [], panelSize: 30 });
    const path = join(tmp, "slices.png");
    writePng(path, bytes);
    expect(Buffer.from(readFileSync(path)).equals(Buffer.from(bytes))).toBe(true);
    expect(bytes.subarray(0, 8)).toEqual(new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]));
    expect(() => writePng(join(tmp, "slices.jpg"), bytes)).toThrow(/writePng: .*must end in \.png/);
    expect(() => writePng(join(tmp, "missing", "x.png"), bytes)).toThrow(/writePng: .*does not exist/);
  });
});

describe("font", () => {
  it("has 5×7 glyphs, capitals for lower case, and draws exactly the glyph's ink", () => {
    expect(glyph("a")).toEqual(glyph("A"));
    expect(glyph("A").length).toBe(GLYPH_W * GLYPH_H);
    expect(textWidth("AB", 2)).toBe((2 * (GLYPH_W + 1) - 1) * 2);
    const ink = (s: string) => [...s].reduce((a, ch) => a + glyph(ch).reduce((x, y) => x + y, 0), 0);
    const pts = new Set<string>();
    drawText("LIVER 1", 3, 4, 2, (x, y) => pts.add(`${x},${y}`));
    expect(pts.size).toBe(ink("LIVER 1") * 4);
    // Distinct letters look distinct.
    const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".split("").map((c) => glyph(c).join(""));
    expect(new Set(letters).size).toBe(letters.length);
  });
});
