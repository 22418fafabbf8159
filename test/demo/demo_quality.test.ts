// The shipped demo model (weights/demo) on three held-out phantoms, through
// the whole demo path (zoom-out-zoom-in, the text label map, box and points).
//
// These are REGRESSION FLOORS of the model as shipped, not issue 7's targets
// (text and box ≥ 0.90, points ≥ 0.85 over 20 phantoms): the README's table
// (`npm run eval:demo`) has its 20-phantom means. Each floor is the shipped
// model's mean over these three seeds (measured on lavapipe) minus 0.05,
// rounded down to 0.01, and a reship never lowers a floor. So a kernel,
// pipeline or loader change that damages the masks fails here, while
// run-to-run rounding on another adapter does not. Seeds 5000+ are outside the training
// seeds 1000-1191. Retrain or reship → measure again and move the floors up.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runDemo, type DemoTargetResult } from "../../src/demo/demo.js";
import { demoWeightsDir } from "../../src/node/package_files.js";

const SEEDS = [5000, 5001, 5002];
/**
 * Measured means over SEEDS (the twelve-stage model of 2026-11-30, 48500
 * steps, 18 image encoder blocks): text liver 0.957, spleen 0.918, left
 * kidney 0.924, right kidney 0.918; box 0.957; points 0.910 (its floor stays
 * at 0.86, set by the eleven-stage model's 0.919).
 */
const FLOORS: { prompt: DemoTargetResult["prompt"]; name: string; floor: number }[] = [
  { prompt: "text", name: "liver", floor: 0.9 },
  { prompt: "text", name: "spleen", floor: 0.86 },
  { prompt: "text", name: "left kidney", floor: 0.87 },
  { prompt: "text", name: "right kidney", floor: 0.86 },
  { prompt: "box", name: "liver", floor: 0.9 },
  { prompt: "points", name: "spleen", floor: 0.86 },
];
const tmp = mkdtempSync(join(tmpdir(), "segvol-demo-quality-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("shipped demo model on held-out phantoms", () => {
  it(`keeps its measured Dice on seeds ${SEEDS.join(", ")}`, async () => {
    const all: DemoTargetResult[] = [];
    for (const seed of SEEDS) {
      const r = await runDemo({ weights: demoWeightsDir(), out: join(tmp, String(seed)), seed });
      all.push(...r.targets);
    }
    for (const { prompt, name, floor } of FLOORS) {
      const ds = all.filter((t) => t.prompt === prompt && t.name === name).map((t) => t.dice);
      expect(ds, `${prompt}:${name}`).toHaveLength(SEEDS.length);
      const mean = ds.reduce((a, b) => a + b, 0) / ds.length;
      expect(mean, `${prompt}:${name} mean Dice over seeds ${SEEDS.join(", ")}`).toBeGreaterThanOrEqual(floor);
    }
  }, 300_000);
});
