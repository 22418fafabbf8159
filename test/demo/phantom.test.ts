// Synthetic phantoms: determinism, geometry ranges, organ presence/HU,
// anatomical relations (in RAS world coordinates through the affine), no
// label in the air outside the body, and the MSD/NIfTI files round-trip.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePhantom, PHANTOM_LABELS, selectLabels, writePhantom, type Phantom } from "../../src/demo/phantom.js";
import { readNifti } from "../../src/io/nifti.js";
import { listMsdCases } from "../../src/train/data.js";

const DIMS: [number, number, number] = [80, 80, 40];
const tmp = mkdtempSync(join(tmpdir(), "phantom-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const label = (name: string) => {
  const l = PHANTOM_LABELS.indexOf(name);
  if (l < 0) throw new Error(`no label ${name}`);
  return l;
};

interface Stats { count: number; meanHu: number; centroid: [number, number, number] }

/** Per label: voxel count, mean HU and world (RAS mm) centroid. */
function stats(ph: Phantom): Stats[] {
  const [nx, ny, nz] = ph.dims;
  const acc = PHANTOM_LABELS.map(() => ({ n: 0, hu: 0, c: [0, 0, 0] }));
  for (let k = 0, v = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, v++) {
    const a = acc[ph.labels[v]!]!;
    a.n++;
    a.hu += ph.image[v]!;
    a.c[0] += i; a.c[1] += j; a.c[2] += k;
  }
  return acc.map((a) => {
    const ijk = a.c.map((c) => c / Math.max(1, a.n));
    const w = [0, 1, 2].map((r) => ph.affine[r]![0]! * ijk[0]! + ph.affine[r]![1]! * ijk[1]! + ph.affine[r]![2]! * ijk[2]! + ph.affine[r]![3]!);
    return { count: a.n, meanHu: a.hu / Math.max(1, a.n), centroid: w as [number, number, number] };
  });
}

const SEEDS = [1, 2, 3, 4];
let phantoms: Phantom[] = [];
beforeAll(() => {
  phantoms = SEEDS.map((s) => generatePhantom(s, { dims: DIMS }));
});

describe("generatePhantom", () => {
  it("is deterministic per seed and differs between seeds", () => {
    const again = generatePhantom(1, { dims: DIMS });
    expect(Buffer.from(again.image.buffer).equals(Buffer.from(phantoms[0]!.image.buffer))).toBe(true);
    expect(Buffer.from(again.labels.buffer).equals(Buffer.from(phantoms[0]!.labels.buffer))).toBe(true);
    expect(again.spacing).toEqual(phantoms[0]!.spacing);
    const a = phantoms[0]!, b = phantoms[1]!;
    let diffLabels = 0;
    for (let v = 0; v < a.labels.length; v++) if (a.labels[v] !== b.labels[v]) diffLabels++;
    expect(diffLabels).toBeGreaterThan(a.labels.length * 0.01);
  });

  it("chooses seeded geometry in the documented ranges, with a RAS diag(spacing) affine", () => {
    const seen = new Set<string>();
    for (const seed of [10, 11]) {
      const ph = generatePhantom(seed);
      const [nx, ny, nz] = ph.dims;
      const [sx, sy, sz] = ph.spacing;
      expect(nx).toBeGreaterThanOrEqual(128); expect(nx).toBeLessThanOrEqual(192); expect(ny).toBe(nx);
      expect(nz).toBeGreaterThanOrEqual(40); expect(nz).toBeLessThanOrEqual(90);
      expect(sx).toBeGreaterThanOrEqual(0.8); expect(sx).toBeLessThanOrEqual(1.5); expect(sy).toBe(sx);
      expect(sz).toBeGreaterThanOrEqual(2.5); expect(sz).toBeLessThanOrEqual(5);
      expect(ph.image.length).toBe(nx * ny * nz);
      expect(ph.affine.map((r) => r.slice(0, 3))).toEqual([[sx, 0, 0], [0, sy, 0], [0, 0, sz], [0, 0, 0]]);
      seen.add(`${ph.dims}|${ph.spacing}`);
    }
    expect(seen.size).toBe(2);
    const fixed = generatePhantom(3, { dims: [40, 36, 20], spacing: [1.1, 1.2, 3] });
    expect(fixed.dims).toEqual([40, 36, 20]);
    expect(fixed.spacing).toEqual([1.1, 1.2, 3]);
  });

  it("draws every organ with a plausible size and HU", () => {
    for (const ph of phantoms) {
      const st = stats(ph);
      const total = ph.labels.length;
      for (let l = 1; l < PHANTOM_LABELS.length; l++) expect(st[l]!.count, PHANTOM_LABELS[l]).toBeGreaterThan(20);
      // The liver is the largest organ, a few percent of the volume.
      const liver = st[label("liver")]!;
      expect(liver.count / total).toBeGreaterThan(0.02);
      expect(liver.count / total).toBeLessThan(0.25);
      for (let l = 2; l < PHANTOM_LABELS.length; l++) expect(st[l]!.count).toBeLessThan(liver.count);
      const hu = (n: string) => st[label(n)]!.meanHu;
      expect(hu("liver")).toBeGreaterThan(40); expect(hu("liver")).toBeLessThan(80);
      expect(hu("spleen")).toBeGreaterThan(35); expect(hu("spleen")).toBeLessThan(65);
      for (const k of ["left kidney", "right kidney"]) { expect(hu(k)).toBeGreaterThan(5); expect(hu(k)).toBeLessThan(45); }
      expect(hu("aorta")).toBeGreaterThan(120);
      expect(hu("inferior vena cava")).toBeGreaterThan(80);
      expect(hu("vertebral column")).toBeGreaterThan(300);
      expect(hu("pancreas")).toBeGreaterThan(25); expect(hu("pancreas")).toBeLessThan(65);
      expect(hu("gallbladder")).toBeGreaterThan(-15); expect(hu("gallbladder")).toBeLessThan(35);
      // Stomach: wall and fluid (soft tissue) or gas, nothing in between but noise.
      let odd = 0, n = 0;
      for (let v = 0; v < total; v++) {
        if (ph.labels[v] !== label("stomach")) continue;
        n++;
        const h = ph.image[v]!;
        if (!(h < -850 || (h > -80 && h < 140))) odd++;
      }
      expect(odd / n).toBeLessThan(0.02);
      // Outside air is about −1000 HU.
      expect(ph.image[0]!).toBeLessThan(-950);
    }
  });

  it("places organs where the anatomy has them (RAS: +x patient right, +y anterior, +z superior)", () => {
    for (const ph of phantoms) {
      const st = stats(ph);
      const c = (n: string) => st[label(n)]!.centroid;
      const spine = c("vertebral column");
      const width = ph.dims[0] * ph.spacing[0];
      expect(c("liver")[0]).toBeGreaterThan(spine[0] + 0.1 * width); // patient's right
      expect(c("gallbladder")[0]).toBeGreaterThan(spine[0]);
      expect(c("spleen")[0]).toBeLessThan(spine[0] - 0.1 * width); // patient's left
      expect(c("stomach")[0]).toBeLessThan(spine[0]);
      expect(c("left kidney")[0]).toBeLessThan(spine[0] - 0.05 * width);
      expect(c("right kidney")[0]).toBeGreaterThan(spine[0] + 0.05 * width);
      for (const k of ["left kidney", "right kidney"]) {
        expect(c(k)[1]).toBeLessThan(c("aorta")[1]); // posterior of the aorta
        expect(c(k)[1]).toBeLessThan(c("liver")[1]);
        expect(c(k)[2]).toBeLessThan(c("liver")[2]); // below the liver's centre
      }
      expect(c("spleen")[1]).toBeLessThan(c("stomach")[1]); // spleen posterior of the stomach
      // Aorta just anterior of the spine, slightly to the left; IVC to its right.
      const ao = c("aorta");
      expect(Math.abs(ao[0] - spine[0])).toBeLessThan(0.1 * width);
      expect(ao[1]).toBeGreaterThan(spine[1]);
      expect(ao[1] - spine[1]).toBeLessThan(0.25 * width);
      expect(c("inferior vena cava")[0]).toBeGreaterThan(ao[0]);
    }
  });

  it("puts no label in the air around the body (flood fill from the border through HU < −500)", () => {
    for (const ph of phantoms) {
      const [nx, ny, nz] = ph.dims;
      const seen = new Uint8Array(ph.labels.length);
      const stack: number[] = [];
      const push = (i: number, j: number, k: number) => {
        if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) return;
        const v = (k * ny + j) * nx + i;
        if (seen[v] || ph.image[v]! >= -500) return;
        seen[v] = 1;
        stack.push(v);
      };
      for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
        if (i === 0 || j === 0 || i === nx - 1 || j === ny - 1) push(i, j, k);
      }
      let outside = 0, labelled = 0;
      while (stack.length) {
        const v = stack.pop()!;
        outside++;
        if (ph.labels[v] !== 0) labelled++;
        const i = v % nx, j = Math.floor(v / nx) % ny, k = Math.floor(v / (nx * ny));
        push(i - 1, j, k); push(i + 1, j, k); push(i, j - 1, k); push(i, j + 1, k); push(i, j, k - 1); push(i, j, k + 1);
      }
      expect(labelled).toBe(0);
      // Sanity: the air around the body was actually found, and it is not the whole volume.
      expect(outside).toBeGreaterThan(ph.labels.length * 0.1);
      expect(outside).toBeLessThan(ph.labels.length * 0.7);
    }
  });

  it("refuses bad seeds and options with the op name", () => {
    expect(() => generatePhantom(-1)).toThrow(/generatePhantom: seed/);
    expect(() => generatePhantom(1.5)).toThrow(/generatePhantom: seed/);
    expect(() => generatePhantom(1, { dims: [64, 64, 2] })).toThrow(/generatePhantom: dims/);
    expect(() => generatePhantom(1, { spacing: [1, 0, 3] })).toThrow(/generatePhantom: spacing/);
  });
});

