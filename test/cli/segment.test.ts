// `segvol segment` end to end through the CLI (tsx on the sources): a small
// oblique CT-like NIfTI, config A weights converted from the reference
// checkpoint; outputs keep the input's geometry, and bad inputs fail with one
// clear line and leave no output behind.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { niftiFromArray, readNifti, writeNifti } from "../../src/io/nifti.js";
import { convertCheckpoint } from "../../weights/convert.js";
import { runSegvol } from "../helpers/cli.js";

const REPO = join(__dirname, "..", "..");
const FIX = join(REPO, "test", "fixtures", "model");
let dir: string;

/** `segvol ...args` in dir, without Dawn's adapter warnings in stderr. */
function segvol(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = runSegvol(dir, args);
  return { ...r, stderr: r.stderr.split("\n").filter((l) => !l.startsWith("Warning:")).join("\n") };
}

/** A body ellipse with a bright "organ" in an oblique, anisotropic frame. */
function makeVolume(dims: [number, number, number]): Float32Array {
  const [I, J, K] = dims;
  const v = new Float32Array(I * J * K);
  for (let k = 0, x = 0; k < K; k++)
    for (let j = 0; j < J; j++)
      for (let i = 0; i < I; i++, x++) {
        const body = ((i - I / 2) / (0.45 * I)) ** 2 + ((j - J / 2) / (0.4 * J)) ** 2 <= 1;
        const organ = ((i - 0.6 * I) / (0.15 * I)) ** 2 + ((j - 0.45 * J) / (0.12 * J)) ** 2 + ((k - K / 2) / (0.35 * K)) ** 2 <= 1;
        v[x] = body ? (organ ? 150 : 30) + ((x * 7919) % 21) - 10 : -1000;
      }
  return v;
}

const AFFINE = [
  [0, -0.8, 0, 10],
  [0.7, 0, 0, -5],
  [0, 0, 2.5, 30],
  [0, 0, 0, 1],
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "segvol-cli-"));
  convertCheckpoint({ checkpoint: join(FIX, "config_a.bin"), outDir: join(dir, "w"), config: join(FIX, "config_a.json") });
  const dims: [number, number, number] = [41, 50, 19];
  writeNifti(join(dir, "ct.nii.gz"), niftiFromArray(dims, makeVolume(dims), { affine: AFFINE }), makeVolume(dims), "float32");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("segvol segment", () => {
  it("writes a uint8 mask and float32 logits with the input's geometry, and a JSON summary", () => {
    const r = segvol("segment", "ct.nii.gz", "--weights", "w", "--box", "20,18,4,31,30,14", "--point", "25,22,9", "--out", "mask.nii.gz", "--logits", "logits.nii.gz", "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.targets).toHaveLength(1);
    const ct = readNifti(join(dir, "ct.nii.gz"));
    const mask = readNifti(join(dir, "mask.nii.gz"));
    const logits = readNifti(join(dir, "logits.nii.gz"));
    expect(mask.datatype).toBe("uint8");
    expect(logits.datatype).toBe("float32");
    for (const out of [mask, logits]) {
      expect(out.dims).toEqual(ct.dims);
      expect(out.affine).toEqual(ct.affine);
    }
    let voxels = 0;
    mask.data.forEach((m, i) => {
      voxels += m;
      expect(m).toBe(logits.data[i]! > 0 ? 1 : 0);
    });
    expect(voxels).toBe(summary.targets[0].voxels);
  });

  const refusals: [string, string[], RegExp][] = [
    ["an output path equal to the input", ["--box", "20,18,4,31,30,14", "--out", "ct.nii.gz"], /refusing to write ct\.nii\.gz: it is the input/],
    ["a box outside the volume", ["--box", "20,18,4,31,60,14", "--out", "bad.nii.gz"], /box \(20, 18, 4, 31, 60, 14\) lies outside the volume/],
    ["a point with a bad label", ["--point", "25,22,9,3", "--out", "bad.nii.gz"], /label must be 1 \(positive\) or 0 \(negative\), got 3/],
    ["no prompt at all", ["--out", "bad.nii.gz"], /give at least one prompt/],
  ];
  for (const [what, args, msg] of refusals) {
    it(`refuses ${what} with one clear line and no output`, () => {
      const before = readFileSync(join(dir, "ct.nii.gz"));
      const r = segvol("segment", "ct.nii.gz", "--weights", "w", ...args);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(msg);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(existsSync(join(dir, "bad.nii.gz"))).toBe(false);
      expect(readFileSync(join(dir, "ct.nii.gz")).equals(before)).toBe(true);
    });
  }

  it("refuses a file that is not a NIfTI, a truncated gzip, a 2-D image and NaN voxels", () => {
    writeFileSync(join(dir, "text.nii"), "not an image");
    const gz = readFileSync(join(dir, "ct.nii.gz"));
    writeFileSync(join(dir, "trunc.nii.gz"), gz.subarray(0, gz.length >> 1));
    const flat = new Float32Array(30 * 20).fill(5);
    writeNifti(join(dir, "flat.nii.gz"), niftiFromArray([30, 20, 1], flat), flat, "float32");
    const nan = makeVolume([41, 50, 19]);
    nan[1234] = NaN;
    writeNifti(join(dir, "nan.nii.gz"), niftiFromArray([41, 50, 19], nan), nan, "float32");
    const cases: [string, RegExp][] = [
      ["text.nii", /not a NIfTI/],
      ["trunc.nii.gz", /truncated|unexpected end|gzip/i],
      ["flat.nii.gz", /the image is 2-D \(dims 30×20×1\)/],
      ["nan.nii.gz", /NaN|non-finite/i],
    ];
    for (const [file, msg] of cases) {
      const r = segvol("segment", file, "--weights", "w", "--box", "1,1,0,5,5,0", "--out", "bad.nii.gz");
      expect(r.code, file).toBe(1);
      expect(r.stderr.trim(), file).toMatch(msg);
    }
    expect(readdirSync(dir).filter((f) => f.startsWith("bad") || f.includes(".tmp"))).toEqual([]);
  });
});
