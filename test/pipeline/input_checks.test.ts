// What segment refuses from a library caller before any work: volumes that
// are not 3-D arrays of finite voxels, and targets without a name or prompt,
// or with boxes and points that are malformed or outside the volume. Each
// boundary is checked on both sides (the last valid index and one past it).
import { describe, expect, it } from "vitest";
import { checkVolume } from "../../src/segvol/pipeline/preprocess.js";
import { checkTargets } from "../../src/segvol/pipeline/prompts.js";
import type { Target, Vec3, Volume } from "../../src/segvol/pipeline/types.js";

const dims: Vec3 = [4, 5, 6];
const volume = (d: unknown, data: unknown = new Float32Array(120)): Volume => ({ dims: d, data } as Volume);

describe("checkVolume", () => {
  it("accepts every voxel type it names, at 2 or more voxels per axis", () => {
    for (const data of [new Float32Array(8), new Int16Array(8), new Uint16Array(8), new Int8Array(8), new Uint8Array(8)]) {
      expect(() => checkVolume(volume([2, 2, 2], data)), data.constructor.name).not.toThrow();
    }
  });

  it("refuses dims that are not three positive integers", () => {
    for (const d of [[4, 5], [4, 5, 6, 1], [4, 0, 6], [4, -5, 6], [4, 5.5, 6], "4,5,6", null]) {
      expect(() => checkVolume(volume(d)), JSON.stringify(d)).toThrow(`segment: volume dims must be three positive integers (I, J, K), got ${JSON.stringify(d)}`);
    }
  });

  it("refuses a 2-D image, whichever axis is 1", () => {
    for (const d of [[1, 5, 6], [4, 1, 6], [4, 5, 1]]) {
      expect(() => checkVolume(volume(d, new Float32Array(d[0]! * d[1]! * d[2]!)))).toThrow(`segment: the image is 2-D (dims ${d.join("×")})`);
    }
  });

  it("refuses other arrays and a wrong length", () => {
    for (const data of [new Float64Array(120), new Int32Array(120), Array(120).fill(0)]) {
      expect(() => checkVolume(volume(dims, data))).toThrow(/volume data must be a Float32Array, Int16Array, Uint16Array, Int8Array or Uint8Array/);
    }
    expect(() => checkVolume(volume(dims, new Float32Array(119)))).toThrow("segment: volume data has 119 values but dims (4, 5, 6) need 120");
  });

  it("names the first non-finite voxel by (i, j, k) and counts them all", () => {
    const data = new Float32Array(120);
    data[1 + 4 * 2 + 20 * 3] = NaN; // (1, 2, 3)
    data[119] = -Infinity;
    expect(() => checkVolume(volume(dims, data))).toThrow(
      "segment: the volume has 2 non-finite voxel(s) (NaN or ±Inf); the first is NaN at (i, j, k) = (1, 2, 3)",
    );
    const last = new Float32Array(120);
    last[119] = Infinity;
    expect(() => checkVolume(volume(dims, last))).toThrow("1 non-finite voxel(s) (NaN or ±Inf); the first is Infinity at (i, j, k) = (3, 4, 5)");
  });
});

describe("checkTargets", () => {
  const check = (t: unknown) => () => checkTargets([t as Target], dims);

  it("accepts a text, a box or points, up to the last voxel", () => {
    expect(check({ name: "a", text: "liver" })).not.toThrow();
    expect(check({ name: "a", box: [0, 0, 0, 3, 4, 5] })).not.toThrow();
    expect(check({ name: "a", points: [{ ijk: [3, 4, 5], label: 1 }, { ijk: [0, 0, 0], label: 0 }] })).not.toThrow();
    expect(check({ name: "a", box: [2, 2, 2, 2, 2, 2] })).not.toThrow();
  });

  it("refuses no targets, a target without a name, an empty text and no prompt", () => {
    expect(() => checkTargets([], dims)).toThrow("segment: no targets given");
    for (const t of [{ text: "liver" }, { name: "", text: "liver" }, { name: 7, text: "liver" }, null]) {
      expect(check(t), JSON.stringify(t)).toThrow("segment: target 0 has no name");
    }
    expect(check({ name: "a", text: "  " })).toThrow('segment: target 0 "a": text prompt is empty');
    for (const t of [{ name: "a" }, { name: "a", points: [] }]) {
      expect(check(t), JSON.stringify(t)).toThrow('segment: target 0 "a": no prompt (give a text, a box or at least one point)');
    }
  });

  it("refuses boxes that are not six integers, inverted, or outside the volume on any axis", () => {
    for (const box of [[0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1.5], "0,0,0,1,1,1"]) {
      expect(check({ name: "a", box }), JSON.stringify(box)).toThrow(/box must be six integers \(i0, j0, k0, i1, j1, k1\)/);
    }
    for (const [a, box] of [["i", [2, 0, 0, 1, 1, 1]], ["j", [0, 2, 0, 1, 1, 1]], ["k", [0, 0, 2, 1, 1, 1]]] as const) {
      expect(check({ name: "a", box }), a).toThrow(`has min > max along axis ${a}`);
    }
    for (const box of [[-1, 0, 0, 1, 1, 1], [0, -1, 0, 1, 1, 1], [0, 0, -1, 1, 1, 1], [0, 0, 0, 4, 1, 1], [0, 0, 0, 1, 5, 1], [0, 0, 0, 1, 1, 6]]) {
      expect(check({ name: "a", box }), JSON.stringify(box)).toThrow(`lies outside the volume of dims (4, 5, 6) (valid indices 0..dim−1)`);
    }
  });

  it("refuses points that are not three integers, outside the volume on any axis, or with another label", () => {
    for (const ijk of [[1, 1], [1, 1, 1, 1], [1, 1.5, 1], undefined]) {
      expect(check({ name: "a", points: [{ ijk, label: 1 }] }), JSON.stringify(ijk)).toThrow(
        /segment: target 0 "a": point 0 must have three integer indices \(i, j, k\)/,
      );
    }
    for (const ijk of [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [4, 0, 0], [0, 5, 0], [0, 0, 6]]) {
      expect(check({ name: "a", points: [{ ijk, label: 1 }] }), JSON.stringify(ijk)).toThrow(
        `segment: target 0 "a": point 0 (${ijk.join(", ")}) lies outside the volume of dims (4, 5, 6)`,
      );
    }
    for (const label of [2, -1, "1", undefined]) {
      expect(check({ name: "a", points: [{ ijk: [0, 0, 0], label }] }), String(label)).toThrow(
        `segment: target 0 "a": point 0 has label ${JSON.stringify(label)}; labels are 1 (positive) or 0 (negative)`,
      );
    }
  });
});