describe("writePhantom", () => {
  it("writes an MSD folder whose NIfTI files round-trip (dims, affine, HU, labels) and a dataset.json naming the labels", () => {
    const dir = join(tmp, "ds");
    const opts = { dims: [48, 44, 24] as [number, number, number] };
    const a = writePhantom(dir, 7, opts);
    const b = writePhantom(dir, 12, opts);
    expect(a.name).toBe("phantom_7");
    const img = readNifti(join(dir, "imagesTr", "phantom_7.nii.gz"));
    const lab = readNifti(join(dir, "labelsTr", "phantom_7.nii.gz"));
    expect(img.datatype).toBe("int16");
    expect(lab.datatype).toBe("uint8");
    for (const vol of [img, lab]) {
      expect(vol.dims).toEqual(a.phantom.dims);
      for (let r = 0; r < 4; r++) for (let col = 0; col < 4; col++) expect(vol.affine[r]![col]!).toBeCloseTo(a.phantom.affine[r]![col]!, 4);
      for (let ax = 0; ax < 3; ax++) expect(vol.spacing[ax]!).toBeCloseTo(a.phantom.spacing[ax]!, 5);
    }
    expect(Array.from(img.data)).toEqual(Array.from(a.phantom.image));
    expect(Array.from(lab.data)).toEqual(Array.from(a.phantom.labels));
    const ds = JSON.parse(readFileSync(join(dir, "dataset.json"), "utf8"));
    expect(ds.labels).toEqual(Object.fromEntries(PHANTOM_LABELS.map((n, i) => [String(i), n])));
    expect(ds.numTraining).toBe(2);
    expect(ds.training.map((t: { image: string }) => t.image)).toEqual(["./imagesTr/phantom_7.nii.gz", "./imagesTr/phantom_12.nii.gz"]);
    // The training loader reads the folder.
    expect(listMsdCases(dir).map((c) => c.name)).toEqual(["phantom_12", "phantom_7"]);
    expect(b.phantom.dims).toEqual([48, 44, 24]);
  });

  it("keeps a subset of organs renumbered 1..K (--labels), and refuses to mix numberings in one folder", () => {
    const dir = join(tmp, "subset");
    const opts = { dims: [40, 40, 20] as [number, number, number], labels: ["spleen", "liver"] };
    const { phantom } = writePhantom(dir, 3, opts);
    const lab = readNifti(join(dir, "labelsTr", "phantom_3.nii.gz"));
    const want = selectLabels(phantom.labels, ["spleen", "liver"]);
    expect(Array.from(lab.data)).toEqual(Array.from(want));
    for (let v = 0; v < want.length; v++) {
      const drawn = PHANTOM_LABELS[phantom.labels[v]!];
      expect(want[v]).toBe(drawn === "spleen" ? 1 : drawn === "liver" ? 2 : 0);
    }
    expect(JSON.parse(readFileSync(join(dir, "dataset.json"), "utf8")).labels).toEqual({ "0": "background", "1": "spleen", "2": "liver" });
    expect(() => writePhantom(dir, 4, { dims: [40, 40, 20] })).toThrow(/writePhantom: .*dataset\.json has labels .* use another folder/);
    expect(() => selectLabels(new Uint8Array(1), ["livr"])).toThrow(/unknown organ "livr"; known: liver, spleen/);
    expect(() => selectLabels(new Uint8Array(1), ["liver", "liver"])).toThrow(/"liver" given twice/);
  });
});
