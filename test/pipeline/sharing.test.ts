// Many targets at once: one zoom-out encode for all, each distinct zoom-in
// window encoded once, embeddings released as soon as their last user is
// done, and results identical to segmenting each target on its own.
import { describe, expect, it } from "vitest";
import { segmentVolume } from "../../src/segvol/pipeline/segment.js";
import type { Target, Vec3, WindowSegmenter } from "../../src/segvol/pipeline/types.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { FakeSegmenter } from "./fake-segmenter.js";

const c = loadFixture("pipeline/case_long_i")[0]!;
const dims = c.params.dims as Vec3;
const volume = { dims, data: c.inputs.volume!.data as Float32Array };
const WINDOW = c.params.spatial as Vec3;

describe("many targets share encodes", () => {
  it("4 categories with the same text-only ROI: 1 + w encodes instead of 4·(1 + w)", async () => {
    const targets: Target[] = ["a", "b", "c", "d"].map((name) => ({ name, text: "liver" }));
    const model = new FakeSegmenter(WINDOW);
    const progress: [number, number, string][] = [];
    const res = await segmentVolume(model, volume, targets, { onProgress: (d, t, s) => progress.push([d, t, s]) });
    const w = res.targets[0]!.zoomIn!.windowStarts.length;
    expect(w).toBeGreaterThan(1);
    expect(res.stats.encodes).toBe(1 + w);
    expect(res.stats.zoomInEncodes).toBe(w);
    expect(res.stats.zoomInWindows).toBe(4 * w);
    expect(res.stats.decodes).toBe(4 * (1 + w));
    expect(model.encodes).toBe(1 + w);
    expect(model.peak).toBe(1); // one embedding alive at a time
    expect(model.live.size).toBe(0);
    for (const r of res.targets) expect(Array.from(r.logits)).toEqual(Array.from(res.targets[0]!.logits));
    expect(progress.at(-1)).toEqual([4 * (1 + w), 4 * (1 + w), "zoom-in"]);
    expect(progress.map((p) => p[0])).toEqual(progress.map((_, n) => n + 1));
  });

  it("different targets together give the same logits as one at a time", async () => {
    const targets = c.params.targets as Target[];
    const together = await segmentVolume(new FakeSegmenter(WINDOW), volume, targets);
    let alone = 0;
    for (const [n, t] of targets.entries()) {
      const model = new FakeSegmenter(WINDOW);
      const r = await segmentVolume(model, volume, [t]);
      alone += model.encodes;
      expect(relError(together.targets[n]!.logits, r.targets[0]!.logits)).toBeLessThanOrEqual(1e-6);
      expect(together.targets[n]!.zoomIn).toEqual(r.targets[0]!.zoomIn);
    }
    expect(together.stats.encodes).toBeLessThan(alone);
  });

  it("no foreground in the zoom-out: the zoom-out result stands, no zoom-in windows", async () => {
    const fake = new FakeSegmenter(WINDOW);
    const model: WindowSegmenter = {
      spatialSize: WINDOW,
      encode: (w) => fake.encode(w),
      decode: async () => new Float32Array(WINDOW[0] * WINDOW[1] * WINDOW[2]).fill(-3),
      release: (e) => fake.release(e),
    };
    const res = await segmentVolume(model, volume, [{ name: "none", text: "liver" }]);
    const r = res.targets[0]!;
    expect(r.zoomIn).toBeNull();
    expect(r.windows).toBe(1);
    expect(r.voxels).toBe(0);
    expect(res.stats.encodes).toBe(1);
    // Inside the crop the logits are the zoom-out's −3, outside 0.
    const [s, e] = [res.cropBox.start, res.cropBox.end];
    let inside = 0;
    for (let x = 0; x < r.logits.length; x++) {
      const i = x % dims[0], j = Math.floor(x / dims[0]) % dims[1], k = Math.floor(x / (dims[0] * dims[1]));
      const inCrop = k >= s[0] && k < e[0] && j >= s[1] && j < e[1] && i >= s[2] && i < e[2];
      expect(r.logits[x]).toBe(inCrop ? -3 : 0);
      inside += inCrop ? 1 : 0;
    }
    expect(inside).toBe((e[0] - s[0]) * (e[1] - s[1]) * (e[2] - s[2]));
  });
});
