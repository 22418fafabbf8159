// Sliding-window tiling at its borders, beside the MONAI cases of
// units.test.ts: a scan interval that truncates to 0, a last window that ends
// exactly at the border, a window's geometry where it reaches into the
// padding, the cache key of windows whose numbers read alike when run
// together, and the zeros of a window's padding. Expected values are worked
// out by hand from MONAI's definitions (arithmetic in the comments).
import { describe, expect, it } from "vitest";
import { arrayRows } from "../../src/segvol/pipeline/resize.js";
import type { Box3, Vec3, ZoomInPlan } from "../../src/segvol/pipeline/types.js";
import { axisStarts, extractWindow, scanInterval, windowGeometry } from "../../src/segvol/pipeline/windows.js";

const plan = (roi: Box3, padBefore: Vec3): ZoomInPlan => ({ roi, padBefore, padAfter: [0, 0, 0], windowStarts: [[0, 0, 0]] });

describe("window grid borders", () => {
  it("steps by at least one voxel when window·(1 − overlap) truncates to 0", () => {
    // MONAI: max(int(3 · 0.1), 1) = 1, and int(1 · 0.5) = 0 → 1.
    expect(scanInterval(10, 3, 0.9)).toBe(1);
    expect(scanInterval(10, 1, 0.5)).toBe(1);
    expect(axisStarts(5, 3, scanInterval(5, 3, 0.9))).toEqual([0, 1, 2]);
  });

  it("stops at the window that ends exactly at the border, without a repeated last window", () => {
    // size 10, window 4, interval 3: 0, 3, 6 (6 + 4 = 10 reaches the end).
    expect(axisStarts(10, 4, 3)).toEqual([0, 3, 6]);
    expect(axisStarts(12, 4, 4)).toEqual([0, 4, 8]);
  });
});

describe("windowGeometry", () => {
  it("places a window reaching into the padding and keeps its valid part inside the ROI", () => {
    // Axis 0: origin 2 − 1 + 0 = 1, valid [max(1, 2), min(1 + 6, 6)) = [2, 6);
    // axis 1: origin 3 + 6 = 9, valid [9, min(13, 13)); axis 2: origin 4, valid [4, min(9, 9)).
    const g = windowGeometry(plan({ start: [2, 3, 4], end: [6, 13, 9] }, [1, 0, 0]), [0, 6, 0], [6, 4, 5]);
    expect(g).toStrictEqual({ origin: [1, 9, 4], valid: { start: [2, 9, 4], end: [6, 13, 9] }, key: expect.any(String) });
  });

  it("gives different keys to different windows whose numbers run together alike", () => {
    const window: Vec3 = [20, 20, 5];
    const pairs: [ReturnType<typeof windowGeometry>, ReturnType<typeof windowGeometry>][] = [
      // Origins (1, 12, 3) and (11, 2, 3), both windows holding the same ROI data.
      [
        windowGeometry(plan({ start: [11, 12, 3], end: [13, 14, 5] }, [10, 0, 0]), [0, 0, 0], window),
        windowGeometry(plan({ start: [11, 12, 3], end: [13, 14, 5] }, [0, 10, 0]), [0, 0, 0], window),
      ],
      // Same origin, valid data from (1, 12, 0) and from (11, 2, 0).
      [
        windowGeometry(plan({ start: [1, 12, 0], end: [20, 20, 5] }, [1, 12, 0]), [0, 0, 0], window),
        windowGeometry(plan({ start: [11, 2, 0], end: [20, 20, 5] }, [11, 2, 0]), [0, 0, 0], window),
      ],
      // Same origin and start, valid data up to (1, 12, 5) and to (11, 2, 5).
      [
        windowGeometry(plan({ start: [0, 0, 0], end: [1, 12, 5] }, [0, 0, 0]), [0, 0, 0], window),
        windowGeometry(plan({ start: [0, 0, 0], end: [11, 2, 5] }, [0, 0, 0]), [0, 0, 0], window),
      ],
    ];
    for (const [a, b] of pairs) {
      expect({ origin: a.origin, valid: a.valid }).not.toEqual({ origin: b.origin, valid: b.valid });
      expect(a.key).not.toBe(b.key);
    }
    const again = windowGeometry(plan({ start: [11, 12, 3], end: [13, 14, 5] }, [10, 0, 0]), [0, 0, 0], window);
    expect(again.key).toBe(pairs[0]![0].key);
  });
});

describe("extractWindow", () => {
  it("copies the valid part and leaves the padding zero on every side", () => {
    // A cropped volume [3, 4, 5] of values 1..60; a [4, 4, 6] window at origin (−1, 1, 0):
    // crop d 0..2 → window d 1..3, crop h 1..3 → window h 0..2, crop w 0..4 → window w 0..4.
    const shape: Vec3 = [3, 4, 5], window: Vec3 = [4, 4, 6], origin: Vec3 = [-1, 1, 0];
    const src = Float32Array.from({ length: 60 }, (_, x) => x + 1);
    const valid: Box3 = { start: [0, 1, 0], end: [3, 4, 5] };
    const want = new Float32Array(4 * 4 * 6);
    for (let d = 0; d < 4; d++) for (let h = 0; h < 4; h++) for (let w = 0; w < 6; w++) {
      const [cd, ch, cw] = [d + origin[0], h + origin[1], w + origin[2]];
      const inside = cd >= 0 && cd < 3 && ch >= 1 && ch < 4 && cw < 5;
      want[(d * 4 + h) * 6 + w] = inside ? src[(cd * 4 + ch) * 5 + cw]! : 0;
    }
    expect(extractWindow(arrayRows(src, shape), origin, valid, window)).toEqual(want);
  });
});
