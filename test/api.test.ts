// The package entry (src/index.ts, bundled as dist/index.js) exposes what the
// README's "As a library" section names: inference, the engine, formats, and
// training and phantoms from code.
import { describe, expect, it } from "vitest";
import * as api from "../src/index.js";

describe("package entry", () => {
  it("exports the documented functions and classes", () => {
    for (const name of ["SegVol", "readNifti", "writeNifti", "releaseGpu", "initGpu", "Tensor", "scope", "convertCheckpoint", "SafetensorsFile", "train", "MsdDataset", "generatePhantom", "writePhantom", "runDemo", "UnknownCategoryError", "readCategories", "normalizeCategory"] as const) {
      expect(typeof api[name], name).toBe("function");
    }
    expect(typeof api.ops.matmul).toBe("function");
    expect(api.PHANTOM_LABELS).toContain("left kidney");
    expect(api.OFFICIAL_CATEGORIES).toContain("liver");
  });
});
