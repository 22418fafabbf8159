// Prompt sampling properties (spec §7) on small synthetic labels, the seeded
// RNG, and parameter freezing.
import { describe, expect, it } from "vitest";
import { selectTrainable } from "../../src/train/freeze.js";
import { labelBox, PROMPT_SETS, promptSets, samplePoints, samplePrompts, SPATIAL_PROMPT_SETS } from "../../src/train/prompts.js";
import { Rng } from "../../src/train/rng.js";
import type { Vec3 } from "../../src/segvol/prompt_encoder.js";

const shape: Vec3 = [5, 7, 9];
const N = 5 * 7 * 9;
const idx = (d: number, h: number, w: number) => (d * 7 + h) * 9 + w;

/** An L-shaped label: a bar plus a corner voxel, bounding box (1,2,3)-(3,5,7). */
function lLabel(): Uint8Array {
  const m = new Uint8Array(N);
  for (let w = 3; w <= 7; w++) m[idx(2, 4, w)] = 1;
  m[idx(1, 2, 3)] = 1;
  m[idx(3, 5, 4)] = 1;
  return m;
}

describe("labelBox", () => {
  it("is the inclusive bounding box, all −1 when empty", () => {
    expect(labelBox(lLabel(), shape)).toEqual([1, 2, 3, 3, 5, 7]);
    expect(labelBox(new Uint8Array(N), shape)).toEqual([-1, -1, -1, -1, -1, -1]);
  });

  it("jitter stays within ±jitter, inside the window, min ≤ max", () => {
    const rng = new Rng(3);
    let moved = false;
    for (let k = 0; k < 200; k++) {
      const b = labelBox(lLabel(), shape, 2, rng);
      const base = [1, 2, 3, 3, 5, 7];
      for (let a = 0; a < 3; a++) {
        expect(b[a]).toBeGreaterThanOrEqual(0);
        expect(b[a + 3]).toBeLessThanOrEqual(shape[a]! - 1);
        expect(b[a]).toBeLessThanOrEqual(b[a + 3]!);
      }
      b.forEach((v, i) => {
        // Clamping and the min/max swap can only move a corner toward the other bound.
        expect(Math.abs(v - base[i]!)).toBeLessThanOrEqual(2 + 4);
        if (v !== base[i]) moved = true;
      });
    }
    expect(moved).toBe(true);
  });

  it("rejects a label of the wrong size", () => {
    expect(() => labelBox(new Uint8Array(10), shape)).toThrow(/labelBox: label has 10 values, shape \[5, 7, 9\] needs 315/);
  });
});

describe("samplePoints", () => {
  it("positives inside, negatives outside, padding to 21 with −1", () => {
    const rng = new Rng(11);
    const m = lLabel();
    const counts = new Set<number>();
    for (let k = 0; k < 100; k++) {
      const { coords, labels } = samplePoints(m, shape, rng);
      expect(coords.length).toBe(21);
      expect(labels.length).toBe(21);
      expect(labels[0]).toBe(1);
      let seenPad = false;
      const pos = new Set<number>(), neg = new Set<number>();
      coords.forEach((c, i) => {
        const l = labels[i]!;
        if (l === -1) {
          seenPad = true;
          expect(c).toEqual([-1, -1, -1]);
          return;
        }
        expect(seenPad).toBe(false); // padding only at the end
        const v = m[idx(...c)]!;
        if (l === 1) {
          expect(v).toBe(1);
          if (i > 0) pos.add(idx(...c));
        } else {
          expect(l).toBe(0);
          expect(v).toBe(0);
          neg.add(idx(...c));
        }
      });
      // Extra positives are distinct voxels (at most the 7 label voxels), negatives too.
      expect(pos.size).toBe(labels.slice(1).filter((l) => l === 1).length);
      expect(pos.size).toBeLessThanOrEqual(7);
      expect(neg.size).toBe(labels.filter((l) => l === 0).length);
      expect(neg.size).toBeLessThanOrEqual(10);
      counts.add(labels.filter((l) => l === 0).length);
    }
    // 0..10 negatives are all drawn over 100 samples.
    expect(counts.size).toBeGreaterThan(8);
  });

  it("an empty label gives a padding first point and negatives only", () => {
    const { coords, labels } = samplePoints(new Uint8Array(N), shape, new Rng(5), { maxExtraNegative: 4, maxExtraPositive: 2 });
    expect(labels.length).toBe(7);
    expect(labels[0]).toBe(-1);
    expect(coords[0]).toEqual([-1, -1, -1]);
    expect(labels.every((l) => l === -1 || l === 0)).toBe(true);
  });

  it("thresholds 0.9 / 0.1 on soft labels", () => {
    const soft = new Float32Array(N).fill(0.5);
    soft[idx(4, 6, 8)] = 0.95;
    soft[idx(0, 0, 0)] = 0.05;
    const rng = new Rng(9);
    for (let k = 0; k < 20; k++) {
      const { coords, labels } = samplePoints(soft, shape, rng);
      coords.forEach((c, i) => {
        if (labels[i] === 1) expect(c).toEqual([4, 6, 8]);
        if (labels[i] === 0) expect(c).toEqual([0, 0, 0]);
      });
    }
  });

  it("is reproducible with a seed and differs across seeds", () => {
    const a = samplePrompts(lLabel(), shape, "liver", new Rng(42), { boxJitter: 3 });
    const b = samplePrompts(lLabel(), shape, "liver", new Rng(42), { boxJitter: 3 });
    const c = samplePrompts(lLabel(), shape, "liver", new Rng(43), { boxJitter: 3 });
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });
});

