// Writing a weights folder (model.safetensors + config.json + tokenizer
// files + categories.json) for the commands that make one from scratch or from another
// (`segvol init`, `segvol grow`): the folder is built beside DIR and renamed
// into place, so DIR is either complete or untouched, and an existing DIR is
// replaced only when it is a previous output of the same command that holds
// none of the command's inputs.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { assertSparesInputs, previousOutput } from "../weights/output_dir.js";
import { writeSafetensors } from "../weights/safetensors.js";
import { replaceDir } from "../io/atomic.js";
import { CATEGORIES_FILE } from "../segvol/categories.js";
import type { SegVolConfig } from "../segvol/config.js";
import { TOKENIZER_FILES } from "../segvol/tokenizer.js";

const OUTPUT_FILES = new Set(["model.safetensors", "config.json", CATEGORIES_FILE, ...TOKENIZER_FILES]);

/**
 * Refuses an output folder holding anything but a previous output of the
 * same command (a weights folder whose model.safetensors names `producer`),
 * and one whose replacement would replace or delete one of `inputs`.
 */
export function checkWeightsOutputDir(out: string, producer: string, what: string, inputs: readonly string[]): void {
  assertSparesInputs(out, inputs, what);
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new Error(`${what}: output ${out} exists and is not a folder`);
  const entries = readdirSync(out);
  if (entries.length === 0) return;
  const { ours } = previousOutput(out, OUTPUT_FILES, producer);
  if (!ours) throw new Error(`${what}: output folder ${out} is not empty and not a previous ${producer} output; choose another --out or remove it`);
}

export interface WeightsFolder {
  tensors: Iterable<[string, { shape: readonly number[]; data: Float32Array }]>;
  config: SegVolConfig;
  /** Safetensors metadata; `producer` names the command (checkWeightsOutputDir reads it). */
  metadata: Record<string, string> & { producer: string };
  /** Writes the tokenizer files into the folder being built. */
  tokenizer?: (dir: string) => void;
  /** The categories its text prompts may name, written to categories.json (null or absent: none stated). */
  categories?: readonly string[] | null;
}

/** Builds the folder beside `out` (creating its parents) and renames it into place. */
export function writeWeightsFolder(out: string, w: WeightsFolder): void {
  const tmp = join(dirname(out), `.${basename(out)}.${w.metadata.producer.replace(/\W+/g, "-")}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(tmp, { recursive: true });
  let done = false;
  try {
    const list = [...w.tensors].map(([name, t]) => ({ name, dtype: "F32" as const, shape: [...t.shape], data: t.data }));
    writeSafetensors(join(tmp, "model.safetensors"), list, { format: "pt", ...w.metadata });
    writeFileSync(join(tmp, "config.json"), JSON.stringify(w.config, null, 2) + "\n");
    w.tokenizer?.(tmp);
    if (w.categories) writeFileSync(join(tmp, CATEGORIES_FILE), JSON.stringify(w.categories) + "\n");
    replaceDir(tmp, out);
    done = true;
  } finally {
    if (!done) rmSync(tmp, { recursive: true, force: true });
  }
}
