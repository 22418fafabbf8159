// percentile.ts at its edges, beside the NumPy goldens of units.test.ts: the
// quickselect's pivot, q at and past [0, 100], the interpolation at exactly
// half way (NumPy's _lerp switches to the upper neighbour there), the
// caller's scratch array and the one-q form.
import { describe, expect, it } from "vitest";
import { medianOfThree, percentile, percentiles } from "../../src/segvol/pipeline/percentile.js";

describe("medianOfThree", () => {
  it("gives the middle value for every order of three values, ties included", () => {
    for (const set of [[1, 2, 3], [1, 1, 2], [1, 2, 2], [2, 2, 2], [-5, 0, 7]]) {
      const middle = set[1]!;
      for (const [a, b, c] of [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]) {
        expect(medianOfThree(set[a!]!, set[b!]!, set[c!]!), `${set[a!]}, ${set[b!]}, ${set[c!]}`).toBe(middle);
      }
    }
  });
});

describe("percentiles at the edges", () => {
  it("accepts q = 0 and 100 (the extremes) and refuses q below 0 or NaN", () => {
    const v = Float32Array.from([3, -1, 7, 2]);
    expect(percentiles(v, [0, 100])).toEqual([-1, 7]);
    for (const q of [-0.5, NaN]) expect(() => percentiles(v, [q]), String(q)).toThrow(`percentile: q = ${q} is outside [0, 100]`);
  });

  it("interpolates from the upper neighbour at exactly half way, as NumPy's _lerp does", () => {
    // Two values, q = 50: the fraction is 0.5. diff = f32(1e8 − 0.1) = 1e8, so the upper form gives
    // 1e8 − 1e8·0.5 = 5e7 exactly, while the lower form would give f32(0.1) + 5e7 = 50000000.1.
    expect(percentiles(Float32Array.from([1e8, 0.1]), [50])).toEqual([5e7]);
    expect(percentile(Float32Array.from([0.1, 1e8]), 50)).toBe(5e7);
  });

  it("selects in the scratch array it is given, which must have the values' length", () => {
    const values = Float32Array.from({ length: 40 }, (_, x) => (x * 17) % 40); // 0..39, shuffled
    const scratch = values.slice();
    expect(percentile(values, 25, scratch)).toBe(9.75); // (40 − 1)·0.25 = 9.75: between 9 and 10
    expect(scratch).not.toEqual(values); // reordered: the selection ran in it
    expect(Array.from(scratch).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, x) => x));
    expect(() => percentiles(values, [50], new Float32Array(39))).toThrow("percentile: scratch has 39 values, need 40");
  });
});
