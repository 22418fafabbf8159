// SegVol at precision f16 (weights and activations stored in half, the
// arithmetic in f32: src/kernels/precision.ts) against the same float64
// reference goldens as model.test.ts, configs A and B.
// Tolerance (issue 21): every compared tensor — image tokens, text
// embedding, sparse tokens, logits — within 2e-2 · max |ref| (f32 is held
// to 1e-3), and masks (logit > 0) agree on ≥ 99.5 % of voxels. Half's unit
// roundoff is 2^-11 ≈ 4.9e-4 per stored value; a dozen stored activations
// in a row (each block's residual stream, its norms and projections) keep
// the error about an order of magnitude below the bound.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/segvol/convert.js";
import { SegVol } from "../../src/segvol/model.js";
import { releaseGpu } from "../../src/tensor/device.js";
import { writeConfigBWeights } from "../helpers/config_b.js";
import { loadFixture } from "../helpers/fixtures.js";
import { checkCases } from "../helpers/model_goldens.js";

const FIX = join(__dirname, "..", "fixtures", "model");
const F16 = { tol: 2e-2, agreement: 0.995 };

describe("precision f16", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "segvol-f16-"));
    convertCheckpoint({ checkpoint: join(FIX, "config_a.bin"), outDir: join(dir, "a"), config: join(FIX, "config_a.json") });
    mkdirSync(join(dir, "b"));
    writeConfigBWeights(join(dir, "b"));
  });
  afterAll(() => {
    releaseGpu();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [cfg, fixture] of [["a", "model/goldens_a"], ["b", "model/goldens_b"]] as const) {
    it(`config ${cfg.toUpperCase()}: matches the reference within the f16 bounds, its weights and activations stored in f16`, async () => {
      const model = await SegVol.fromWeights(join(dir, cfg), { precision: "f16" });
      try {
        expect(model.precision).toBe("f16");
        // The network really runs in half: its weights and the image tokens are f16 tensors.
        const [name, p] = [...model.network.namedParameters()].find(([n]) => n.endsWith("qkv.weight"))!;
        expect(p.v.value.dtype, name).toBe("f16");
        const emb = model.encodeImage(new Float32Array(model.config.spatial_size.reduce((a, b) => a * b, model.config.in_channels)));
        expect(emb.tokens.dtype).toBe("f16");
        emb.dispose();
        await checkCases(model, loadFixture(fixture), F16);
      } finally {
        model.dispose();
      }
    });
  }

  it("refuses a precision it does not know, naming it", async () => {
    await expect(SegVol.fromWeights(join(dir, "a"), { precision: "f64" as never })).rejects.toThrow(/precision must be "f32" or "f16", got "f64"/);
  });
});
