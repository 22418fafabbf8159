// `segvol phantom`: the MSD folder, previews and dataset.json from the flags;
// bad flags refused with the flag named before anything is written.
import { Command } from "commander";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { afterAll, describe, expect, it, vi } from "vitest";
import { registerPhantom } from "../../src/cli/phantom.js";
import { readNifti } from "../../src/io/nifti.js";

const tmp = mkdtempSync(join(tmpdir(), "phantom-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): Promise<unknown> {
  const p = new Command().exitOverride();
  registerPhantom(p);
  return p.parseAsync(["node", "segvol", "phantom", ...args]);
}

describe("segvol phantom", () => {
  it("writes --count phantoms with the given dims and spacing, previews and dataset.json", async () => {
    const out = join(tmp, "ds");
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await run(["--seed", "4", "--count", "2", "--out", out, "--dims", "40,36,18", "--spacing", "1.2,1.2,3", "--png"]);
    log.mockRestore();
    expect(readdirSync(join(out, "imagesTr")).sort()).toEqual(["phantom_4.nii.gz", "phantom_5.nii.gz"]);
    expect(readdirSync(join(out, "labelsTr")).sort()).toEqual(["phantom_4.nii.gz", "phantom_5.nii.gz"]);
    const img = readNifti(join(out, "imagesTr", "phantom_5.nii.gz"));
    expect(img.dims).toEqual([40, 36, 18]);
    expect(img.spacing.map((s) => Math.round(s * 1000) / 1000)).toEqual([1.2, 1.2, 3]);
    const png = PNG.sync.read(readFileSync(join(out, "previews", "phantom_4.png")));
    expect(png.width).toBeGreaterThan(300);
    const ds = JSON.parse(readFileSync(join(out, "dataset.json"), "utf8"));
    expect(ds.labels["1"]).toBe("liver");
    expect(ds.numTraining).toBe(2);
  });

  it("--labels keeps those organs as 1..K and prints the --categories to train with", async () => {
    const out = join(tmp, "sub");
    const lines: string[] = [];
    const log = vi.spyOn(console, "log").mockImplementation((m: string) => void lines.push(m));
    await run(["--seed", "9", "--out", out, "--dims", "40,40,20", "--labels", "left kidney,right kidney"]);
    log.mockRestore();
    const lab = readNifti(join(out, "labelsTr", "phantom_9.nii.gz"));
    expect(new Set(lab.data)).toEqual(new Set([0, 1, 2]));
    expect(lines.join("\n")).toContain("--categories for segvol train): left kidney,right kidney");
  });

  it("refuses bad flags naming them, writing nothing", async () => {
    const out = join(tmp, "bad");
    await expect(run(["--seed", "x", "--out", out])).rejects.toThrow(/--seed x: expected an integer/);
    await expect(run(["--seed", "1", "--count", "0", "--out", out])).rejects.toThrow(/--count 0/);
    await expect(run(["--seed", "1", "--out", out, "--dims", "40,40"])).rejects.toThrow(/--dims 40,40: expected 3/);
    await expect(run(["--seed", "1", "--out", out, "--spacing", "1,-1,3"])).rejects.toThrow(/--spacing 1,-1,3: expected three positive numbers/);
    await expect(run(["--seed", "1", "--out", out, "--dims", "40,40,2"])).rejects.toThrow(/generatePhantom: dims/);
    await expect(run(["--seed", "1", "--out", out, "--labels", "liver,kidney"])).rejects.toThrow(/unknown organ "kidney"/);
    expect(existsSync(out)).toBe(false);
  });
});
