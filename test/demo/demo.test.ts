// `segvol demo` end to end with an UNTRAINED model of the demo config (made
// here with writeInitFolder) on a small phantom: every output file exists,
// the PNGs decode, the JSON has exactly the documented shape, and each Dice
// equals one recomputed here from the written NIfTI files. Also: the clear
// one-line refusal when the weights folder has no model, the refusal of a
// foreign output folder, and of a training seed. The pictures: every one
// through the same planes, the box and the points drawn on theirs; progress
// names the kernel compilation before the first target.
import { Command } from "commander";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { demoTable, registerDemo } from "../../src/cli/demo.js";
import { writeInitFolder } from "../../src/cli/init.js";
import { boundingBox, DEMO_CATEGORIES, demoCategories, dice, runDemo, samplePoints, trainingSeeds } from "../../src/demo/demo.js";
import { generatePhantom, PHANTOM_LABELS } from "../../src/demo/phantom.js";
import { readNifti } from "../../src/io/nifti.js";
import { BOX_COLOR, POSITIVE_COLOR, type Rgb } from "../../src/demo/render.js";

const REPO = join(__dirname, "..", "..");
const tmp = mkdtempSync(join(tmpdir(), "segvol-demo-test-"));
const weights = join(tmp, "w");
const PHANTOM = { dims: [40, 40, 14] as [number, number, number], spacing: [6, 6, 18] as [number, number, number] };
const SEED = 4242;
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => {
  writeInitFolder({ config: join(REPO, "weights", "demo", "config.json"), out: weights, seed: 3, categories: [...DEMO_CATEGORIES] });
  // A weights folder states the categories its text prompts may name.
  writeFileSync(join(weights, "categories.json"), JSON.stringify(DEMO_CATEGORIES));
});

/** Runs `segvol demo ARGS` in-process; returns stdout, stderr lines and the error, if any. */
async function cli(args: string[]): Promise<{ stdout: string; err: string[]; error: Error | null }> {
  let stdout = "";
  const err: string[] = [];
  const w = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const log = vi.spyOn(console, "log").mockImplementation((m: string) => void (stdout += m + "\n"));
  const e = vi.spyOn(console, "error").mockImplementation((m: string) => void err.push(m));
  let error: Error | null = null;
  try {
    const p = new Command().exitOverride();
    registerDemo(p);
    await p.parseAsync(["node", "segvol", "demo", ...args]);
  } catch (x) {
    error = x as Error;
  } finally {
    w.mockRestore();
    log.mockRestore();
    e.mockRestore();
  }
  return { stdout, err, error };
}

const mask = (data: ArrayLike<number>, value: number) => Uint8Array.from(data, (x) => (x === value ? 1 : 0));
const countColour = (p: PNG, c: Rgb) => {
  let n = 0;
  for (let t = 0; t < p.width * p.height; t++) if (p.data[t * 4] === c[0] && p.data[t * 4 + 1] === c[1] && p.data[t * 4 + 2] === c[2]) n++;
  return n;
};

/**
 * Pixels showing CT grey in every picture (r = g = b, and neither the
 * background nor the text grey, which titles and legends put in different
 * places): how many there are, and how many differ between pictures. The
 * pictures share their planes exactly when none differ.
 */
function greyAgreement(pictures: PNG[], background: number, text: number): { shared: number; differing: number } {
  const w = Math.min(...pictures.map((p) => p.width)), h = Math.min(...pictures.map((p) => p.height));
  let shared = 0, differing = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const greys = pictures.map((p) => {
      const t = (y * p.width + x) * 4;
      const [r, g, b] = [p.data[t]!, p.data[t + 1]!, p.data[t + 2]!];
      return r === g && g === b && r !== background && r !== text ? r : -1;
    });
    if (greys.some((v) => v < 0)) continue;
    shared++;
    if (greys.some((v) => v !== greys[0])) differing++;
  }
  return { shared, differing };
}

