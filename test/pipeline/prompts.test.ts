// The prompt coordinate transforms of src/segvol/pipeline/prompts.ts, case by
// case: input (i, j, k) → cropped model space, cropped → zoom-out window and
// back (checked against PyTorch's own index maps), the zoom-in window's box
// and points, and the zoom-out mask's box inside a window. Expected values
// are worked out by hand from the definitions in prompts.ts's header (the
// arithmetic is in the comments), or derived from the PyTorch maps by brute
// force; whole results are compared with toStrictEqual, so a key that should
// be absent (no text, no points) must be absent.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  checkTargets,
  cropTarget,
  type CroppedTarget,
  mapInterval,
  maskBoxInWindow,
  planPrompts,
  type PromptPlan,
  unmapInterval,
  zoomInPrompt,
} from "../../src/segvol/pipeline/prompts.js";
import type { Box3, Target, Vec3 } from "../../src/segvol/pipeline/types.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "pipeline");
type IndexMap = { in: number; out: number; nearest: number[]; "nearest-exact": number[] };
const maps = (JSON.parse(readFileSync(join(fixtures, "index_maps.json"), "utf8")).maps as IndexMap[]).filter(
  (m) => m.in <= 33 && m.out <= 33,
);

/** {x : a ≤ map[x] ≤ b} as an inclusive interval, or null when empty. */
function preimage(map: number[], a: number, b: number): [number, number] | null {
  const xs = map.flatMap((s, x) => (s >= a && s <= b ? [x] : []));
  return xs.length === 0 ? null : [xs[0]!, xs[xs.length - 1]!];
}

describe("checkTargets messages", () => {
  it("prints an inverted box whole and refuses a missing point with the point's own error", () => {
    expect(() => checkTargets([{ name: "a", box: [0, 3, 0, 1, 1, 1] }], [4, 5, 6])).toThrow(
      'segment: target 0 "a": box (0, 3, 0, 1, 1, 1) has min > max along axis j',
    );
    const t = { name: "a", points: [null] } as unknown as Target;
    expect(() => checkTargets([t], [4, 5, 6])).toThrow(
      'segment: target 0 "a": point 0 must have three integer indices (i, j, k), got undefined',
    );
  });
});

describe("cropTarget", () => {
  // Model-space (d, h, w) crop: d 1..4, h 2..5, w 3..6; model = (k, j, i).
  const crop: Box3 = { start: [1, 2, 3], end: [5, 6, 7] };

  it("clips a box to the crop on both sides and keeps the points inside it, minus the crop start", () => {
    const t: Target = {
      name: "t",
      text: "liver",
      // Model lo (k0, j0, i0) = (4, 3, 0), hi (k1, j1, i1) = (4, 4, 9); clipped to
      // [max(lo, start), min(hi, end − 1)] = (4, 3, 3)..(4, 4, 6), minus start → (3, 1, 0)..(3, 2, 3).
      box: [0, 3, 4, 9, 4, 4],
      points: [
        { ijk: [3, 2, 1], label: 1 }, // model (1, 2, 3): the crop's first voxel → (0, 0, 0)
        { ijk: [4, 3, 5], label: 0 }, // model (5, 3, 4): d = end, outside on one axis only → dropped
        { ijk: [6, 5, 4], label: 1 }, // model (4, 5, 6): the crop's last voxel → (3, 3, 3)
        { ijk: [2, 3, 2], label: 0 }, // model (2, 3, 2): w = start − 1 → dropped
        { ijk: [4, 4, 2], label: 0 }, // model (2, 4, 4) → (1, 2, 1)
      ],
    };
    expect(cropTarget(t, crop)).toStrictEqual({
      name: "t",
      text: "liver",
      box: { lo: [3, 1, 0], hi: [3, 2, 3] },
      points: [
        { p: [0, 0, 0], label: 1 },
        { p: [3, 3, 3], label: 1 },
        { p: [1, 2, 1], label: 0 },
      ],
      hasPoints: true,
    });
  });

  it("adds no text or box where the target has none; hasPoints follows the user's points", () => {
    expect(cropTarget({ name: "b", box: [3, 2, 1, 6, 5, 4] }, crop)).toStrictEqual({
      name: "b",
      box: { lo: [0, 0, 0], hi: [3, 3, 3] },
      points: [],
      hasPoints: false,
    });
    // Only a negative point, outside: the cropped list is empty, but the user gave points.
    expect(cropTarget({ name: "c", points: [{ ijk: [0, 0, 0], label: 0 }] }, crop)).toStrictEqual({
      name: "c",
      points: [],
      hasPoints: true,
    });
  });

  it("refuses a box or a positive point outside the foreground, printing the crop's inclusive corners", () => {
    const where = "(model-space (d, h, w) crop [1, 2, 3] .. [4, 5, 6])";
    // Model w = i: 7..9 lies past the crop's last w (6).
    expect(() => cropTarget({ name: "b", box: [7, 2, 1, 9, 5, 4] }, crop)).toThrow(
      `segment: target "b": box (7, 2, 1, 9, 5, 4) lies entirely outside the foreground ${where}`,
    );
    expect(() => cropTarget({ name: "p", points: [{ ijk: [3, 2, 5], label: 1 }] }, crop)).toThrow(
      `segment: target "p": positive point (3, 2, 5) lies outside the foreground ${where}`,
    );
  });
});

