// `segvol train` flag handling: numbers are checked and named before any
// file is read or the GPU started; a resume without a checkpoint and an
// unknown freeze prefix are refused with the reason. (Training itself is
// covered by test/train/trainer.test.ts.)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { registerTrain, trainOptions } from "../../src/cli/train.js";
import { convertCheckpoint } from "../../src/segvol/convert.js";

const dir = mkdtempSync(join(tmpdir(), "segvol-cli-train-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(extra: string[]): Promise<unknown> {
  const p = new Command().exitOverride();
  registerTrain(p);
  const base = ["--data", join(dir, "none"), "--categories", "a,b", "--weights", join(dir, "w"), "--out", join(dir, "out")];
  return p.parseAsync(["node", "segvol", "train", ...base, ...extra]);
}

describe("segvol train flags", () => {
  it("rejects bad numbers, naming the flag", async () => {
    await expect(run(["--steps", "0"])).rejects.toThrow(/--steps 0: expected an integer ≥ 1/);
    await expect(run(["--steps", "2.5"])).rejects.toThrow(/--steps 2.5/);
    await expect(run(["--lr", "-1"])).rejects.toThrow(/--lr -1: expected a number ≥ 0/);
    await expect(run(["--clip", "0"])).rejects.toThrow(/--clip 0: expected a number > 0/);
    await expect(run(["--save-every", "x"])).rejects.toThrow(/--save-every x/);
    await expect(run(["--categories", "a,,b"])).rejects.toThrow(/--categories a,,b: empty name/);
    await expect(run(["--bce-weight", "-0.5"])).rejects.toThrow(/--bce-weight -0.5: expected a number ≥ 0/);
    await expect(run(["--resize-prob", "1.5"])).rejects.toThrow(/--resize-prob 1.5: expected a probability in \[0, 1\]/);
    await expect(run(["--pos-fraction", "x"])).rejects.toThrow(/--pos-fraction x: expected a probability/);
    await expect(run(["--crop-centre", "organ"])).rejects.toThrow(/--crop-centre organ: expected voxel or category/);
    await expect(run(["--box-jitter", "1.5"])).rejects.toThrow(/--box-jitter 1.5: expected an integer ≥ 0/);
    await expect(run(["--shared-sets"])).rejects.toThrow(/--shared-sets: give --sets-per-category too/);
  });

  it("maps the flags onto the trainer's options (defaults as commander fills them in)", () => {
    const flags = { data: "d", categories: ["liver", "spleen"], weights: "w", out: "o", steps: "5", lr: "1e-3", warmup: "2", weightDecay: "0", clip: "1", saveEvery: "0", seed: "3", bceWeight: "1", resizeProb: "0.5", posFraction: "0.5", flipProb: "0", cropCentre: "category", boxJitter: "0" };
    const o = trainOptions(flags);
    expect(o.categories).toEqual(["liver", "spleen"]);
    expect(o.prompts).toEqual({ boxJitter: 0 });
    expect(o.augment).toEqual({ resizeProb: 0.5, posFraction: 0.5, flipProb: 0, cropCentre: "category" });
    expect(o.step).toEqual({ categories: "one", setsPerCategory: undefined, sharedSets: false });
    expect(trainOptions({ ...flags, boxJitter: "10", allCategories: true, setsPerCategory: "3" })).toMatchObject({ prompts: { boxJitter: 10 }, step: { categories: "all", setsPerCategory: 3, sharedSets: false } });
    expect(trainOptions({ ...flags, setsPerCategory: "3", sharedSets: true }).step).toMatchObject({ setsPerCategory: 3, sharedSets: true });
  });

  it("refuses --resume without a checkpoint and a freeze prefix that matches nothing", async () => {
    await expect(run(["--resume"])).rejects.toThrow(/--resume: .*checkpoint does not exist/);
    convertCheckpoint({ checkpoint: join(__dirname, "..", "fixtures", "model", "config_a.bin"), outDir: join(dir, "w"), config: join(__dirname, "..", "fixtures", "model", "config_a.json") });
    await expect(run([])).rejects.toThrow(/MSD dataset: .*none.*imagesTr is not a folder/);
    // Listing pairs does not read the files: placeholders reach the weights check.
    for (const d of ["imagesTr", "labelsTr"]) {
      mkdirSync(join(dir, "none", d), { recursive: true });
      writeFileSync(join(dir, "none", d, "x.nii"), "");
    }
    await expect(run(["--freeze", "image_encodr."])).rejects.toThrow(/freeze: prefix "image_encodr\." matches no parameter/);
  });
});
