// `segvol forward` and `segvol tokenize` through the CLI: the box case of the
// config A goldens end to end (.npy in, .npy logits out), and prompts checked
// against config.json before any GPU work.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readNpy, writeNpy } from "../../src/io/npy.js";
import { convertCheckpoint } from "../../src/segvol/convert.js";
import { runSegvol } from "../helpers/cli.js";
import { CLIP_TOKENIZER_DIR, loadFixture, relError } from "../helpers/fixtures.js";

const REPO = join(__dirname, "..", "..");
const FIX = join(REPO, "test", "fixtures", "model");
const TOKENIZER = CLIP_TOKENIZER_DIR;
let dir: string;

function segvol(...args: string[]): { code: number; stdout: string; stderr: string } {
  return runSegvol(dir, args);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "segvol-fwd-"));
  convertCheckpoint({ checkpoint: join(FIX, "config_a.bin"), outDir: join(dir, "w"), config: join(FIX, "config_a.json") });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("segvol forward", () => {
  const goldens = loadFixture("model/goldens_a");
  const enc = goldens.find((c) => c.name === "encoder")!;
  const box = goldens.find((c) => c.name === "box")!;

  it("reproduces the reference logits of the box case from a [1,1,D,H,W] window", () => {
    writeNpy(join(dir, "window.npy"), enc.inputs.window!.data as Float32Array, enc.inputs.window!.shape);
    const b = Array.from(box.inputs.box!.data).join(",");
    const r = segvol("forward", "--weights", "w", "--image", "window.npy", "--box", b, "--out", "logits.npy");
    expect(r.code, r.stderr).toBe(0);
    const out = readNpy(join(dir, "logits.npy"));
    expect(out.shape).toEqual([1, 1, 16, 48, 32]);
    expect(relError(out.data as Float32Array, box.outputs.logits!.data)).toBeLessThanOrEqual(1e-3);
  });

  it("refuses an out-of-window box and a wrong window shape before starting the GPU", () => {
    const r = segvol("forward", "--weights", "w", "--image", "window.npy", "--box", "0,0,0,16,10,10", "--out", "bad.npy");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/box corner 1 \(16, 10, 10\) is outside the window 16×48×32/);
    expect(r.stderr).not.toMatch(/Warning/); // Dawn prints its adapter warnings only once a device is created
    writeNpy(join(dir, "small.npy"), new Float32Array(8 * 48 * 32), [8, 48, 32]);
    const s = segvol("forward", "--weights", "w", "--image", "small.npy", "--box", "0,0,0,4,10,10", "--out", "bad.npy");
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/shape \[8, 48, 32\] is not the window \[16, 48, 32\]/);
    expect(existsSync(join(dir, "bad.npy"))).toBe(false);
  });
});

describe("segvol forward checks before reading the window", () => {
  it("refuses a text outside the folder's categories and an output that is not .npy", () => {
    const demo = join(REPO, "weights", "demo");
    const r = segvol("forward", "--weights", demo, "--image", "none.npy", "--text", "banana", "--out", "x.npy");
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^segvol: text prompt "banana" is not a category of .*; known categories: liver, spleen, left kidney, right kidney/);
    const o = segvol("forward", "--weights", demo, "--image", "none.npy", "--text", "liver", "--out", "x.nii");
    expect(o.stderr.trim()).toBe("segvol: --out x.nii: the name must end in .npy");
  });
});

describe("segvol tokenize", () => {
  it("prints the CLIP ids of each text, bos and eos included", () => {
    const r = segvol("tokenize", "--weights", TOKENIZER, "A computerized tomography of a liver.", "spleen");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toEqual([49406, 320, 11639, 704, 7690, 999, 22399, 539, 320, 12639, 269, 49407]);
    expect(lines[1]![0]).toBe(49406);
    expect(lines[1]!.at(-1)).toBe(49407);
  });
});
