// segvol grow (src/cli/grow.ts, src/train/grow.ts): the demo weights grown
// by three image encoder blocks compute exactly the same logits (the new
// blocks add zero to the residual stream), hold copies of the old blocks'
// other weights, and bad requests are refused, naming the problem.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { growFolder } from "../../src/cli/grow.js";
import { SegVol } from "../../src/segvol/model.js";
import { releaseGpu } from "../../src/tensor/device.js";
import { SafetensorsFile } from "../../src/weights/safetensors.js";

const DEMO = join(__dirname, "..", "..", "weights", "demo");
/** The demo model's image encoder blocks before growing. */
const L: number = JSON.parse(readFileSync(join(DEMO, "config.json"), "utf8")).vit.num_layers;
let dir = "";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "segvol-grow-"));
});

afterAll(() => {
  releaseGpu();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it("a grown model computes the same logits; new blocks copy the old ones with zero residual outputs", async () => {
  const out = join(dir, "grown");
  const r = growFolder({ weights: DEMO, out, vitLayers: L + 3 });
  expect(r.vitLayers).toBe(L + 3);
  expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).vit.num_layers).toBe(L + 3);
  expect(readFileSync(join(out, "vocab.json"), "utf8")).toBe(readFileSync(join(DEMO, "vocab.json"), "utf8"));

  const f = SafetensorsFile.open(join(out, "model.safetensors"));
  const g = SafetensorsFile.open(join(DEMO, "model.safetensors"));
  try {
    // New block L + n takes block n mod L's attention input weights; its output layers are zero.
    expect(f.readF32(`image_encoder.blocks.${L}.attn.qkv.weight`)).toEqual(g.readF32("image_encoder.blocks.0.attn.qkv.weight"));
    expect(f.readF32(`image_encoder.blocks.${L + 1}.norm2.weight`)).toEqual(g.readF32(`image_encoder.blocks.${1 % L}.norm2.weight`));
    for (const k of ["attn.out_proj.weight", "mlp.linear2.bias"]) expect(f.readF32(`image_encoder.blocks.${L + 2}.${k}`).every((v) => v === 0)).toBe(true);
    expect(f.readF32(`image_encoder.blocks.${L - 1}.mlp.linear2.weight`)).toEqual(g.readF32(`image_encoder.blocks.${L - 1}.mlp.linear2.weight`));
  } finally {
    f.close();
    g.close();
  }

  const a = await SegVol.fromWeights(DEMO);
  const b = await SegVol.fromWeights(out);
  try {
    const [D, H, W] = a.config.spatial_size;
    const win = Float32Array.from({ length: D * H * W }, (_, i) => Math.sin(i * 0.017) * 0.5 + 0.5);
    const ea = a.encodeImage(win);
    const eb = b.encodeImage(win);
    for (const prompt of [{ text: "left kidney" }, { box: [2, 10, 12, 20, 40, 44] as [number, number, number, number, number, number] }]) {
      const la = await a.decode(ea, prompt);
      const lb = await b.decode(eb, prompt);
      expect(Array.from(lb)).toEqual(Array.from(la));
    }
  } finally {
    a.dispose();
    b.dispose();
  }
}, 120_000);

it("refuses too few layers, --out equal to --weights and a foreign output folder", () => {
  expect(() => growFolder({ weights: DEMO, out: join(dir, "x"), vitLayers: L })).toThrow(`grow: --vit-layers ${L} must be an integer above the model's ${L} image encoder blocks`);
  expect(() => growFolder({ weights: DEMO, out: DEMO, vitLayers: L + 1 })).toThrow("grow: --out must differ from --weights");
  const foreign = join(dir, "foreign");
  mkdirSync(foreign);
  writeFileSync(join(foreign, "notes.txt"), "mine");
  expect(() => growFolder({ weights: DEMO, out: foreign, vitLayers: L + 1 })).toThrow(/grow: output folder .*foreign is not empty and not a previous segvol grow output/);
  expect(readFileSync(join(foreign, "notes.txt"), "utf8")).toBe("mine");
  expect(() => growFolder({ weights: join(dir, "none"), out: join(dir, "y"), vitLayers: L + 1 })).toThrow(/grow: .*none has no config.json/);
});
