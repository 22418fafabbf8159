// The MSD dataset on tiny synthetic NIfTI files written here: pairing and
// errors, the spec's preprocessing applied to image and label alike, and the
// window sampler's resize / crop / pad / flip / intensity paths checked
// voxel by voxel against the preprocessed volume.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { niftiFromArray, writeNifti } from "../../src/io/nifti.js";
import { preprocess } from "../../src/segvol/pipeline/preprocess.js";
import type { Vec3 } from "../../src/segvol/pipeline/types.js";
import { foregroundByLabel, listMsdCases, MsdDataset, type PreparedCase, prepareCase, sampleWindow } from "../../src/train/data.js";
import { Rng } from "../../src/train/rng.js";

// NIfTI dims (I, J, K) = (20, 18, 10) → model space (D, H, W) = (10, 18, 20).
const I = 20, J = 18, K = 10;
const BODY = { lo: [1, 3, 2] as Vec3, hi: [8, 14, 17] as Vec3 }; // model space, inclusive
const CROP: Vec3 = [8, 12, 16];
const A = { lo: [2, 5, 4], hi: [4, 8, 9] }; // label 1 ("a")
const B = { lo: [5, 9, 10], hi: [7, 12, 15] }; // label 2 ("b")
const inBox = (b: { lo: number[]; hi: number[] }, d: number, h: number, w: number) =>
  d >= b.lo[0]! && d <= b.hi[0]! && h >= b.lo[1]! && h <= b.hi[1]! && w >= b.lo[2]! && w <= b.hi[2]!;

function synth(seed: number): { image: Float32Array; label: Float32Array } {
  const image = new Float32Array(I * J * K);
  const label = new Float32Array(I * J * K);
  for (let k = 0; k < K; k++) {
    for (let j = 0; j < J; j++) {
      for (let i = 0; i < I; i++) {
        const [d, h, w] = [k, j, i];
        const x = i + I * (j + J * k);
        if (inBox(BODY, d, h, w)) {
          const face = [d, h, w].some((v, a) => v === BODY.lo[a] || v === BODY.hi[a]);
          image[x] = face ? 200 : 150 + 40 * Math.sin(i * 1.3 + j * 0.7 + k * 0.3 + seed);
        }
        label[x] = inBox(A, d, h, w) ? 1 : inBox(B, d, h, w) ? 2 : 0;
      }
    }
  }
  return { image, label };
}

let dir = "";
const vols: Record<string, ReturnType<typeof synth>> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "msd-"));
  mkdirSync(join(dir, "imagesTr"));
  mkdirSync(join(dir, "labelsTr"));
  for (const [name, seed] of [["case_001", 0], ["case_002", 1]] as const) {
    const v = synth(seed);
    vols[name] = v;
    writeNifti(join(dir, "imagesTr", `${name}.nii.gz`), niftiFromArray([I, J, K], v.image), v.image, "float32");
    writeNifti(join(dir, "labelsTr", `${name}.nii.gz`), niftiFromArray([I, J, K], v.label), v.label, "uint8");
  }
  writeFileSync(join(dir, "imagesTr", "._case_001.nii.gz"), "macOS resource fork");
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const NO_AUG = { flipProb: 0, scaleProb: 0, shiftProb: 0 };

/** The preprocessed image of case 1 (the independent expectation) and label value at a cropped voxel. */
function expected(name: string) {
  const v = vols[name]!;
  const pre = preprocess({ dims: [I, J, K], data: v.image });
  const labelAt = (d: number, h: number, w: number) => {
    const [D0, H0, W0] = BODY.lo;
    return v.label[w + W0 + I * (h + H0 + J * (d + D0))]!;
  };
  return { pre, labelAt };
}

