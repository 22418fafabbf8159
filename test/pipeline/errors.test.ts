// Bad inputs fail at the boundary with errors that name the problem.
import { describe, expect, it } from "vitest";
import { segmentVolume } from "../../src/segvol/pipeline/segment.js";
import type { Target, Vec3, WindowPrompt, WindowSegmenter } from "../../src/segvol/pipeline/types.js";
import { FakeSegmenter } from "./fake-segmenter.js";

const WINDOW: Vec3 = [8, 32, 24];
const dims: Vec3 = [20, 18, 9];

/** Air with a bright block in the middle: the crop is the block. */
function volume(): { dims: Vec3; data: Float32Array } {
  const data = new Float32Array(dims[0] * dims[1] * dims[2]).fill(-1000);
  for (let k = 2; k < 7; k++) for (let j = 4; j < 14; j++) for (let i = 5; i < 15; i++) data[i + dims[0] * (j + dims[1] * k)] = 40 + ((i * 7 + j * 3 + k) % 11);
  return { dims, data };
}

const run = (targets: Target[], vol = volume(), model: WindowSegmenter = new FakeSegmenter(WINDOW), opts = {}) =>
  segmentVolume(model, vol, targets, opts);

describe("segment: bad inputs", () => {
  it("NaN voxels", async () => {
    const v = volume();
    v.data[3 + dims[0] * (2 + dims[1] * 1)] = NaN;
    v.data[1000] = Infinity;
    await expect(run([{ name: "a", text: "liver" }], v)).rejects.toThrow(/2 non-finite voxel\(s\).*first is NaN at \(i, j, k\) = \(3, 2, 1\)/);
  });

  it("data that does not fill the dims, and bad dims", async () => {
    await expect(run([{ name: "a", text: "x" }], { dims, data: new Float32Array(10) })).rejects.toThrow(/has 10 values but dims \(20, 18, 9\) need 3240/);
    await expect(run([{ name: "a", text: "x" }], { dims: [4, 4] as unknown as Vec3, data: new Float32Array(16) })).rejects.toThrow(/dims must be three positive integers/);
  });

  it("a constant volume", async () => {
    await expect(run([{ name: "a", text: "x" }], { dims, data: new Float32Array(3240).fill(7) })).rejects.toThrow(/volume is constant/);
  });

  it("a box outside the volume, or inverted", async () => {
    await expect(run([{ name: "liver", box: [0, 0, 0, 20, 5, 5] }])).rejects.toThrow(
      /target 0 "liver": box \(0, 0, 0, 20, 5, 5\) lies outside the volume of dims \(20, 18, 9\)/,
    );
    await expect(run([{ name: "liver", box: [5, 0, 0, 4, 5, 5] }])).rejects.toThrow(/min > max along axis i/);
    await expect(run([{ name: "liver", box: [1, 2, 3] as unknown as Target["box"] }])).rejects.toThrow(/box must be six integers/);
  });

  it("a box entirely outside the foreground crop", async () => {
    await expect(run([{ name: "liver", box: [0, 0, 0, 3, 3, 1] }])).rejects.toThrow(/box \(0, 0, 0, 3, 3, 1\) lies entirely outside the foreground/);
  });

  it("a point with a bad label or outside the volume", async () => {
    const bad = [{ ijk: [6, 6, 3] as Vec3, label: 2 as 0 }];
    await expect(run([{ name: "kidney", points: bad }])).rejects.toThrow(/target 0 "kidney": point 0 has label 2; labels are 1 \(positive\) or 0 \(negative\)/);
    await expect(run([{ name: "kidney", points: [{ ijk: [6, 6, 9], label: 1 }] }])).rejects.toThrow(/point 0 \(6, 6, 9\) lies outside the volume/);
    await expect(run([{ name: "kidney", points: [{ ijk: [0, 0, 0], label: 1 }] }])).rejects.toThrow(/positive point \(0, 0, 0\) lies outside the foreground/);
  });

  it("an empty target, an empty text, no targets", async () => {
    await expect(run([{ name: "a", text: "liver" }, { name: "empty" }])).rejects.toThrow(/target 1 "empty": no prompt \(give a text, a box or at least one point\)/);
    await expect(run([{ name: "a", text: "  " }])).rejects.toThrow(/text prompt is empty/);
    await expect(run([{ name: "a", points: [] }])).rejects.toThrow(/no prompt/);
    await expect(run([])).rejects.toThrow(/no targets given/);
  });

  it("a bad overlap or window size", async () => {
    await expect(run([{ name: "a", text: "x" }], volume(), new FakeSegmenter(WINDOW), { overlap: 1 })).rejects.toThrow(/overlap must be in \[0, 1\), got 1/);
    await expect(run([{ name: "a", text: "x" }], volume(), new FakeSegmenter([8, 0, 4]))).rejects.toThrow(/spatialSize must be three positive integers/);
  });

  it("a model that returns the wrong number of logits, releasing what it encoded", async () => {
    const fake = new FakeSegmenter(WINDOW);
    const model: WindowSegmenter = {
      spatialSize: WINDOW,
      encode: (w) => fake.encode(w),
      decode: async (e, p: WindowPrompt) => (await fake.decode(e, p)).subarray(1),
      release: (e) => fake.release(e),
    };
    await expect(run([{ name: "a", text: "x" }], volume(), model)).rejects.toThrow(/decode for the zoom-out window of "a" returned 6143 values, expected a Float32Array of 6144/);
    expect(fake.live.size).toBe(0);
  });

  it("a model that returns NaN logits", async () => {
    const fake = new FakeSegmenter(WINDOW);
    const model: WindowSegmenter = {
      spatialSize: WINDOW,
      encode: (w) => fake.encode(w),
      decode: async (e, p: WindowPrompt) => {
        const y = await fake.decode(e, p);
        y[77] = NaN;
        return y;
      },
      release: (e) => fake.release(e),
    };
    await expect(run([{ name: "a", text: "x" }], volume(), model)).rejects.toThrow(/returned a non-finite logit \(NaN\) at window index 77/);
    expect(fake.live.size).toBe(0);
  });
});