describe("prompt sets", () => {
  it("six sets with text, three spatial sets without", () => {
    const p = samplePrompts(lLabel(), shape, "spleen", new Rng(1));
    expect(p.sets.map((s) => s.name)).toEqual([...PROMPT_SETS]);
    const byName = Object.fromEntries(p.sets.map((s) => [s.name, s.prompt]));
    expect(byName["text"]).toEqual({ text: "spleen" });
    expect(byName["box"]).toEqual({ box: p.box });
    expect(byName["points+text"]).toEqual({ points: p.points, text: "spleen" });
    expect(byName["box+points"]).toEqual({ box: p.box, points: p.points });
    const spatial = promptSets(p.box, p.points, null);
    expect(spatial.map((s) => s.name)).toEqual([...SPATIAL_PROMPT_SETS]);
    expect(spatial.every((s) => s.prompt.text === undefined)).toBe(true);
  });
});

describe("Rng", () => {
  it("reproduces a sequence from a seed and from a saved state", () => {
    const a = new Rng(7);
    const first = Array.from({ length: 5 }, () => a.u32());
    expect(Array.from({ length: 5 }, () => new Rng(7).u32())[0]).toBe(first[0]);
    const saved = a.state();
    const next = Array.from({ length: 10 }, () => a.float());
    const b = new Rng(0);
    b.setState(saved);
    expect(Array.from({ length: 10 }, () => b.float())).toEqual(next);
    expect(() => b.setState([0, 0, 0, 0])).toThrow(/Rng.setState: expected four u32 words, not all zero/);
  });

  it("below() is uniform enough and int() is inclusive", () => {
    const r = new Rng(1);
    const hist = new Array(6).fill(0);
    for (let k = 0; k < 6000; k++) hist[r.below(6)]++;
    for (const h of hist) expect(Math.abs(h - 1000)).toBeLessThan(150);
    const seen = new Set<number>();
    for (let k = 0; k < 200; k++) seen.add(r.int(-2, 2));
    expect([...seen].sort()).toEqual([-1, -2, 0, 1, 2].sort());
  });

  it("distinct() returns k distinct values in range", () => {
    const r = new Rng(2);
    const v = r.distinct(1_000_000, 50);
    expect(new Set(v).size).toBe(50);
    expect(v.every((x) => x >= 0 && x < 1_000_000)).toBe(true);
    expect(r.distinct(3, 10).sort()).toEqual([0, 1, 2]);
  });
});

describe("selectTrainable", () => {
  const params = ["image_encoder.a", "image_encoder.b", "text_encoder.x", "mask_decoder.y"].map((name) => ({ name }));
  it("freezes by name prefix", () => {
    const { trainable, frozen } = selectTrainable(params, ["text_encoder.", "image_encoder."]);
    expect(trainable.map((p) => p.name)).toEqual(["mask_decoder.y"]);
    expect(frozen.map((p) => p.name)).toEqual(["image_encoder.a", "image_encoder.b", "text_encoder.x"]);
    expect(selectTrainable(params, []).trainable.length).toBe(4);
  });
  it("rejects a prefix that matches nothing", () => {
    expect(() => selectTrainable(params, ["text_encoder"])).not.toThrow();
    expect(() => selectTrainable(params, ["txt_encoder."])).toThrow(/freeze: prefix "txt_encoder." matches no parameter/);
  });
});
