// `segvol segment` end to end through the CLI (tsx on the sources): a small
// oblique CT-like NIfTI, config A weights converted from the reference
// checkpoint; outputs keep the input's geometry, and bad inputs fail with one
// clear line and leave no output behind.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { niftiFromArray, readNifti, writeNifti } from "../../src/io/nifti.js";
import { writePhantom } from "../../src/demo/phantom.js";
import { convertCheckpoint } from "../../src/segvol/convert.js";
import { runSegvol } from "../helpers/cli.js";

const REPO = join(__dirname, "..", "..");
const FIX = join(REPO, "test", "fixtures", "model");
const DEMO = join(REPO, "weights", "demo");
let dir: string;

/** `segvol ...args` in dir; stderr exactly as a user sees it. */
function segvol(...args: string[]): { code: number; stdout: string; stderr: string } {
  return runSegvol(dir, args);
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
  it("writes a uint8 mask and float32 logits with the input's geometry, and a JSON summary; stderr stays empty", () => {
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

  it("checks --out and --logits before reading the volume: extension, folder, writability", () => {
    const box = ["--box", "20,18,4,31,30,14"];
    const cases: [string[], RegExp][] = [
      [["--out", "mask.png"], /^segvol: --out mask\.png: the name must end in \.nii\.gz or \.nii$/],
      [["--out", "missing/mask.nii.gz"], /^segvol: --out missing\/mask\.nii\.gz: folder .*missing does not exist$/],
      [["--out", "w"], /^segvol: --out w: the name must end in/],
      [["--out", "ok.nii.gz", "--logits", "logits.npy"], /^segvol: --logits logits\.npy: the name must end in \.nii\.gz or \.nii$/],
    ];
    // A read-only place even for root: sysfs refuses new files.
    if (process.platform === "linux") cases.push([["--out", "/sys/mask.nii.gz"], /^segvol: --out \/sys\/mask\.nii\.gz: cannot write in folder \/sys \(E[A-Z]+\)$/]);
    // The input does not exist: a refusal about the output shows the check ran first.
    for (const [args, msg] of cases) {
      const r = segvol("segment", "no-such-ct.nii.gz", "--weights", "w", ...box, ...args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr.trim(), args.join(" ")).toMatch(msg);
    }
    expect(readdirSync(dir).filter((f) => f.includes(".probe") || f.startsWith("ok."))).toEqual([]);
  });

  it("refuses a text prompt outside the folder's categories, listing them, unless --allow-unknown-text", () => {
    const demo = DEMO;
    const r = segvol("segment", "no-such-ct.nii.gz", "--weights", demo, "--text", "pancreas", "--out", "p.nii.gz");
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^segvol: text prompt "pancreas" is not a category of .*weights\/demo; known categories: liver, spleen, left kidney, right kidney \(.*--allow-unknown-text/);
    // Case and spacing are ignored; the check passes and the run reaches the (missing) input.
    for (const args of [["--text", " Left  Kidney"], ["--text", "banana", "--allow-unknown-text"]]) {
      const ok = segvol("segment", "no-such-ct.nii.gz", "--weights", demo, ...args, "--out", "p.nii.gz");
      expect(ok.code).toBe(1);
      expect(ok.stderr, args.join(" ")).toMatch(/no-such-ct\.nii\.gz/);
      expect(ok.stderr).not.toMatch(/not a category/);
    }
  });

  it("a label map's sidecar and summary count the voxels of the written map", () => {
    const logits = segvol("segment", "no-such-ct.nii.gz", "--weights", DEMO, "--text", "liver", "--text", "spleen", "--out", "labels.nii.gz", "--logits", "l.nii.gz");
    expect(logits.stderr.trim()).toMatch(/^segvol: --logits writes one target's logits/);
    // A small phantom; one box for both prompts, so that their masks overlap.
    const { name } = writePhantom(join(dir, "ph"), 7, { dims: [48, 48, 24] });
    const ct = join("ph", "imagesTr", `${name}.nii.gz`);
    const r = segvol("segment", ct, "--weights", DEMO, "--text", "liver", "--text", "spleen", "--box", "4,4,2,43,43,21", "--out", "labels.nii.gz", "--json");
    expect(r.code, r.stderr).toBe(0);
    const map = readNifti(join(dir, "labels.nii.gz"));
    const counts = [0, 0, 0];
    map.data.forEach((v) => counts[v]!++);
    const sidecar = JSON.parse(readFileSync(join(dir, "labels.json"), "utf8"));
    const summary = JSON.parse(r.stdout);
    const ml = (map.spacing[0] * map.spacing[1] * map.spacing[2]) / 1000;
    for (const label of [1, 2]) {
      expect(sidecar.labels[label - 1]).toEqual({ label, name: label === 1 ? "liver" : "spleen", voxels: counts[label], ml: Math.round(counts[label]! * ml * 1000) / 1000 });
      expect(summary.targets[label - 1].voxels).toBe(counts[label]);
    }
    expect(counts[1]! + counts[2]!).toBeGreaterThan(0);
  });

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

  it("refuses a volume over --max-voxels before any work, and a --max-voxels that is not a count", () => {
    const over = segvol("segment", "ct.nii.gz", "--weights", "w", "--box", "1,1,0,5,5,0", "--out", "bad.nii.gz", "--max-voxels", "1000");
    expect(over.code).toBe(1);
    expect(over.stderr.trim()).toMatch(/ct\.nii\.gz: the volume is \d+×\d+×\d+ = \d+ voxels, over the limit of 1000 .*--max-voxels/);
    for (const bad of ["0", "-5", "1e3x", ""]) {
      const r = segvol("segment", "ct.nii.gz", "--weights", "w", "--box", "1,1,0,5,5,0", "--out", "bad.nii.gz", "--max-voxels", bad);
      expect(r.code, bad).toBe(1);
      expect(r.stderr.trim(), bad).toBe(`segvol: --max-voxels ${bad}: expected a whole number of at least 1`);
    }
    expect(readdirSync(dir).filter((f) => f.startsWith("bad"))).toEqual([]);
  });
});
