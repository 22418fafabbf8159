// The pipeline driving the real network: TS SegVol (small config A, weights
// converted from test/fixtures/model/config_a.bin) against the reference
// pipeline driving the PyTorch SegVol reference in float64
// (tools/fixtures/gen_pipeline_model.py). Crop box, ROI and windows must match
// exactly; logits within the model tolerance (1e-3 of the largest logit);
// masks wherever the reference logit is clear of that tolerance.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/segvol/convert.js";
import { SegVol } from "../../src/segvol/model.js";
import type { Target, Vec3 } from "../../src/segvol/pipeline/types.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");
const work = mkdtempSync(join(tmpdir(), "segvol-pipeline-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface RefPlan {
  roi_start: Vec3;
  roi_end: Vec3;
  pad_before: Vec3;
  pad_after: Vec3;
  starts: Vec3[];
}

describe("pipeline with SegVol config A vs the PyTorch reference", () => {
  it("box and point targets: plans exact, logits within 1e-3", async () => {
    const c = loadFixture("pipeline/model_a")[0]!;
    const p = c.params as { dims: Vec3; targets: Target[]; crop_start: Vec3; crop_end: Vec3; plans: RefPlan[] };
    const dir = join(work, "config_a");
    convertCheckpoint({
      checkpoint: join(fixtures, "model", "config_a.bin"),
      outDir: dir,
      config: join(fixtures, "model", "config_a.json"),
    });
    const model = await SegVol.fromWeights(dir);
    try {
      const res = await model.segment({ dims: p.dims, data: c.inputs.volume!.data as Float32Array }, p.targets);
      expect(res.cropBox).toEqual({ start: p.crop_start, end: p.crop_end });
      p.targets.forEach((_, n) => {
        const r = res.targets[n]!;
        const ref = p.plans[n]!;
        expect(r.zoomIn).toEqual({
          roi: { start: ref.roi_start, end: ref.roi_end },
          padBefore: ref.pad_before,
          padAfter: ref.pad_after,
          windowStarts: ref.starts,
        });
        const want = c.outputs[`logits_${n}`]!.data;
        const err = relError(r.logits, want);
        expect(err).toBeLessThanOrEqual(1e-3);
        let scale = 0;
        for (const v of want) scale = Math.max(scale, Math.abs(v));
        let checked = 0;
        for (let x = 0; x < want.length; x++) {
          if (Math.abs(want[x]!) > 1e-3 * scale) {
            expect(r.mask[x]).toBe(want[x]! > 0 ? 1 : 0);
            checked++;
          }
        }
        expect(checked).toBeGreaterThan(want.length / 2);
      });
    } finally {
      model.dispose();
    }
  });
});
