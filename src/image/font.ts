// A 5×7 bitmap font, drawn by hand, for legends and panel titles in PNGs
// (no font files or text renderer at run time). Upper case only: lower-case
// input is drawn in capitals; characters without a glyph draw as a box.

// Each glyph: 7 rows, 5 columns, '#' = ink.
const GLYPHS: Record<string, string> = {
  A: ".###.#...##...#######...##...##...#",
  B: "####.#...##...#####.#...##...#####.",
  C: ".###.#...##....#....#....#...#.###.",
  D: "####.#...##...##...##...##...#####.",
  E: "######....#....####.#....#....#####",
  F: "######....#....####.#....#....#....",
  G: ".###.#...##....#.####...##...#.####",
  H: "#...##...##...#######...##...##...#",
  I: ".###...#....#....#....#....#...###.",
  J: "..###...#....#....#....#.#..#..##..",
  K: "#...##..#.#.#..##...#.#..#..#.#...#",
  L: "#....#....#....#....#....#....#####",
  M: "#...###.###.#.##.#.##...##...##...#",
  N: "#...##...###..##.#.##..###...##...#",
  O: ".###.#...##...##...##...##...#.###.",
  P: "####.#...##...#####.#....#....#....",
  Q: ".###.#...##...##...##.#.##..#..##.#",
  R: "####.#...##...#####.#.#..#..#.#...#",
  S: ".#####....#.....###.....#....#####.",
  T: "#####..#....#....#....#....#....#..",
  U: "#...##...##...##...##...##...#.###.",
  V: "#...##...##...##...##...#.#.#..#...",
  W: "#...##...##...##.#.##.#.##.#.#.#.#.",
  X: "#...##...#.#.#...#...#.#.#...##...#",
  Y: "#...##...#.#.#...#....#....#....#..",
  Z: "#####....#...#...#...#...#....#####",
  "0": ".###.#...##..###.#.###..##...#.###.",
  "1": "..#...##....#....#....#....#...###.",
  "2": ".###.#...#....#...#...#...#...#####",
  "3": "#####...#...#.....#.....##...#.###.",
  "4": "...#...##..#.#.#..#.#####...#....#.",
  "5": "######....####.....#....##...#.###.",
  "6": "..##..#...#....####.#...##...#.###.",
  "7": "#####....#...#...#...#....#....#...",
  "8": ".###.#...##...#.###.#...##...#.###.",
  "9": ".###.#...##...#.####....#...#..##..",
  " ": "...................................",
  "-": "...............#####...............",
  ".": "..........................##...##..",
  ",": ".....................##....#...#...",
  ":": ".....##...##.........##...##......",
  "(": "...#...#...#....#....#.....#.....#.",
  ")": ".#.....#.....#....#....#...#...#...",
  "=": "..........#####.....#####..........",
  "/": ".........#...#...#...#...#.........",
  "_": "..............................#####",
  "+": ".......#....#..#####..#....#.......",
  "%": "##...##..#...#...#...#...#..##...##",
  "[": ".###..#....#....#....#....#....###.",
  "]": ".###....#....#....#....#....#..###.",
  "×": ".....#...#.#.#...#...#.#.#...#.....",
  "'": "..#....#...#.......................",
};

export const GLYPH_W = 5;
export const GLYPH_H = 7;

// Pad any row string that is one short (hand drawing) to 35 cells.
const BITMAPS = new Map<string, Uint8Array>(
  Object.entries(GLYPHS).map(([ch, rows]) => {
    const cells = rows.padEnd(GLYPH_W * GLYPH_H, ".");
    return [ch, Uint8Array.from(cells.slice(0, GLYPH_W * GLYPH_H), (c) => (c === "#" ? 1 : 0))];
  }),
);
const BOX = Uint8Array.from({ length: GLYPH_W * GLYPH_H }, (_, t) => {
  const x = t % GLYPH_W, y = Math.floor(t / GLYPH_W);
  return x === 0 || y === 0 || x === GLYPH_W - 1 || y === GLYPH_H - 1 ? 1 : 0;
});

/** The 5×7 cells of a character (1 = ink). */
export function glyph(ch: string): Uint8Array {
  return BITMAPS.get(ch.toUpperCase()) ?? BITMAPS.get(ch) ?? BOX;
}

/** Width in pixels of `text` at `scale` (one blank column between glyphs). */
export function textWidth(text: string, scale = 1): number {
  const n = [...text].length;
  return n === 0 ? 0 : (n * (GLYPH_W + 1) - 1) * scale;
}

/** Draws `text` with its top-left corner at (x, y) through `set(x, y)` for every ink pixel. */
export function drawText(text: string, x: number, y: number, scale: number, set: (px: number, py: number) => void): void {
  let cx = x;
  for (const ch of text) {
    const g = glyph(ch);
    for (let gy = 0; gy < GLYPH_H; gy++) {
      for (let gx = 0; gx < GLYPH_W; gx++) {
        if (!g[gy * GLYPH_W + gx]) continue;
        for (let sy = 0; sy < scale; sy++) for (let sx = 0; sx < scale; sx++) set(cx + gx * scale + sx, y + gy * scale + sy);
      }
    }
    cx += (GLYPH_W + 1) * scale;
  }
}
