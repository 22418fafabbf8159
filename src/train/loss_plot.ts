// The training curve as files: `loss.csv` (step,loss) and a small PNG line
// plot drawn pixel by pixel (axes with labelled tick marks, the loss as a
// polyline, y from the smallest to the largest loss), both written atomically.
import { PNG } from "pngjs";
import { drawText, textWidth, GLYPH_H } from "../image/font.js";
import { writeFileAtomic } from "../io/atomic.js";

/** `step,loss` lines, steps counted from 1. */
export function lossCsv(losses: readonly number[]): string {
  return ["step,loss", ...losses.map((l, i) => `${i + 1},${l}`)].join("\n") + "\n";
}

type Rgb = [number, number, number];

/** An RGBA image of the curve (width × height pixels). */
export function plotLosses(losses: readonly number[], width = 640, height = 400): PNG {
  const png = new PNG({ width, height });
  png.data.fill(255);
  const set = (x: number, y: number, c: Rgb) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const o = (Math.round(y) * width + Math.round(x)) * 4;
    png.data[o] = c[0];
    png.data[o + 1] = c[1];
    png.data[o + 2] = c[2];
    png.data[o + 3] = 255;
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: Rgb) => {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let k = 0; k <= n; k++) set(x0 + ((x1 - x0) * k) / n, y0 + ((y1 - y0) * k) / n, c);
  };
  const L = 60, R = width - 20, T = 20, B = height - 40;
  const black: Rgb = [0, 0, 0];
  line(L, T, L, B, black);
  line(L, B, R, B, black);
  for (let k = 0; k <= 10; k++) {
    const x = L + ((R - L) * k) / 10;
    const y = B - ((B - T) * k) / 10;
    line(x, B, x, B + 5, black);
    line(L - 5, y, L, y, black);
  }
  const finite = losses.filter(Number.isFinite);
  const text = (t: string, x: number, y: number) => drawText(t, Math.round(x), Math.round(y), 1, (a, b) => set(a, b, black));
  text("LOSS", 4, 4);
  text("STEP", R - textWidth("STEP"), height - GLYPH_H - 4);
  if (finite.length === 0) return png;
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const span = hi - lo || 1;
  const n = losses.length;
  // Tick labels: loss at the bottom, middle and top; steps at both ends and the middle.
  for (const k of [0, 5, 10]) {
    const label = (lo + (span * k) / 10).toPrecision(3);
    text(label, L - 8 - textWidth(label), B - ((B - T) * k) / 10 - GLYPH_H / 2);
    const step = String(Math.max(1, Math.round(1 + ((n - 1) * k) / 10)));
    text(step, L + ((R - L) * k) / 10 - textWidth(step) / 2, B + 9);
  }
  const px = (i: number) => (n === 1 ? (L + R) / 2 : L + ((R - L) * i) / (n - 1));
  const py = (v: number) => B - ((B - T) * (v - lo)) / span;
  const blue: Rgb = [31, 90, 200];
  let prev: [number, number] | null = null;
  losses.forEach((v, i) => {
    if (!Number.isFinite(v)) {
      prev = null;
      return;
    }
    const p: [number, number] = [px(i), py(v)];
    if (prev) line(prev[0], prev[1], p[0], p[1], blue);
    else set(p[0], p[1], blue);
    prev = p;
  });
  return png;
}

/** Writes `dir/loss.csv` and `dir/loss.png`. */
export function writeLossFiles(dir: string, losses: readonly number[]): void {
  writeFileAtomic(`${dir}/loss.csv`, new TextEncoder().encode(lossCsv(losses)), { what: "loss.csv" });
  writeFileAtomic(`${dir}/loss.png`, new Uint8Array(PNG.sync.write(plotLosses(losses))), { what: "loss.png" });
}
