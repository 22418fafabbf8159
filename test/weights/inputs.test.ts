// No command replaces or deletes a file it reads (issue 18, item 13):
// `convert cv/model.safetensors --out cv --dtype f16`, where cv was a previous
// convert output, replaced the f32 weights with f16 ones and exited 0. Every
// writer of a weights folder (convert, init, grow) now refuses an output
// folder that is, or holds, one of its inputs, however it is named.
import { linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { registerConvert } from "../../src/cli/convert.js";
import { growFolder } from "../../src/cli/grow.js";
import { writeInitFolder } from "../../src/cli/init.js";
import { parseConfig } from "../../src/segvol/config.js";
import { convertCheckpoint } from "../../src/segvol/convert.js";
import { OutputReplacesInputError } from "../../src/weights/output_dir.js";
import { fixture, tempDir } from "./util.js";

const dir = tempDir("inputs");
const tinyCfg = fixture("tiny_config.json");

/** Every file of a folder with its bytes, to compare before and after. */
function snapshot(folder: string): Map<string, Buffer> {
  return new Map(readdirSync(folder).map((f) => [f, readFileSync(join(folder, f))]));
}

/** The folders beside `folder` (temp folders a writer would leave). */
function siblings(): string[] {
  return readdirSync(dir).filter((n) => n.startsWith("."));
}

function refusal(fn: () => unknown): OutputReplacesInputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OutputReplacesInputError);
    return e as OutputReplacesInputError;
  }
  throw new Error("the command ran");
}

describe("convert never replaces its input", () => {
  const cv = join(dir, "cv");
  const tok = join(dir, "tok");
  mkdirSync(tok);
  for (const f of ["vocab.json", "merges.txt"]) writeFileSync(join(tok, f), `{"file": "${f}"}`);
  convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: cv, config: tinyCfg, tokenizerDir: tok });

  it("refuses `convert cv/model.safetensors --out cv --dtype f16` (CLI), leaving cv as it was", async () => {
    const before = snapshot(cv);
    const program = new Command().exitOverride();
    program.configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerConvert(program);
    const run = program.parseAsync(["node", "segvol", "convert", join(cv, "model.safetensors"), "--out", cv, "--config", tinyCfg, "--dtype", "f16"]);
    await expect(run).rejects.toThrow(
      `convert: refusing to write ${cv}: it would replace or delete ${join(cv, "model.safetensors")}, which this command reads; choose another --out`,
    );
    expect(snapshot(cv)).toEqual(before);
    expect(siblings()).toEqual([]);
  });

  it("refuses an output folder holding its config or the tokenizer files it copies", () => {
    const before = snapshot(cv);
    const withConfig = refusal(() => convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: cv, config: join(cv, "config.json") }));
    expect(withConfig.message).toContain(`it would replace or delete ${join(cv, "config.json")}`);
    const withTokenizer = refusal(() => convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: cv, config: tinyCfg, tokenizerDir: cv }));
    expect(withTokenizer.message).toMatch(/it would replace or delete .*cv\/(vocab\.json|merges\.txt), which this command reads/);
    expect(snapshot(cv)).toEqual(before);
  });

  it("sees through a symlinked output folder and a hard-linked input", () => {
    const before = snapshot(cv);
    const link = join(dir, "cv-link");
    symlinkSync(cv, link);
    const e = refusal(() => convertCheckpoint({ checkpoint: join(cv, "model.safetensors"), outDir: link, config: tinyCfg }));
    expect(e.message).toContain(`refusing to write ${link}`);
    // The same weights under another name outside cv: its bytes live in cv too.
    const hard = join(dir, "elsewhere.safetensors");
    linkSync(join(cv, "model.safetensors"), hard);
    refusal(() => convertCheckpoint({ checkpoint: hard, outDir: cv, config: tinyCfg, dtype: "f16" }));
    expect(snapshot(cv)).toEqual(before);
  });

  it("still replaces a previous output that holds none of its inputs", () => {
    const r = convertCheckpoint({ checkpoint: fixture("tiny_v1.pth"), outDir: cv, config: tinyCfg, tokenizerDir: tok, dtype: "f16" });
    expect(r.outDir).toBe(cv);
  });
});

describe("init and grow never replace their inputs", () => {
  // The tiny config without its text tower: init then builds no tokenizer.
  const noText = parseConfig({ ...(JSON.parse(readFileSync(tinyCfg, "utf8")) as object), text: null }, "tiny config without text");
  it("init refuses --config DIR/config.json --out DIR, leaving DIR as it was", () => {
    const w = join(dir, "init");
    writeInitFolder({ config: noText, out: w, seed: 0 });
    const before = snapshot(w);
    const e = refusal(() => writeInitFolder({ config: join(w, "config.json"), out: w, seed: 1 }));
    expect(e.message).toBe(`init: refusing to write ${w}: it would replace or delete ${join(w, "config.json")}, which this command reads; choose another --out`);
    expect(snapshot(w)).toEqual(before);
  });

  it("grow refuses an --out that is its --weights folder under another name", () => {
    const w = join(dir, "base");
    writeInitFolder({ config: noText, out: w, seed: 0 });
    const g = join(dir, "grown");
    growFolder({ weights: w, out: g, vitLayers: 3 });
    const before = snapshot(g);
    const link = join(dir, "grown-link");
    symlinkSync(g, link);
    const e = refusal(() => growFolder({ weights: g, out: link, vitLayers: 4 }));
    expect(e.message).toBe(`grow: refusing to write ${link}: it would replace or delete ${g}, which this command reads; choose another --out`);
    expect(snapshot(g)).toEqual(before);
  });
});
