// segmentVolume as a library caller sees it, beyond the NumPy goldens: the
// model and option checks at the boundary, the stages it reports, the timing
// fields (on a clock that the model's encodes and decodes move, and that
// each reading may move a tick further), and the
// result's independence of where the foreground sits (air added before it
// along any axis shifts the result and changes nothing else).
import { describe, expect, it, vi } from "vitest";
import { segmentVolume } from "../../src/segvol/pipeline/segment.js";
import type { SegmentResult, Target, Vec3, WindowPrompt, WindowSegmenter } from "../../src/segvol/pipeline/types.js";
import { FakeSegmenter } from "./fake-segmenter.js";

const WINDOW: Vec3 = [4, 6, 6];
const DIMS: Vec3 = [20, 18, 9];

/** Air (−1000) with a textured block at i 5..14, j 4..13, k 2..6, shifted by `shift` (i, j, k) in a volume grown by it. */
function volume(shift: Vec3 = [0, 0, 0]): { dims: Vec3; data: Float32Array } {
  const dims: Vec3 = [DIMS[0] + shift[0], DIMS[1] + shift[1], DIMS[2] + shift[2]];
  const data = new Float32Array(dims[0] * dims[1] * dims[2]).fill(-1000);
  for (let k = 2; k < 7; k++) {
    for (let j = 4; j < 14; j++) {
      for (let i = 5; i < 15; i++) {
        data[i + shift[0] + dims[0] * (j + shift[1] + dims[1] * (k + shift[2]))] = 40 + ((i * 7 + j * 3 + k * 5) % 23);
      }
    }
  }
  return { dims, data };
}

const targets = (shift: Vec3 = [0, 0, 0]): Target[] => [
  { name: "text", text: "liver" },
  { name: "box", box: [6 + shift[0], 5 + shift[1], 3 + shift[2], 12 + shift[0], 11 + shift[1], 5 + shift[2]] },
  {
    name: "points",
    points: [
      { ijk: [9 + shift[0], 8 + shift[1], 4 + shift[2]], label: 1 },
      { ijk: [13 + shift[0], 5 + shift[1], 2 + shift[2]], label: 0 },
    ],
  },
];

/** A model that wraps the fake one, with `decode`'s output replaced by `change`. */
function wrapped(change: (out: Float32Array, prompt: WindowPrompt, call: number) => unknown): WindowSegmenter & { fake: FakeSegmenter } {
  const fake = new FakeSegmenter(WINDOW);
  let calls = 0;
  return {
    fake,
    spatialSize: WINDOW,
    encode: (w) => fake.encode(w),
    decode: async (e, p) => change(await fake.decode(e, p), p, calls++) as Float32Array,
    release: (e) => fake.release(e),
  };
}

describe("segment: model and option checks", () => {
  const target: Target[] = [{ name: "a", text: "liver" }];

  it("refuses a missing model or a spatialSize that is not three positive integers, printing what it got", async () => {
    const cases: [unknown, string][] = [
      [null, "undefined"],
      [{ spatialSize: "4,6,6" }, '"4,6,6"'],
      [{ spatialSize: [4, 6] }, "[4,6]"],
      [{ spatialSize: [4, 6, 6, 1] }, "[4,6,6,1]"],
      [{ spatialSize: [4, 6.5, 6] }, "[4,6.5,6]"],
      [{ spatialSize: [4, -6, 6] }, "[4,-6,6]"],
    ];
    for (const [model, got] of cases) {
      await expect(segmentVolume(model as WindowSegmenter, volume(), target), got).rejects.toThrow(
        `segment: model.spatialSize must be three positive integers (D, H, W), got ${got}`,
      );
    }
  });

  it("takes an overlap in [0, 1) and refuses anything else", async () => {
    const res = await segmentVolume(new FakeSegmenter(WINDOW), volume(), target, { overlap: 0 });
    expect(res.targets[0]!.zoomIn).not.toBeNull();
    for (const overlap of [-0.1, 1, NaN, "0.5"]) {
      await expect(segmentVolume(new FakeSegmenter(WINDOW), volume(), target, { overlap: overlap as number }), String(overlap)).rejects.toThrow(
        `segment: overlap must be in [0, 1), got ${overlap}`,
      );
    }
  });

  it("names what decode returned when it is not a Float32Array of one window, in either stage", async () => {
    const size = WINDOW[0] * WINDOW[1] * WINDOW[2];
    await expect(segmentVolume(wrapped(() => null), volume(), target)).rejects.toThrow(
      `segment: model.decode for the zoom-out window of "a" returned undefined values, expected a Float32Array of ${size} (one window)`,
    );
    await expect(segmentVolume(wrapped((out) => Array.from(out)), volume(), target)).rejects.toThrow(
      `returned ${size} values, expected a Float32Array of ${size}`,
    );
    // The zoom-out decode is call 0; the first zoom-in decode comes next.
    const model = wrapped((out, _p, call) => (call === 0 ? out : out.subarray(1)));
    await expect(segmentVolume(model, volume(), target)).rejects.toThrow(
      new RegExp(`^segment: model\\.decode for zoom-in window \\S+ of "a" returned ${size - 1} values`),
    );
    expect(model.fake.live.size).toBe(0);
  });
});

