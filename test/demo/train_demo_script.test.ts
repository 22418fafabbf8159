// `npm run train:demo` (scripts/train-demo.mjs): bad flags are refused with
// the flag named; a tiny run (a small config; two steps on one phantom, one
// fine-tuning step on it, one more on two phantoms, one with jittered boxes on
// them, and the last eight stages at 0 steps, which are skipped) goes through phantom →
// init → train four times, leaves checkpoint folders with the built
// tokenizer and loss.csv files, and ships the fourth stage's model.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/segvol/config.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const script = join(repo, "scripts", "train-demo.mjs");
const tmp = mkdtempSync(join(tmpdir(), "train-demo-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the script; asynchronously, so that the test worker stays responsive to vitest during a long run. */
function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: repo, timeout: 300_000 });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

describe("train:demo recipe", () => {
  it("refuses unknown flags and bad numbers, naming them", async () => {
    const a = await run(["--bogus", "1"]);
    expect(a.code).toBe(1);
    expect(a.out).toMatch(/train:demo: unknown flag --bogus/);
    const b = await run(["--steps", "many"]);
    expect(b.code).toBe(1);
    expect(b.out).toMatch(/train:demo: --steps many: expected a non-negative integer/);
    const c = await run(["--ft-steps", "-1"]);
    expect(c.code).toBe(1);
    expect(c.out).toMatch(/train:demo: --ft-steps -1: expected a non-negative integer/);
    const d = await run(["--ft2-cases", "0"]);
    expect(d.code).toBe(1);
    expect(d.out).toMatch(/train:demo: --ft2-cases must be ≥ 1/);
    expect((await run(["--ft7-shared-sets", "maybe"])).out).toMatch(/train:demo: --ft7-shared-sets maybe: expected yes or no/);
    const e = await run(["--ft3-box-jitter", "loose"]);
    expect(e.code).toBe(1);
    expect(e.out).toMatch(/train:demo: --ft3-box-jitter loose: expected a non-negative integer/);
  });

  it("runs phantom → init → train end to end on a tiny config", async () => {
    const cfg = join(tmp, "tiny.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        spatial_size: [8, 32, 32],
        patch_size: [4, 16, 16],
        vit: { hidden_size: 16, mlp_dim: 16, num_layers: 1, num_heads: 2 },
        decoder: { transformer_dim: 16, depth: 1, num_heads: 2, mlp_dim: 8, num_multimask_outputs: 3, iou_head_depth: 3, iou_head_hidden_dim: 8, attention_downsample_rate: 2 },
        prompt_encoder: { mask_in_chans: 4 },
        text: { vocab_size: 1, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 12, layer_norm_eps: 1e-5, hidden_act: "quick_gelu", template: "A computerized tomography of a {}." },
      }),
    );
    const out = join(tmp, "run");
    const shipped = join(tmp, "shipped");
    mkdirSync(shipped);
    writeFileSync(join(shipped, "stale.txt"), "replaced as a whole");
    const r = await run(["--out", out, "--config", cfg, "--cases", "1", "--steps", "2", "--warmup", "1", "--ft-steps", "1", "--ft-warmup", "0", "--ft-cases", "1", "--ft2-steps", "1", "--ft2-warmup", "0", "--ft2-cases", "2", "--ft3-steps", "1", "--ft3-warmup", "0", "--ft3-cases", "2", "--ft3-shared-sets", "yes", "--ft3-vit-layers", "2", "--ft4-steps", "0", "--ft5-steps", "0", "--ft6-steps", "0", "--ft7-steps", "0", "--ft8-steps", "0", "--ft9-steps", "0", "--ft10-steps", "0", "--ft11-steps", "0", "--save-every", "0", "--ship", shipped]);
    expect(r.code, r.out).toBe(0);
    // Each stage starts from the one before and writes its own folder; stage 3
    // trains on its own phantom folder.
    expect(r.out).toContain(`--data ${join(out, "data")} --categories "liver,spleen,left kidney,right kidney" --weights ${join(out, "train", "checkpoint")} --out ${join(out, "finetune")} --steps 1 --lr 5e-4 --warmup 0`);
    expect(r.out).toContain(`--data ${join(out, "data-2")} --categories "liver,spleen,left kidney,right kidney" --weights ${join(out, "finetune", "checkpoint")} --out ${join(out, "finetune2")} --steps 1 --lr 3e-4 --warmup 0`);
    // Stage 4 reuses stage 3's phantoms and jitters its boxes; stage 5 has 0 steps and is skipped.
    expect(r.out).toContain(`--data ${join(out, "data-2")} --categories "liver,spleen,left kidney,right kidney" --weights ${join(out, "finetune3-grown")} --out ${join(out, "finetune3")} --steps 1 --lr 3e-4 --warmup 0`);
    expect(r.out).toMatch(/--out \S*finetune3 .*--crop-centre category --box-jitter 2 --all-categories --shared-sets\n/);
    expect(r.out).toMatch(/--out \S*finetune2 .*--crop-centre category --box-jitter 0 --all-categories\n/);
    expect(r.out).not.toContain("finetune4");
    expect(r.out).not.toContain("finetune5");
    expect(r.out).not.toContain("finetune6");
    expect(r.out).not.toContain("finetune7");
    expect(r.out).not.toContain("finetune8");
    expect(r.out).not.toContain("finetune9");
    expect(r.out).not.toContain("finetune10");
    expect(r.out).not.toContain("finetune11");
    expect(r.out).toContain(`weights folder: ${join(out, "finetune3", "checkpoint")}`);
    for (const [stage, rows] of [["train", 2], ["finetune", 1], ["finetune2", 1], ["finetune3", 1]] as const) {
      const ckpt = join(out, stage, "checkpoint");
      for (const f of ["model.safetensors", "config.json", "vocab.json", "merges.txt"]) expect(existsSync(join(ckpt, f)), `${stage}/${f}`).toBe(true);
      expect(loadConfig(join(ckpt, "config.json")).text!.vocab_size).toBe(Object.keys(JSON.parse(readFileSync(join(ckpt, "vocab.json"), "utf8"))).length);
      const csv = readFileSync(join(out, stage, "loss.csv"), "utf8").trim().split("\n");
      expect(csv[0]).toBe("step,loss");
      expect(csv.length, stage).toBe(rows + 1);
    }
    expect(readFileSync(join(out, "finetune", "checkpoint", "model.safetensors"))).not.toEqual(readFileSync(join(out, "train", "checkpoint", "model.safetensors")));
    expect(readFileSync(join(out, "finetune2", "checkpoint", "model.safetensors"))).not.toEqual(readFileSync(join(out, "finetune", "checkpoint", "model.safetensors")));
    expect(readFileSync(join(out, "finetune3", "checkpoint", "model.safetensors"))).not.toEqual(readFileSync(join(out, "finetune2", "checkpoint", "model.safetensors")));
    const ckpt = join(out, "finetune3", "checkpoint");
    // --ft3-vit-layers 2: stage 4 starts from stage 3's weights grown to two image encoder blocks.
    expect(r.out).toContain(`segvol grow --weights ${join(out, "finetune2", "checkpoint")} --out ${join(out, "finetune3-grown")} --vit-layers 2`);
    expect(loadConfig(join(ckpt, "config.json")).vit.num_layers).toBe(2);
    expect(loadConfig(join(out, "finetune2", "checkpoint", "config.json")).vit.num_layers).toBe(1);
    expect(readdirSync(join(out, "data", "imagesTr"))).toEqual(["phantom_1000.nii.gz"]);
    expect(readdirSync(join(out, "data-2", "imagesTr"))).toEqual(["phantom_1000.nii.gz", "phantom_1001.nii.gz"]);
    // --ship: the model, config, tokenizer, categories and recipe, nothing else.
    expect(readdirSync(shipped).sort()).toEqual(["categories.json", "config.json", "merges.txt", "model.safetensors", "recipe.json", "vocab.json"]);
    expect(readFileSync(join(shipped, "model.safetensors"))).toEqual(readFileSync(join(ckpt, "model.safetensors")));
    expect(JSON.parse(readFileSync(join(shipped, "categories.json"), "utf8"))).toEqual(["liver", "spleen", "left kidney", "right kidney"]);
    const recipe = JSON.parse(readFileSync(join(shipped, "recipe.json"), "utf8"));
    expect(recipe.flags.steps).toBe("2");
    expect(recipe.flags["ft-steps"]).toBe("1");
    expect(recipe.flags["ft2-cases"]).toBe("2");
    expect(recipe.flags["ft3-box-jitter"]).toBe("2");
    expect(recipe.flags["ft3-shared-sets"]).toBe("yes");
    expect(recipe.flags["ft2-shared-sets"]).toBe("no");
    expect(recipe.flags["ft3-vit-layers"]).toBe("2");
    expect(recipe.stages).toEqual({ train: 2, finetune: 1, finetune2: 1, finetune3: 1 });
    expect(recipe.steps).toBe(5);
    expect(recipe.trainSeeds).toEqual([1000, 1001]);
    expect(readdirSync(tmp).filter((f) => f.includes(".ship-"))).toEqual([]);
  }, 300_000);
});
