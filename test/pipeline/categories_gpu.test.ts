// SegVol.segment refuses a text prompt outside the weights folder's
// categories before any work, unless open-vocabulary use is asked for. On the
// GPU, so apart from categories.test.ts and the mutation run.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generatePhantom } from "../../src/demo/phantom.js";
import { UnknownCategoryError } from "../../src/segvol/categories.js";
import { SegVol } from "../../src/segvol/model.js";
import type { Vec3 } from "../../src/segvol/pipeline/types.js";
import { useGpu } from "../helpers/gpu.js";

const DEMO = join(__dirname, "..", "..", "weights", "demo");

describe("SegVol.segment with text prompts", () => {
  useGpu();
  const ph = generatePhantom(7, { dims: [48, 48, 24] });
  const dims: Vec3 = ph.dims;
  const data = Float32Array.from(ph.image);

  it("refuses a text outside the folder's list before any work, and runs a listed or allowed one", async () => {
    const model = await SegVol.fromWeights(DEMO);
    try {
      let progress = 0;
      const refused = model.segment({ dims, data }, [{ name: "p", text: "pancreas" }], { onProgress: () => progress++ });
      await expect(refused).rejects.toThrow(UnknownCategoryError);
      await expect(refused).rejects.toThrow(/known categories: liver, spleen, left kidney, right kidney/);
      expect(progress).toBe(0);
      const r = await model.segment({ dims, data }, [{ name: "liver", text: " LIVER " }, { name: "banana", text: "banana" }], { zoomIn: false, allowUnknownText: true });
      expect(r.targets.map((t) => t.name)).toEqual(["liver", "banana"]);
      expect(model.categories).toEqual(["liver", "spleen", "left kidney", "right kidney"]);
    } finally {
      model.dispose();
    }
  });
});