describe("mapInterval and unmapInterval", () => {
  it("match the bounding box of the cube resized by PyTorch (nearest-exact), for every interval", () => {
    let fallbacks = 0;
    for (const m of maps) {
      const n = m.in, size = m.out;
      for (let a = 0; a < n; a++) {
        for (let b = a; b < n; b++) {
          let want = preimage(m["nearest-exact"], a, b);
          if (want === null) {
            // Thinner than one zoom-out voxel: the voxels holding a's and b's centres.
            fallbacks++;
            const pt = (p: number) => Math.min(Math.floor(((p + 0.5) * size) / n), size - 1);
            want = [pt(a), pt(b)];
          }
          expect(mapInterval(a, b, n, size), `[${a}, ${b}] of ${n} → ${size}`).toEqual(want);
        }
      }
    }
    expect(fallbacks).toBeGreaterThan(0);
  });

  it("resize a window interval back to the crop as PyTorch's nearest does, null when no voxel samples it", () => {
    let nulls = 0;
    for (const m of maps) {
      const size = m.in, n = m.out;
      for (let x0 = 0; x0 < size; x0++) {
        for (let x1 = x0; x1 < size; x1++) {
          const want = preimage(m.nearest, x0, x1);
          if (want === null) nulls++;
          expect(unmapInterval(x0, x1, size, n), `[${x0}, ${x1}] of ${size} → ${n}`).toEqual(want);
        }
      }
    }
    expect(nulls).toBeGreaterThan(0);
  });

  it("by hand: 4 → 8 doubles, 8 → 4 falls back for a one-voxel interval, 8 → 4 back skips odd voxels", () => {
    // nearest-exact 4 → 8: src(x) = ⌊(x + ½)·½⌋ = 0 0 1 1 2 2 3 3.
    expect(mapInterval(1, 2, 4, 8)).toEqual([2, 5]);
    expect(mapInterval(2, 3, 4, 8)).toEqual([4, 7]);
    expect(mapInterval(0, 0, 4, 8)).toEqual([0, 1]);
    // nearest-exact 8 → 4: src(x) = 2x + 1 = 1 3 5 7; [2, 2] is hit by none → pt(2) = ⌊2.5·4/8⌋ = 1.
    expect(mapInterval(2, 2, 8, 4)).toEqual([1, 1]);
    // nearest 8 → 4: src(y) = 2y = 0 2 4 6.
    expect(unmapInterval(1, 1, 8, 4)).toBeNull();
    expect(unmapInterval(6, 7, 8, 4)).toEqual([3, 3]);
    expect(unmapInterval(2, 5, 8, 4)).toEqual([1, 2]);
  });
});