describe("segvol demo", () => {
  it("runs end to end: files, PNGs, exact JSON, Dice recomputed from the written NIfTIs", async () => {
    const out = join(tmp, "out");
    const progress: string[] = [];
    const r = await runDemo({ weights, out, seed: SEED, phantom: PHANTOM, onProgress: (line) => progress.push(line) });
    const names = readdirSync(out).sort();
    expect(names).toEqual(
      ["box.png", "box_liver.nii.gz", "demo.json", "ground_truth.png", "labels.nii.gz", "phantom.nii.gz", "points.png", "points_spleen.nii.gz", "text.png", "text_labels.nii.gz"],
    );
    expect(r.files.map((f) => f.slice(out.length + 1)).sort()).toEqual(names);
    expect(readdirSync(tmp).filter((e) => e.includes(".demo-"))).toEqual([]);
    const pictures = new Map(["text.png", "box.png", "points.png", "ground_truth.png"].map((f) => [f, PNG.sync.read(readFileSync(join(out, f)))]));
    for (const [f, png] of pictures) {
      expect(png.width, f).toBeGreaterThan(50);
      expect(png.height, f).toBeGreaterThan(50);
      // The box prompt on box.png only, the points on points.png only (in the
      // legend at least: test/demo/render.test.ts checks where they are drawn).
      expect(countColour(png, BOX_COLOR) > 0, `${f}: box drawn`).toBe(f === "box.png");
      expect(countColour(png, POSITIVE_COLOR) > 0, `${f}: points drawn`).toBe(f === "points.png");
    }
    // Every picture through the same planes: where all four show CT grey, the greys agree.
    // (Background 16 and text 235: the renderer's BG and FG.)
    const grey = greyAgreement([...pictures.values()], 16, 235);
    expect(grey.shared).toBeGreaterThan(1000);
    expect(grey.differing).toBe(0);
    // Progress: the kernels are compiled, and said to be, before the first target's first window.
    const compiling = progress.findIndex((l) => /^compiling kernels/.test(l));
    const compiled = progress.findIndex((l) => /^compiled \d+ kernels in \d+(\.\d+)? s$/.test(l));
    const firstWindow = progress.findIndex((l) => /^zoom-out 1\//.test(l));
    expect(compiling, progress.join("\n")).toBeGreaterThanOrEqual(0);
    expect(compiled).toBeGreaterThan(compiling);
    expect(firstWindow).toBeGreaterThan(compiled);
    expect(progress.filter((l) => /more kernels/.test(l))).toEqual([]); // none left to the targets
    expect(r.targets.map((t) => [t.name, t.prompt])).toEqual([
      ["liver", "text"], ["spleen", "text"], ["left kidney", "text"], ["right kidney", "text"], ["liver", "box"], ["spleen", "points"],
    ]);

    // The written phantom is the generator's phantom; the label map numbers the categories 1..4.
    const ph = generatePhantom(SEED, PHANTOM);
    const img = readNifti(join(out, "phantom.nii.gz"));
    expect(img.dims).toEqual(PHANTOM.dims);
    expect(Array.from(img.data)).toEqual(Array.from(ph.image));
    const labels = readNifti(join(out, "labels.nii.gz")).data;
    DEMO_CATEGORIES.forEach((organ, k) => expect(Array.from(mask(labels, k + 1))).toEqual(Array.from(mask(ph.labels, PHANTOM_LABELS.indexOf(organ)))));

    const text = readNifti(join(out, "text_labels.nii.gz")).data;
    const box = readNifti(join(out, "box_liver.nii.gz")).data;
    const pts = readNifti(join(out, "points_spleen.nii.gz")).data;
    const ref = (name: string, m: ArrayLike<number>) => {
      const g = mask(labels, DEMO_CATEGORIES.indexOf(name) + 1);
      let inter = 0, a = 0, b = 0;
      for (let v = 0; v < g.length; v++) {
        a += m[v] ? 1 : 0;
        b += g[v]!;
        inter += m[v] && g[v] ? 1 : 0;
      }
      return a + b === 0 ? 1 : (2 * inter) / (a + b);
    };
    for (const [t, target] of r.targets.entries()) {
      expect(target.dice).toBeGreaterThanOrEqual(0);
      expect(target.dice).toBeLessThanOrEqual(1);
      expect(target.seconds).toBeGreaterThanOrEqual(0);
      const m = target.prompt === "text" ? mask(text, t + 1) : target.prompt === "box" ? box : pts;
      expect(target.dice, `${target.name} ${target.prompt}`).toBeCloseTo(ref(target.name, m), 12);
    }
    const summary = JSON.parse(readFileSync(join(out, "demo.json"), "utf8"));
    expect(summary.producer).toBe("segvol demo");
    expect(summary.targets).toEqual(r.targets);

    // The CLI over the previous output: stdout is only the JSON, with exactly these keys.
    const c = await cli(["--weights", weights, "--out", out, "--seed", String(SEED), "--json"]);
    expect(c.error).toBeNull();
    const j = JSON.parse(c.stdout);
    expect(c.stdout.trim().split("\n")).toHaveLength(1);
    expect(Object.keys(j).sort()).toEqual(["seconds", "targets"]);
    expect(typeof j.seconds).toBe("number");
    expect(j.targets).toHaveLength(6);
    for (const t of j.targets) expect(Object.keys(t).sort()).toEqual(["dice", "name", "prompt", "seconds"]);
    expect(c.err.length).toBeGreaterThan(0); // progress went to stderr
  }, 240_000); // two demo runs, each compiling its kernels: 90 s on a loaded 2-core machine

  it("refuses a weights folder without model.safetensors in one line saying how to make it", async () => {
    const empty = join(tmp, "noweights");
    mkdirSync(empty);
    writeFileSync(join(empty, "config.json"), readFileSync(join(REPO, "weights", "demo", "config.json")));
    const c = await cli(["--weights", empty, "--out", join(tmp, "never")]);
    expect(c.error?.message).toMatch(/^demo: no model\.safetensors in .*noweights: the demo model is not trained\/shipped yet; make it with `npm run train:demo`.*or pass --weights DIR$/);
    expect(c.error?.message).not.toContain("\n");
    expect(existsSync(join(tmp, "never"))).toBe(false);
  });

  it("refuses a foreign non-empty output folder and a training seed before any work", async () => {
    const foreign = join(tmp, "foreign");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "notes.txt"), "mine");
    await expect(runDemo({ weights, out: foreign, phantom: PHANTOM })).rejects.toThrow(/not empty and not a previous segvol demo output/);
    expect(readdirSync(foreign)).toEqual(["notes.txt"]);
    await expect(runDemo({ weights, out: join(tmp, "x"), seed: 1010, phantom: PHANTOM })).rejects.toThrow(/seed 1010 is a training phantom/);
  });

  it("categories: categories.json, else trainer_state.json options, else the demo organs; unknown organs refused", () => {
    const d = join(tmp, "cats");
    mkdirSync(d);
    expect(demoCategories(d)).toEqual([...DEMO_CATEGORIES]);
    writeFileSync(join(d, "trainer_state.json"), JSON.stringify({ options: { categories: ["spleen", "aorta"] } }));
    expect(demoCategories(d)).toEqual(["spleen", "aorta"]);
    writeFileSync(join(d, "categories.json"), JSON.stringify(["liver"]));
    expect(demoCategories(d)).toEqual(["liver"]);
    writeFileSync(join(d, "categories.json"), JSON.stringify(["liver", "heart"]));
    expect(() => demoCategories(d)).toThrow(/categories the phantom does not draw: heart/);
  });

  it("training seeds: recipe.json's trainSeeds, else the first stage's 1000-1023; a malformed range refused", () => {
    const d = join(tmp, "seeds");
    mkdirSync(d);
    expect(trainingSeeds(d)).toEqual([1000, 1023]);
    writeFileSync(join(d, "recipe.json"), JSON.stringify({ trainSeeds: [1000, 1095] }));
    expect(trainingSeeds(d)).toEqual([1000, 1095]);
    writeFileSync(join(d, "recipe.json"), JSON.stringify({ trainSeeds: [1095, 1000] }));
    expect(() => trainingSeeds(d)).toThrow(/trainSeeds must be \[first, last\] integers, got \[1095,1000\]/);
    writeFileSync(join(d, "recipe.json"), "{");
    expect(() => trainingSeeds(d)).toThrow(/recipe\.json is not valid JSON/);
  });

  it("table: one aligned line per target and the total", () => {
    const lines = demoTable({ targets: [{ name: "liver", prompt: "text", dice: 0.91234, seconds: 1.5 }, { name: "left kidney", prompt: "points", dice: 1, seconds: 12.345 }], compileSeconds: 3, seconds: 20.04, files: ["a", "b"] }, "d");
    expect(lines).toEqual([
      "name         prompt  dice   seconds",
      "liver        text    0.912  1.50",
      "left kidney  points  1.000  12.35",
      "total 20.0 s; wrote 2 files to d",
    ]);
  });

  it("prompt helpers: box is the inclusive bounding box; points lie inside the mask and are distinct; dice", () => {
    const dims: [number, number, number] = [5, 4, 3];
    const m = new Uint8Array(60);
    const at = (i: number, j: number, k: number) => i + 5 * (j + 4 * k);
    for (const [i, j, k] of [[1, 1, 0], [3, 2, 1], [2, 1, 2], [2, 2, 1]]) m[at(i!, j!, k!)] = 1;
    expect(boundingBox(m, dims)).toEqual([1, 1, 0, 3, 2, 2]);
    const p = samplePoints(m, dims);
    expect(p).toHaveLength(3);
    for (const q of p) expect(m[at(...q)]).toBe(1);
    expect(new Set(p.map((q) => q.join())).size).toBe(3);
    expect(dice(m, m)).toBe(1);
    expect(dice(m, new Uint8Array(60))).toBe(0);
    expect(dice(new Uint8Array(3), new Uint8Array(3))).toBe(1);
  });
});
