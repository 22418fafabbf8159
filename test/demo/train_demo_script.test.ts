// `npm run train:demo` (scripts/train-demo.mjs): bad flags are refused with
// the flag named; a tiny run (one phantom, a small config, two steps and one
// fine-tuning step) goes through phantom → init → train → train again and
// leaves checkpoint folders with the built tokenizer and loss.csv files, and
// ships the second stage's model.
import { spawnSync } from "node:child_process";
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

function run(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [script, ...args], { cwd: repo, encoding: "utf8", timeout: 300_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("train:demo recipe", () => {
  it("refuses unknown flags and bad numbers, naming them", () => {
    const a = run(["--bogus", "1"]);
    expect(a.code).toBe(1);
    expect(a.out).toMatch(/train:demo: unknown flag --bogus/);
    const b = run(["--steps", "many"]);
    expect(b.code).toBe(1);
    expect(b.out).toMatch(/train:demo: --steps many: expected a non-negative integer/);
    const c = run(["--ft-steps", "-1"]);
    expect(c.code).toBe(1);
    expect(c.out).toMatch(/train:demo: --ft-steps -1: expected a non-negative integer/);
  });

  it("runs phantom → init → train end to end on a tiny config", () => {
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
    const r = run(["--out", out, "--config", cfg, "--cases", "1", "--steps", "2", "--warmup", "1", "--ft-steps", "1", "--ft-warmup", "0", "--save-every", "0", "--ship", shipped]);
    expect(r.code, r.out).toBe(0);
    // Stage 2 starts from stage 1's weights and writes its own folder.
    expect(r.out).toContain(`--weights ${join(out, "train", "checkpoint")} --out ${join(out, "finetune")} --steps 1 --lr 5e-4 --warmup 0`);
    expect(r.out).toContain(`weights folder: ${join(out, "finetune", "checkpoint")}`);
    for (const [stage, rows] of [["train", 2], ["finetune", 1]] as const) {
      const ckpt = join(out, stage, "checkpoint");
      for (const f of ["model.safetensors", "config.json", "vocab.json", "merges.txt"]) expect(existsSync(join(ckpt, f)), `${stage}/${f}`).toBe(true);
      expect(loadConfig(join(ckpt, "config.json")).text!.vocab_size).toBe(Object.keys(JSON.parse(readFileSync(join(ckpt, "vocab.json"), "utf8"))).length);
      const csv = readFileSync(join(out, stage, "loss.csv"), "utf8").trim().split("\n");
      expect(csv[0]).toBe("step,loss");
      expect(csv.length, stage).toBe(rows + 1);
    }
    expect(readFileSync(join(out, "finetune", "checkpoint", "model.safetensors"))).not.toEqual(readFileSync(join(out, "train", "checkpoint", "model.safetensors")));
    const ckpt = join(out, "finetune", "checkpoint");
    expect(readdirSync(join(out, "data", "imagesTr"))).toEqual(["phantom_1000.nii.gz"]);
    // --ship: the model, config, tokenizer, categories and recipe, nothing else.
    expect(readdirSync(shipped).sort()).toEqual(["categories.json", "config.json", "merges.txt", "model.safetensors", "recipe.json", "vocab.json"]);
    expect(readFileSync(join(shipped, "model.safetensors"))).toEqual(readFileSync(join(ckpt, "model.safetensors")));
    expect(JSON.parse(readFileSync(join(shipped, "categories.json"), "utf8"))).toEqual(["liver", "spleen", "left kidney", "right kidney"]);
    const recipe = JSON.parse(readFileSync(join(shipped, "recipe.json"), "utf8"));
    expect(recipe.flags.steps).toBe("2");
    expect(recipe.flags["ft-steps"]).toBe("1");
    expect(recipe.stages).toEqual({ train: 2, finetune: 1 });
    expect(recipe.steps).toBe(3);
    expect(recipe.trainSeeds).toEqual([1000, 1000]);
    expect(readdirSync(tmp).filter((f) => f.includes(".ship-"))).toEqual([]);
  });
});