describe("planPrompts", () => {
  it("maps the box per axis (doubled, fallen back, identity) and each point to the voxel holding its centre", () => {
    const t: CroppedTarget = {
      name: "t",
      text: "liver",
      box: { lo: [1, 2, 0], hi: [2, 2, 7] },
      points: [
        { p: [3, 7, 0], label: 1 },
        { p: [0, 0, 5], label: 0 },
      ],
      hasPoints: true,
    };
    // d: 4 → 8, [1, 2] → [2, 5], back with nearest (src 2y) → [1, 2].
    // h: 8 → 4, [2, 2] hit by none (src 1 3 5 7) → pt(2) = 1; back (src ⌊y/2⌋) → [2, 3].
    // w: 8 → 8, identity.
    // Points: pt(p) = min(⌊(p + ½)·m/n⌋, m − 1): (3, 7, 0) → (7, 3, 0); (0, 0, 5) → (1, 0, 5).
    expect(planPrompts(t, [4, 8, 8], [8, 4, 8])).toStrictEqual({
      zoomOut: { text: "liver", box: [2, 1, 0, 5, 1, 7], points: { coords: [[7, 3, 0], [1, 0, 5]], labels: [1, 0] } },
      cube: { lo: [1, 2, 0], hi: [2, 3, 7] },
    });
  });

  it("has no cube when the zoom-out box is lost resizing back, and no text or points keys when not given", () => {
    // d: 5 → 8 nearest-exact (src ⌊(x + ½)·0.625⌋ = 0 0 1 2 2 3 4 4): [1, 1] → [2, 2];
    // back 8 → 5 nearest (src ⌊1.6·y⌋ = 0 1 3 4 6) samples no voxel of [2, 2].
    const t: CroppedTarget = { name: "t", box: { lo: [1, 0, 0], hi: [1, 3, 3] }, points: [], hasPoints: false };
    expect(planPrompts(t, [5, 4, 4], [8, 4, 4])).toStrictEqual({ zoomOut: { box: [2, 0, 0, 2, 3, 3] }, cube: null });
  });
});

