// The package's public API, entry by entry: the root (src/index.ts, the
// model API), `segvol-webgpu/engine` (src/exports/engine.ts), `/train` and
// `/demo`. Each names what the README documents; none leaks a kernel's
// internals; the error classes a caller can catch are exported.
import { describe, expect, it } from "vitest";
import * as demo from "../src/exports/demo.js";
import * as engine from "../src/exports/engine.js";
import * as queue from "../src/exports/queue.js";
import * as train from "../src/exports/train.js";
import * as root from "../src/index.js";

/** Kernel-internal names that the API must not publish (workgroup sizes, tile tables, tuning switches, WGSL). */
const INTERNAL = ["WG", "CHAN", "chooseTile", "variantPipeline", "ACTIVATION_WGSL", "checkActivation", "fail", "checkInputs", "sumTo", "live", "view", "wants"];

function expectFunctions(mod: Record<string, unknown>, names: readonly string[]): void {
  for (const name of names) expect(typeof mod[name], name).toBe("function");
}

describe("package entries", () => {
  it("the root exports the model API and its errors, and nothing of the engine, training or demo", () => {
    expectFunctions(root, ["SegVol", "readNifti", "writeNifti", "decodeNifti", "releaseGpu", "initGpu", "convertCheckpoint", "readCategories", "normalizeCategory", "loadConfig", "ClipTokenizer", "validateWindowPrompt", "readDicomSeries", "listDicomSeries", "writeDicomSeg", "DicomWebClient", "tuneModel", "modelTuneShapes", "loadTunedChoices"]);
    for (const error of ["ShapeError", "UnknownCategoryError", "NiftiError", "NpyError", "SafetensorsError", "CheckpointError", "ConfigError", "ConvertError", "TokenizerError", "DicomError", "GpuUnavailableError", "GpuDeviceLostError"] as const) {
      const E = root[error] as unknown as new (m: string) => Error;
      expect(new E("x"), error).toBeInstanceOf(Error);
    }
    expect(root.OFFICIAL_CATEGORIES).toContain("liver");
    for (const name of ["Tensor", "ops", "train", "runDemo", "generatePhantom", "SafetensorsFile", "gpu", ...INTERNAL]) expect(name in root, name).toBe(false);
  });

  it("the engine exports tensors, ops, the tape, modules and the weights format; ops are explicit and internals stay inside", () => {
    expectFunctions(engine, ["Tensor", "scope", "keep", "initGpu", "gpu", "Var", "param", "constant", "noGrad", "scoped", "backward", "Module", "Linear", "LayerNorm", "MultiHeadAttention", "SafetensorsFile", "writeSafetensors"]);
    expectFunctions(engine.ops, ["matmul", "attention", "layerNorm", "softmax", "conv3d", "convTranspose3d", "resize3d", "patchEmbed", "add", "gelu", "slice", "concat", "reduce"]);
    expectFunctions(engine.grad, ["linear", "matmul", "attention", "layerNorm", "convTranspose3d", "resize3d", "add", "gelu", "gather"]);
    for (const name of INTERNAL) {
      expect(name in engine, name).toBe(false);
      expect(name in engine.ops, `ops.${name}`).toBe(false);
      expect(name in engine.grad, `grad.${name}`).toBe(false);
    }
    // One class per concept across entries: an error caught from the root is the engine's.
    expect(engine.ShapeError).toBe(root.ShapeError);
    expect(engine.initGpu).toBe(root.initGpu);
  });

  it("training, the demo and the job queue have their own entries", () => {
    expectFunctions(queue, ["parseJob", "submitJobs", "followJobs", "queueStatus", "formatStatus", "startQueueWorker", "connectRedis", "JobInputError"]);
    expectFunctions(train, ["train", "trainStep", "TrainableSegVol", "MsdDataset", "AdamW", "SGD", "diceBceLoss", "initWeights", "Rng"]);
    expectFunctions(demo, ["generatePhantom", "writePhantom", "runDemo"]);
    expect(demo.PHANTOM_LABELS).toContain("left kidney");
  });
});