describe("segment: progress and timing", () => {
  it("reports each target's zoom-out, then each zoom-in decode, counting up to the total", async () => {
    const seen: [number, number, string][] = [];
    const res = await segmentVolume(new FakeSegmenter(WINDOW), volume(), targets(), { onProgress: (d, t, s) => seen.push([d, t, s]) });
    const n = 3 + res.stats.zoomInWindows;
    expect(res.stats.zoomInWindows).toBeGreaterThan(3);
    expect(seen.map((s) => s[2])).toEqual([...Array(3).fill("zoom-out"), ...Array(n - 3).fill("zoom-in")]);
    expect(seen.map((s) => s[0])).toEqual(seen.map((_, x) => x + 1));
    expect(seen.at(-1)![1]).toBe(n);
  });

  /**
   * Two targets with the same text (so they share every window) on a clock
   * that the model moves, 1 s per encode and 0.25 s per decode, and that
   * each reading moves `tickMs` further. It starts far from 0, so that a
   * sum taken for a difference of readings shows.
   */
  async function timedRun(tickMs: number): Promise<SegmentResult> {
    let ms = 5e6;
    const clock = vi.spyOn(performance, "now").mockImplementation(() => ((ms += tickMs), ms - tickMs));
    const fake = new FakeSegmenter(WINDOW);
    const model: WindowSegmenter = {
      spatialSize: WINDOW,
      encode: async (w) => ((ms += 1000), fake.encode(w)),
      decode: async (e, p) => ((ms += 250), fake.decode(e, p)),
      release: (e) => fake.release(e),
    };
    try {
      return await segmentVolume(model, volume(), [
        { name: "a", text: "liver" },
        { name: "b", text: "liver" },
      ]);
    } finally {
      clock.mockRestore();
    }
  }

  it("splits each encode's time among the targets that share it, and sums the stages into the total", async () => {
    const res = await timedRun(0);
    const w = res.stats.zoomInEncodes;
    expect(w).toBeGreaterThan(1);
    expect(res.stats.zoomInWindows).toBe(2 * w);
    // Zoom-out: one encode and two decodes; zoom-in: per window, one encode and two decodes.
    expect(res.stats.seconds).toEqual({ preprocess: 0, zoomOut: 1.5, zoomIn: 1.5 * w, total: 1.5 * (1 + w) });
    // Each target: its decodes and half of every encode.
    for (const r of res.targets) {
      expect(r.windows, r.name).toBe(1 + w);
      expect(r.seconds, r.name).toBeCloseTo(0.75 * (1 + w), 12);
    }
  });

  it("adds the time of every step it measures for a target, the zoom-in paste too", async () => {
    // Each interval measured is the model's time plus the 1 ms tick of its first reading: per window
    // a decode (0.251 s) and half an encode (1.001 s / 2), then the paste of the zoom-in average (0.001 s).
    const res = await timedRun(1);
    const w = res.stats.zoomInEncodes;
    for (const r of res.targets) expect(r.seconds, r.name).toBeCloseTo((1 + w) * (0.251 + 1.001 / 2) + 0.001, 9);
  });
});

describe("segment: the result does not depend on where the foreground lies", () => {
  it("air added before the foreground along i, j or k shifts every target's logits and zoom-in plan by as much", async () => {
    const base = await segmentVolume(new FakeSegmenter(WINDOW), volume(), targets());
    expect(base.cropBox.start).toEqual([2, 4, 5]); // model (d, h, w) = (k, j, i)
    for (const r of base.targets) {
      expect(r.voxels, r.name).toBeGreaterThan(0);
      expect(r.zoomIn!.windowStarts.length, r.name).toBeGreaterThan(1);
    }
    for (const shift of [[3, 0, 0], [0, 2, 0], [0, 0, 3], [1, 2, 3]] as Vec3[]) {
      const vol = volume(shift);
      const res = await segmentVolume(new FakeSegmenter(WINDOW), vol, targets(shift));
      const [I, J] = vol.dims;
      expect(res.cropBox.start, `${shift}`).toEqual([2 + shift[2], 4 + shift[1], 5 + shift[0]]);
      res.targets.forEach((r, n) => {
        const want = new Float32Array(r.logits.length);
        const from = base.targets[n]!.logits;
        for (let k = 0; k < DIMS[2]; k++) {
          for (let j = 0; j < DIMS[1]; j++) {
            const src = DIMS[0] * (j + DIMS[1] * k);
            want.set(from.subarray(src, src + DIMS[0]), shift[0] + I * (j + shift[1] + J * (k + shift[2])));
          }
        }
        expect(r.logits, `${r.name} shifted by ${shift}`).toEqual(want);
        expect(r.zoomIn, r.name).toEqual(base.targets[n]!.zoomIn);
      });
    }
  });
});