describe("zoomInPrompt", () => {
  // The window's corner in cropped coordinates, and the part holding ROI data.
  const origin: Vec3 = [0, 1, 2];
  const valid: Box3 = { start: [3, 1, 2], end: [8, 12, 12] };
  const boxTarget: CroppedTarget = { name: "t", box: { lo: [0, 0, 0], hi: [1, 1, 1] }, points: [], hasPoints: false };
  const plan = (cube: PromptPlan["cube"]): PromptPlan => ({ zoomOut: {}, cube });
  const none = [-1, -1, -1, -1, -1, -1];

  it("in a single window, cuts the cube to the valid data and moves it to window coordinates", () => {
    // d: [max(2, 3), min(9, 8 − 1)] = [3, 7] − 0; h: [3, 9] − 1 = [2, 8]; w: [4, 9] − 2 = [2, 7].
    const p = zoomInPrompt(boxTarget, plan({ lo: [2, 3, 4], hi: [9, 9, 9] }), origin, valid, [0, 0, 0, 1, 1, 1], true);
    expect(p).toStrictEqual({ box: [3, 2, 2, 7, 8, 7] });
  });

  it("in a single window, gives the no-box box when the cube misses the valid data or is lost", () => {
    // d: [max(2, 3), min(2, 7)] = [3, 2]: empty.
    expect(zoomInPrompt(boxTarget, plan({ lo: [2, 3, 4], hi: [2, 9, 9] }), origin, valid, null, true)).toStrictEqual({ box: none });
    expect(zoomInPrompt(boxTarget, plan(null), origin, valid, [0, 0, 0, 1, 1, 1], true)).toStrictEqual({ box: none });
  });

  it("with several windows, uses the zoom-out mask's box, or the no-box box", () => {
    const cube = { lo: [2, 3, 4] as Vec3, hi: [9, 9, 9] as Vec3 };
    expect(zoomInPrompt(boxTarget, plan(cube), origin, valid, [1, 2, 3, 4, 5, 6], false)).toStrictEqual({ box: [1, 2, 3, 4, 5, 6] });
    expect(zoomInPrompt(boxTarget, plan(cube), origin, valid, null, false)).toStrictEqual({ box: none });
  });

  it("gives a text-only target its text and nothing else", () => {
    const t: CroppedTarget = { name: "t", text: "spleen", points: [], hasPoints: false };
    expect(zoomInPrompt(t, plan(null), origin, valid, [1, 2, 3, 4, 5, 6], true)).toStrictEqual({ text: "spleen" });
  });

  it("keeps the first five positive points inside the valid data, padded to five with −1 points", () => {
    const pts = (ps: [Vec3, 0 | 1][]): CroppedTarget => ({
      name: "t",
      points: ps.map(([p, label]) => ({ p, label })),
      hasPoints: true,
    });
    const t = pts([
      [[3, 1, 2], 1], // the valid data's first voxel → (3, 0, 0)
      [[8, 5, 5], 1], // d = valid end: outside
      [[4, 4, 4], 0], // negative: zoom-out only
      [[7, 11, 11], 1], // the valid data's last voxel → (7, 10, 9)
    ]);
    const pad = [-1, -1, -1];
    expect(zoomInPrompt(t, plan(null), origin, valid, [1, 2, 3, 4, 5, 6], false)).toStrictEqual({
      box: [1, 2, 3, 4, 5, 6],
      points: { coords: [[3, 0, 0], [7, 10, 9], pad, pad, pad], labels: [1, 1, -1, -1, -1] },
    });
    const seven = pts([0, 1, 2, 3, 4, 5, 6].map((x) => [[3 + (x % 5), 1 + x, 2], 1] as [Vec3, 1]));
    expect(zoomInPrompt(seven, plan(null), origin, valid, null, false).points).toStrictEqual({
      coords: [0, 1, 2, 3, 4].map((x) => [3 + x, x, 0]),
      labels: [1, 1, 1, 1, 1],
    });
    const outside = pts([[[2, 5, 5], 1], [[5, 5, 5], 0]]);
    expect(zoomInPrompt(outside, plan(null), origin, valid, null, false).points).toStrictEqual({ coords: [pad], labels: [-1] });
  });
});

describe("maskBoxInWindow", () => {
  // A full [6, 6, 6] logit volume, the crop starting at (1, 2, 1), the window's
  // valid data the cropped 0..2 on each axis.
  const full: Vec3 = [6, 6, 6];
  const cropStart: Vec3 = [1, 2, 1];
  const valid: Box3 = { start: [0, 0, 0], end: [3, 3, 3] };
  const logits = (positives: Vec3[], zeros: Vec3[] = []) => {
    const l = new Float32Array(216).fill(-1);
    const at = ([d, h, w]: Vec3) => ((d + cropStart[0]) * 6 + h + cropStart[1]) * 6 + w + cropStart[2];
    for (const p of positives) l[at(p)] = 2;
    for (const z of zeros) l[at(z)] = 0;
    return l;
  };

  it("bounds the positive voxels of the valid data, in window coordinates", () => {
    // Positives at cropped (0, 2, 0) and (2, 0, 1): d 0..2, h 0..2, w 0..1; minus origin (0, 1, −1).
    // Outside the valid data (one past its end on each axis) and logit 0 do not count.
    const l = logits([[0, 2, 0], [2, 0, 1], [3, 0, 0], [0, 3, 0], [0, 0, 3]], [[1, 1, 2]]);
    expect(maskBoxInWindow(l, full, cropStart, [0, 1, -1], valid)).toStrictEqual([0, -1, 1, 2, 1, 2]);
  });

  it("handles a mask of one voxel at the valid data's first corner, and an empty mask", () => {
    expect(maskBoxInWindow(logits([[0, 0, 0]]), full, cropStart, [0, 0, 0], valid)).toStrictEqual([0, 0, 0, 0, 0, 0]);
    expect(maskBoxInWindow(logits([], [[0, 0, 0]]), full, cropStart, [0, 0, 0], valid)).toBeNull();
  });
});