describe("MSD dataset", () => {
  it("pairs images with labels, skipping macOS resource files", () => {
    const cases = listMsdCases(dir);
    expect(cases.map((c) => c.name)).toEqual(["case_001", "case_002"]);
    expect(cases[0]!.label).toBe(join(dir, "labelsTr", "case_001.nii.gz"));
  });

  it("names a missing label and a missing folder", () => {
    const bad = mkdtempSync(join(tmpdir(), "msd-bad-"));
    try {
      expect(() => listMsdCases(bad)).toThrow(/imagesTr is not a folder/);
      mkdirSync(join(bad, "imagesTr"));
      mkdirSync(join(bad, "labelsTr"));
      const v = synth(0);
      writeNifti(join(bad, "imagesTr", "x.nii.gz"), niftiFromArray([I, J, K], v.image), v.image, "float32");
      expect(() => listMsdCases(bad)).toThrow(/x.nii.gz has no label .*labelsTr\/x.nii.gz/);
      writeNifti(join(bad, "labelsTr", "x.nii.gz"), niftiFromArray([I, J, K], v.label), v.label, "uint8");
      // Label value 2 with a single category is an error naming the voxel.
      expect(() => prepareCase(listMsdCases(bad)[0]!, 1, CROP)).toThrow(/label .*x.nii.gz has value 2 at \(i, j, k\) = \(10, 9, 5\); expected integers 0..1/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it("whole-volume resize at the cropped size is the preprocessed volume and its labels", () => {
    const { pre, labelAt } = expected("case_001");
    expect(pre.cropBox.start).toEqual(BODY.lo);
    expect(pre.shape).toEqual(CROP);
    const ds = new MsdDataset(dir, { categories: ["a", "b"], spatialSize: CROP, augment: { ...NO_AUG, resizeProb: 1 } });
    const win = ds.sample(new Rng(1), 0);
    expect(win.mode).toBe("resize");
    expect(win.image).toEqual(pre.data);
    const a = win.labels.get("a")!, b = win.labels.get("b")!;
    let i = 0, na = 0;
    for (let d = 0; d < CROP[0]; d++) {
      for (let h = 0; h < CROP[1]; h++) {
        for (let w = 0; w < CROP[2]; w++, i++) {
          expect(a[i]).toBe(labelAt(d, h, w) === 1 ? 1 : 0);
          expect(b[i]).toBe(labelAt(d, h, w) === 2 ? 1 : 0);
          na += a[i]!;
        }
      }
    }
    expect(na).toBe(3 * 4 * 6);
  });

  it("downsizing: nearest-exact labels, trilinear image on request", () => {
    const { pre } = expected("case_001");
    const small: Vec3 = [4, 6, 8];
    const c = prepareCase(listMsdCases(dir)[0]!, 2, small);
    const win = sampleWindow(c, ["a", "b"], small, new Rng(2), { ...NO_AUG, resizeProb: 1, imageResize: "trilinear" });
    // Halving every axis: nearest-exact takes source 2k+1; trilinear averages 2k and 2k+1.
    const at = (d: number, h: number, w: number) => pre.data[(d * CROP[1] + h) * CROP[2] + w]!;
    for (const [d, h, w] of [[0, 0, 0], [1, 2, 3], [3, 5, 7]] as Vec3[]) {
      let avg = 0;
      for (const dd of [0, 1]) for (const hh of [0, 1]) for (const ww of [0, 1]) avg += at(2 * d + dd, 2 * h + hh, 2 * w + ww) / 8;
      expect(win.image[(d * 6 + h) * 8 + w]).toBeCloseTo(avg, 5);
    }
    const near = sampleWindow(c, ["a", "b"], small, new Rng(2), { ...NO_AUG, resizeProb: 1 });
    expect(near.image[(1 * 6 + 2) * 8 + 3]).toBe(at(3, 5, 7));
  });

  it("crops centred on foreground contain foreground and equal the volume at their origin", () => {
    const { pre, labelAt } = expected("case_001");
    const win: Vec3 = [4, 6, 6];
    const ds = new MsdDataset(dir, { categories: ["a", "b"], spatialSize: win, augment: { ...NO_AUG, resizeProb: 0, posFraction: 1 } });
    const rng = new Rng(3);
    for (let k = 0; k < 10; k++) {
      const s = ds.sample(rng, 0);
      expect(s.mode).toBe("crop");
      let fg = 0, i = 0;
      const [o0, o1, o2] = s.origin;
      for (let d = 0; d < win[0]; d++) {
        for (let h = 0; h < win[1]; h++) {
          for (let w = 0; w < win[2]; w++, i++) {
            expect(s.image[i]).toBe(pre.data[((o0 + d) * CROP[1] + o1 + h) * CROP[2] + o2 + w]);
            const l = labelAt(o0 + d, o1 + h, o2 + w);
            expect(s.labels.get("a")![i]).toBe(l === 1 ? 1 : 0);
            fg += s.labels.get("a")![i]! + s.labels.get("b")![i]!;
          }
        }
      }
      expect(fg).toBeGreaterThan(0);
    }
  });

  it("pads symmetrically with zeros up to the window", () => {
    const { pre } = expected("case_001");
    const big: Vec3 = [10, 12, 20]; // +2 on D (1 before), +4 on W (2 before)
    const ds = new MsdDataset(dir, { categories: ["a", "b"], spatialSize: big, augment: { ...NO_AUG, resizeProb: 1 } });
    const s = ds.sample(new Rng(4), 0);
    expect(s.image[0]).toBe(0);
    expect(s.image[(1 * 12 + 0) * 20 + 2]).toBe(pre.data[0]);
    expect(s.image[(8 * 12 + 11) * 20 + 17]).toBe(pre.data[pre.data.length - 1]);
    expect(s.image[(9 * 12 + 11) * 20 + 19]).toBe(0);
  });

  it("flips and intensity jitter are applied on top of the same draws", () => {
    const c = prepareCase(listMsdCases(dir)[1]!, 2, CROP);
    const base = sampleWindow(c, ["a", "b"], CROP, new Rng(5), { ...NO_AUG, resizeProb: 1 });
    const flip = sampleWindow(c, ["a", "b"], CROP, new Rng(5), { ...NO_AUG, resizeProb: 1, flipProb: 1 });
    expect(flip.flips).toEqual([true, true, true]);
    const [D, H, W] = CROP;
    for (let d = 0; d < D; d++) {
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++) {
          const src = (d * H + h) * W + w, dst = ((D - 1 - d) * H + H - 1 - h) * W + W - 1 - w;
          expect(flip.image[dst]).toBe(base.image[src]);
          expect(flip.labels.get("b")![dst]).toBe(base.labels.get("b")![src]);
        }
      }
    }
    const jit = sampleWindow(c, ["a", "b"], CROP, new Rng(5), { resizeProb: 1, flipProb: 0, scaleProb: 1, shiftProb: 1 });
    expect(Math.abs(jit.scale - 1)).toBeLessThanOrEqual(0.1);
    expect(Math.abs(jit.shift)).toBeLessThanOrEqual(0.1);
    expect(jit.shift).not.toBe(0);
    for (let i = 0; i < base.image.length; i += 37) expect(jit.image[i]).toBeCloseTo(base.image[i]! * jit.scale + jit.shift, 6);
  });

  it("is reproducible from a seed", () => {
    const ds = new MsdDataset(dir, { categories: ["a", "b"], spatialSize: [4, 6, 6] });
    const a = [0, 1, 2].map(() => ds.sample(new Rng(77)));
    const r1 = new Rng(78), r2 = new Rng(78);
    const s1 = Array.from({ length: 4 }, () => ds.sample(r1));
    const s2 = Array.from({ length: 4 }, () => ds.sample(r2));
    expect(a[1]).toEqual(a[0]);
    expect(s2).toEqual(s1);
    expect(() => new MsdDataset(dir, { categories: ["a", "a"], spatialSize: [4, 6, 6] })).toThrow(/duplicate category names/);
  });

  it("keeps prepared cases within cacheBytes (least recently used evicted) without changing the windows", () => {
    const cats = ["a", "b"];
    const opts = { categories: cats, spatialSize: [4, 6, 6] as Vec3 };
    // One prepared case: 8·12·16 voxels of f32 image + u8 label + i32 foreground indices.
    const all = new MsdDataset(dir, opts);
    const one = new MsdDataset(dir, { ...opts, cacheBytes: 1 });
    const c0 = all.prepared(0);
    expect(all.prepared(0)).toBe(c0); // cached: the same object
    all.prepared(1);
    expect(all.prepared(0)).toBe(c0); // 2 GiB default: both stay
    const d0 = one.prepared(0);
    one.prepared(1); // over budget: case 0 is evicted (the newest always stays)
    const d0again = one.prepared(0);
    expect(d0again).not.toBe(d0);
    expect(d0again).toEqual(d0);
    const r1 = new Rng(5), r2 = new Rng(5);
    for (let k = 0; k < 6; k++) expect(one.sample(r2)).toEqual(all.sample(r1));
    expect(() => new MsdDataset(dir, { ...opts, cacheBytes: -1 })).toThrow(/cacheBytes must be ≥ 0, got -1/);
  });

  it("splits the foreground by label", () => {
    const c = new MsdDataset(dir, { categories: ["a", "b"], spatialSize: [4, 6, 6] }).prepared(0);
    const groups = foregroundByLabel(c);
    expect(groups.map((v) => v.length)).toEqual([72, 72]);
    groups.forEach((v, k) => expect(Array.from(v).every((i) => c.label[i] === k + 1)).toBe(true));
    expect(Int32Array.from([...groups[0]!, ...groups[1]!]).sort()).toEqual(c.foreground);
    expect(foregroundByLabel(c)).toBe(groups); // derived once per case
  });

  it("centres crops per voxel (MONAI) or per category, from the same random draws", () => {
    // 2·4·4 voxels, all inside the body: 24 of label 1, 2 of label 2 (the small organ), 6 background, no label 3.
    const label = new Uint8Array(32);
    for (let i = 0; i < 24; i++) label[i] = 1;
    label[26] = 2;
    label[29] = 2;
    const fg = Int32Array.from({ length: 32 }, (_, i) => i).filter((i) => label[i]! > 0);
    const c: PreparedCase = {
      name: "toy", shape: [2, 4, 4], image: new Float32Array(32).fill(1), label,
      foreground: fg, backgroundCount: 6,
    };
    const one: Vec3 = [1, 1, 1]; // a one-voxel window is its centre
    const share = (cropCentre: "voxel" | "category", rng: Rng) => {
      let small = 0;
      for (let k = 0; k < 4000; k++) {
        const w = sampleWindow(c, ["big", "small", "absent"], one, rng, { ...NO_AUG, resizeProb: 0, posFraction: 1, cropCentre });
        expect(w.labels.get("big")![0]! + w.labels.get("small")![0]!).toBe(1);
        small += w.labels.get("small")![0]!;
      }
      return small / 4000;
    };
    const rv = new Rng(11), rc = new Rng(11);
    // Binomial standard deviations at 4000 draws: 0.004 and 0.008.
    expect(Math.abs(share("voxel", rv) - 2 / 26)).toBeLessThan(0.02);
    expect(Math.abs(share("category", rc) - 1 / 2)).toBeLessThan(0.04);
    expect(rc.state()).toEqual(rv.state());
    expect(() => sampleWindow(c, ["big"], one, new Rng(1), { cropCentre: "organ" as "voxel" })).toThrow(/cropCentre must be "voxel" or "category", got "organ"/);
  });
});
