// `segvol init --config CONFIG.json --out DIR [--seed N] [--categories a,b,c]`:
// a from-scratch weights folder (model.safetensors + config.json, and for a
// model with a text tower a small tokenizer learnt on the category prompts)
// that `segvol train --weights` and SegVol.fromWeights load. Values follow
// PyTorch's default initialisation (src/train/init.ts). The folder is built
// beside DIR and renamed into place, so DIR is either complete or untouched.
import type { Command } from "commander";
import { resolve } from "node:path";
import { PHANTOM_LABELS } from "../demo/phantom.js";
import { buildTokenizer, writeTokenizerFiles, type BuiltTokenizer } from "../demo/tokenizer_builder.js";
import { loadConfig, parseConfig, type SegVolConfig } from "../segvol/config.js";
import { parameterCount, expectedParameters } from "../segvol/params.js";
import { ClipTokenizer } from "../segvol/tokenizer.js";
import { initWeights } from "../train/init.js";
import { examples } from "./help.js";
import { names } from "./parse.js";
import { checkWeightsOutputDir, writeWeightsFolder } from "./weights_folder.js";

const PRODUCER = "segvol init";

export interface InitFolderOptions {
  /** A config.json path or a parsed config. */
  config: string | SegVolConfig;
  out: string;
  seed: number;
  /** Category names the tokenizer must cover (text tower only); default: every phantom organ. */
  categories?: string[];
  log?: (line: string) => void;
}

export interface InitFolderResult {
  out: string;
  tensors: number;
  parameters: number;
  /** The written config (text.vocab_size set to the built tokenizer's size). */
  config: SegVolConfig;
  /** Built tokenizer's vocabulary size, or null without a text tower. */
  vocabSize: number | null;
}

/** Writes the weights folder; see the file comment. */
export function writeInitFolder(o: InitFolderOptions): InitFolderResult {
  const log = o.log ?? (() => {});
  const source = typeof o.config === "string" ? o.config : "config";
  // Re-parse a given object too, so a hand-built config is checked the same way.
  const cfg = typeof o.config === "string" ? loadConfig(o.config) : parseConfig(JSON.parse(JSON.stringify(o.config)), source);
  const out = resolve(o.out);
  checkWeightsOutputDir(out, PRODUCER, "init", typeof o.config === "string" ? [o.config] : []);

  let tokenizer: BuiltTokenizer | null = null;
  const cats = cfg.text ? (o.categories ?? PHANTOM_LABELS.slice(1)) : null;
  if (cfg.text && cats) {
    tokenizer = buildTokenizer(cats, cfg.text.template);
    if (tokenizer.vocabSize !== cfg.text.vocab_size) {
      log(`text.vocab_size ${cfg.text.vocab_size} in ${source} → ${tokenizer.vocabSize} (the tokenizer built for ${cats.length} categories)`);
      cfg.text.vocab_size = tokenizer.vocabSize;
    }
    const tok = ClipTokenizer.fromVocabMerges(tokenizer.vocab, tokenizer.merges);
    const longest = Math.max(...tokenizer.prompts.map((p) => tok.encode(p).length));
    if (longest > cfg.text.max_position_embeddings) {
      throw new Error(`init: a category prompt needs ${longest} tokens but text.max_position_embeddings in ${source} is ${cfg.text.max_position_embeddings}`);
    }
  } else if (o.categories !== undefined) {
    throw new Error(`init: --categories given but ${source} has no text tower ("text": null), so there is no tokenizer to build`);
  }

  const weights = initWeights(cfg, o.seed);
  writeWeightsFolder(out, {
    tensors: weights,
    config: cfg,
    metadata: { producer: PRODUCER, seed: String(o.seed) },
    tokenizer: tokenizer ? (dir) => writeTokenizerFiles(dir, tokenizer) : undefined,
    categories: cats,
  });
  return { out, tensors: weights.size, parameters: parameterCount(expectedParameters(cfg)), config: cfg, vocabSize: tokenizer?.vocabSize ?? null };
}

function seedFlag(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`--seed ${v}: expected an integer in [0, 2^32)`);
  return n;
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("write a from-scratch weights folder (PyTorch-default initialisation; tokenizer built for the categories) for segvol train")
    .requiredOption("--config <config.json>", "model config (partial files merge over the official defaults)")
    .requiredOption("--out <dir>", "output folder (created; replaced only if it is a previous init output)")
    .option("--seed <n>", "random seed of the initial values", "0")
    .option(
      "--categories <names>",
      `the categories its text prompts may name, which the tokenizer must cover (text tower only; repeatable or comma-separated; default: ${PHANTOM_LABELS.slice(1).join(",")})`,
      names("--categories"),
    )
    .addHelpText(
      "after",
      examples([
        "segvol init --config small_config.json --out runs/init",
        "segvol init --config small_config.json --out runs/init --seed 7 --categories liver --categories spleen",
      ]),
    )
    .action((o: { config: string; out: string; seed: string; categories?: string[] }) => {
      const seed = seedFlag(o.seed);
      const r = writeInitFolder({ config: o.config, out: o.out, seed, categories: o.categories, log: (l) => console.error(l) });
      const tok = r.vocabSize === null ? "no text tower" : `tokenizer of ${r.vocabSize} tokens`;
      console.log(`${r.out}: ${r.tensors} tensors, ${r.parameters} parameters, seed ${seed}, ${tok}`);
    });
}
