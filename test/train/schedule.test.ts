// The warm-up + cosine schedule against torch's LinearLR / CosineAnnealingLR
// (tools/fixtures/gen_train_schedule.py), 1e-6 relative, plus its edges.
import { describe, expect, it } from "vitest";
import { learningRate } from "../../src/train/schedule.js";
import { loadFixture } from "../helpers/fixtures.js";

const cases = loadFixture("train/schedule");

describe("learningRate", () => {
  for (const c of cases) {
    it(`${c.name} matches torch's schedulers`, () => {
      const o = c.params as { baseLr: number; warmupSteps: number; totalSteps: number; minLr: number };
      const want = c.outputs.lr!.data;
      for (let s = 0; s < want.length; s++) {
        const got = learningRate(s, o);
        expect(Math.abs(got - want[s]!), `step ${s}`).toBeLessThanOrEqual(1e-6 * o.baseLr);
      }
    });
  }

  it("never starts at 0, peaks after warm-up, ends at the floor, stays there", () => {
    const o = { baseLr: 1, warmupSteps: 4, totalSteps: 20, minLr: 0.1 };
    expect(learningRate(0, o)).toBe(0.25);
    expect(learningRate(3, o)).toBe(1);
    expect(learningRate(4, o)).toBe(1);
    expect(learningRate(20, o)).toBeCloseTo(0.1, 12);
    expect(learningRate(500, o)).toBeCloseTo(0.1, 12);
    for (let s = 4; s < 20; s++) expect(learningRate(s + 1, o)).toBeLessThan(learningRate(s, o));
  });

  it("rejects bad options naming them", () => {
    expect(() => learningRate(0, { baseLr: 1, warmupSteps: 5, totalSteps: 3 })).toThrow(/lr schedule: totalSteps must be an integer ≥ warmupSteps/);
    expect(() => learningRate(-1, { baseLr: 1, warmupSteps: 0, totalSteps: 3 })).toThrow(/lr schedule: step must be an integer ≥ 0, got -1/);
    expect(() => learningRate(0, { baseLr: 1, warmupSteps: 0, totalSteps: 3, minLr: 2 })).toThrow(/minLr must be in \[0, baseLr\]/);
  });
});
