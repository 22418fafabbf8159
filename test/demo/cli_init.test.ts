// `segvol init`: writes a complete weights folder atomically (config.json with
// the built tokenizer's vocab_size, model.safetensors, vocab.json +
// merges.txt), replaces only a previous init output, and refuses bad input
// before anything is written, leaving no temporary folders behind.
import { Command } from "commander";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { SafetensorsFile } from "../../src/weights/safetensors.js";
import { growFolder } from "../../src/cli/grow.js";
import { registerInit } from "../../src/cli/init.js";
import { readCategories } from "../../src/segvol/categories.js";
import { loadConfig } from "../../src/segvol/config.js";
import { expectedParameters } from "../../src/segvol/params.js";
import { ClipTokenizer } from "../../src/segvol/tokenizer.js";

const tmp = mkdtempSync(join(tmpdir(), "segvol-cli-init-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Small configs on disk: one with a text tower, one without.
const TEXT = { vocab_size: 1, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 12, layer_norm_eps: 1e-5, hidden_act: "quick_gelu", template: "A computerized tomography of a {}." };
const BASE = {
  spatial_size: [8, 32, 48],
  patch_size: [4, 16, 16],
  vit: { hidden_size: 16, mlp_dim: 24, num_layers: 1, num_heads: 2 },
  decoder: { transformer_dim: 16, depth: 1, num_heads: 2, mlp_dim: 8, num_multimask_outputs: 3, iou_head_depth: 3, iou_head_hidden_dim: 8, attention_downsample_rate: 2 },
  prompt_encoder: { mask_in_chans: 4 },
};
const withText = join(tmp, "text.json");
const noText = join(tmp, "notext.json");
const shortText = join(tmp, "short.json");
writeFileSync(withText, JSON.stringify({ ...BASE, text: TEXT }));
writeFileSync(noText, JSON.stringify({ ...BASE, text: null }));
writeFileSync(shortText, JSON.stringify({ ...BASE, text: { ...TEXT, max_position_embeddings: 8 } }));

async function run(args: string[]): Promise<string[]> {
  const lines: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((m: string) => void lines.push(m));
  const err = vi.spyOn(console, "error").mockImplementation((m: string) => void lines.push(m));
  try {
    const p = new Command().exitOverride();
    registerInit(p);
    await p.parseAsync(["node", "segvol", "init", ...args]);
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
  return lines;
}

/** Leftover temporary folders of an init in `dir`. */
const leftovers = (dir: string) => readdirSync(dir).filter((e) => e.includes(".init-"));

describe("segvol init", () => {
  it("writes model.safetensors, config.json and a tokenizer for the categories", async () => {
    const out = join(tmp, "parent", "w");
    const lines = await run(["--config", withText, "--out", out, "--seed", "5", "--categories", "liver,left kidney"]);
    expect(readdirSync(out).sort()).toEqual(["categories.json", "config.json", "merges.txt", "model.safetensors", "vocab.json"]);
    // The folder states its categories, so its text prompts are checked against them.
    expect(readCategories(out)).toEqual(["liver", "left kidney"]);
    const cfg = loadConfig(join(out, "config.json"));
    const tok = ClipTokenizer.fromDir(out);
    expect(cfg.text!.vocab_size).toBe(tok.vocabSize);
    expect(lines.join("\n")).toMatch(/text\.vocab_size 1 in .*text\.json → \d+/);
    expect(lines.join("\n")).toMatch(/seed 5, tokenizer of \d+ tokens/);
    const f = SafetensorsFile.open(join(out, "model.safetensors"));
    const exp = expectedParameters(cfg);
    expect(f.keys()).toEqual([...exp.keys()]);
    for (const [n, s] of exp) expect(f.info(n).shape, n).toEqual(s);
    expect(f.metadata.producer).toBe("segvol init");
    expect(f.metadata.seed).toBe("5");
    f.close();
    expect(leftovers(join(tmp, "parent"))).toEqual([]);
  });

  it("and segvol grow keeps the folder's categories and tokenizer", async () => {
    const out = join(tmp, "to-grow");
    await run(["--config", withText, "--out", out, "--categories", "spleen", "--categories", "liver"]);
    const grown = join(tmp, "grown");
    growFolder({ weights: out, out: grown, vitLayers: loadConfig(join(out, "config.json")).vit.num_layers + 1 });
    expect(readCategories(grown)).toEqual(["spleen", "liver"]);
    for (const f of ["vocab.json", "merges.txt"]) expect(readFileSync(join(grown, f))).toEqual(readFileSync(join(out, f)));
  });

  it("replaces a previous init output (same seed, same bytes) but never a foreign folder", async () => {
    const out = join(tmp, "again");
    await run(["--config", noText, "--out", out, "--seed", "1"]);
    const first = readFileSync(join(out, "model.safetensors"));
    await run(["--config", noText, "--out", out, "--seed", "2"]);
    expect(readFileSync(join(out, "model.safetensors")).equals(first)).toBe(false);
    await run(["--config", noText, "--out", out, "--seed", "1"]);
    expect(readFileSync(join(out, "model.safetensors")).equals(first)).toBe(true);
    expect(readdirSync(out).sort()).toEqual(["config.json", "model.safetensors"]); // no text tower: no tokenizer

    const foreign = join(tmp, "foreign");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "notes.txt"), "mine");
    await expect(run(["--config", noText, "--out", foreign])).rejects.toThrow(/init: output folder .*foreign is not empty and not a previous segvol init output/);
    expect(readdirSync(foreign)).toEqual(["notes.txt"]);
    expect(leftovers(tmp)).toEqual([]);
  });

  it("refuses bad input before writing anything", async () => {
    const out = join(tmp, "bad");
    await expect(run(["--config", withText, "--out", out, "--seed", "-1"])).rejects.toThrow(/--seed -1: expected an integer/);
    await expect(run(["--config", withText, "--out", out, "--categories", "liver,,spleen"])).rejects.toThrow(/--categories liver,,spleen: empty name/);
    await expect(run(["--config", noText, "--out", out, "--categories", "liver"])).rejects.toThrow(/init: --categories given but .*notext\.json has no text tower/);
    await expect(run(["--config", join(tmp, "missing.json"), "--out", out])).rejects.toThrow(/config .*missing\.json: cannot read/);
    // "A computerized tomography of a inferior vena cava." is 11 tokens with bos/eos; 8 positions do not hold it.
    await expect(run(["--config", shortText, "--out", out, "--categories", "liver,inferior vena cava"])).rejects.toThrow(
      /init: a category prompt needs 11 tokens but text\.max_position_embeddings in .*short\.json is 8/,
    );
    expect(existsSync(out)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });
});
