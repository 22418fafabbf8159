// The TS pipeline against the NumPy/PyTorch reference (tools/pipeline_ref,
// goldens from tools/fixtures/gen_pipeline.py) with the same deterministic
// fake window model on both sides. Crop boxes, ROIs and window positions
// must match exactly; logits within 1e-4 relative (they agree to float32
// rounding: the same float64 formula on the same window pixels).
import { describe, expect, it } from "vitest";
import { preprocess } from "../../src/segvol/pipeline/preprocess.js";
import { segmentVolume } from "../../src/segvol/pipeline/segment.js";
import type { Target, Vec3 } from "../../src/segvol/pipeline/types.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { FakeSegmenter } from "./fake-segmenter.js";

interface RefPlan {
  roi_start: Vec3;
  roi_end: Vec3;
  pad_before: Vec3;
  pad_after: Vec3;
  starts: Vec3[];
}

const CASES = ["thin_k", "long_i", "tall_j", "no_zoom"];

describe("pipeline vs the NumPy reference", () => {
  for (const name of CASES) {
    const c = loadFixture(`pipeline/case_${name}`)[0]!;
    const p = c.params as {
      dims: Vec3;
      spatial: Vec3;
      overlap: number;
      zoom_in: boolean;
      targets: Target[];
      crop_start: Vec3;
      crop_end: Vec3;
      stats: { threshold: number; lo: number; hi: number; mean: number; std: number };
      plans: (RefPlan | null)[];
    };
    const volume = { dims: p.dims, data: c.inputs.volume!.data as Float32Array };

    it(`${name}: preprocessing (dims ${p.dims.join("×")})`, () => {
      const pre = preprocess(volume);
      expect(pre.cropBox).toEqual({ start: p.crop_start, end: p.crop_end });
      expect(pre.stats.threshold).toBe(p.stats.threshold);
      expect(pre.stats.lo).toBe(p.stats.lo);
      expect(pre.stats.hi).toBe(p.stats.hi);
      expect(pre.stats.mean).toBe(p.stats.mean);
      expect(pre.stats.std).toBe(p.stats.std);
      expect(pre.shape).toEqual(c.outputs.crop!.shape);
      expect(relError(pre.data, c.outputs.crop!.data)).toBe(0);
    });

    it(`${name}: zoom-out-zoom-in of ${p.targets.length} targets`, async () => {
      const model = new FakeSegmenter(p.spatial);
      const res = await segmentVolume(model, volume, p.targets, { overlap: p.overlap, zoomIn: p.zoom_in });
      expect(res.cropBox).toEqual({ start: p.crop_start, end: p.crop_end });
      const uniqueWindows = new Set<string>();
      p.targets.forEach((t, n) => {
        const r = res.targets[n]!;
        expect(r.name).toBe(t.name);
        const ref = p.plans[n]!;
        if (ref === null) {
          expect(r.zoomIn).toBeNull();
        } else {
          expect(r.zoomIn).toEqual({
            roi: { start: ref.roi_start, end: ref.roi_end },
            padBefore: ref.pad_before,
            padAfter: ref.pad_after,
            windowStarts: ref.starts,
          });
          // A window's pixels are fixed by its corner in the crop and the ROI part it holds (the rest is padding).
          for (const s of ref.starts) {
            const origin = [0, 1, 2].map((a) => ref.roi_start[a]! - ref.pad_before[a]! + s[a]!);
            const lo = origin.map((o, a) => Math.max(o, ref.roi_start[a]!));
            const hi = origin.map((o, a) => Math.min(o + p.spatial[a]!, ref.roi_end[a]!));
            uniqueWindows.add(`${origin}|${lo}|${hi}`);
          }
          expect(r.windows).toBe(1 + ref.starts.length);
        }
        const want = c.outputs[`logits_${n}`]!.data;
        expect(relError(r.logits, want)).toBeLessThanOrEqual(1e-4);
        let voxels = 0;
        for (let x = 0; x < want.length; x++) {
          if (Math.abs(want[x]!) > 1e-4) expect(r.mask[x]).toBe(want[x]! > 0 ? 1 : 0);
          voxels += r.mask[x]!;
        }
        expect(r.voxels).toBe(voxels);
      });
      // Each distinct window is encoded once for all targets; the zoom-out once for all.
      expect(res.stats.encodes).toBe(1 + uniqueWindows.size);
      expect(model.encodes).toBe(res.stats.encodes);
      expect(model.live.size).toBe(0);
    });
  }
});
