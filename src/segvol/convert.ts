// `segvol convert` as a library function: checkpoint (+ config, tokenizer)
// → a weights folder {model.safetensors, config.json, tokenizer files}.
//
// Guarantees:
// - every expected parameter is present with the configured shape; all
//   missing, unexpected and mis-shaped keys are reported together;
// - tensors stream one at a time from the checkpoint into the output file;
// - the folder appears complete or not at all: everything is written into a
//   temp folder beside it, then renamed into place;
// - an existing output folder is replaced only if it is empty or a previous
//   convert output (only files convert writes, and a model.safetensors whose
//   metadata says `producer: segvol convert`); anything else is refused;
// - nor is it replaced when it holds one of the inputs (the checkpoint, the
//   config, a tokenizer file): convert never replaces a file it reads.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { CATEGORIES_FILE, OFFICIAL_CATEGORIES } from "./categories.js";
import { DEFAULT_CONFIG, loadConfig, type SegVolConfig } from "./config.js";
import { expectedParameters } from "./params.js";
import { hasVocabulary, TOKENIZER_FILES, tokenizerFilesIn } from "./tokenizer.js";
import { openCheckpoint, type Checkpoint } from "../weights/checkpoint.js";
import { bytesToF32, F16_MAX, isFloatDType, maxAbsFinite, shapeNumel } from "../weights/dtype.js";
import { dims, excerpt, quoted } from "../weights/quote.js";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../weights/safetensors.js";
import { replaceDir } from "../io/atomic.js";
import { CLIP_VOCAB_SIZE, clipTokenizerDir } from "../node/package_files.js";
import { assertSparesInputs, previousOutput } from "../weights/output_dir.js";

export const PRODUCER = "segvol convert";
const OUTPUT_FILES = new Set(["model.safetensors", "config.json", CATEGORIES_FILE, ...TOKENIZER_FILES]);

export class ConvertError extends Error {
  override name = "ConvertError";
}

/** The checkpoint does not match the config; `details()` lists every problem, one per line. */
export class ConvertMismatchError extends ConvertError {
  override name = "ConvertMismatchError";
  constructor(
    readonly checkpoint: string,
    readonly missing: { name: string; shape: number[] }[],
    readonly unexpected: { name: string; shape: number[] }[],
    readonly mismatched: { name: string; shape: number[]; expected: number[] }[],
  ) {
    const parts: string[] = [];
    const first = (xs: { name: string }[]): string => xs.slice(0, 3).map((x) => excerpt(x.name)).join(", ") + (xs.length > 3 ? ", ..." : "");
    if (mismatched.length) {
      const m = mismatched[0]!;
      parts.push(`${mismatched.length} shape mismatch(es) (${excerpt(m.name)}: checkpoint ${dims(m.shape)}, config ${dims(m.expected)}${mismatched.length > 1 ? ", ..." : ""})`);
    }
    if (missing.length) parts.push(`${missing.length} missing (${first(missing)})`);
    if (unexpected.length) parts.push(`${unexpected.length} unexpected (${first(unexpected)})`);
    super(`convert: ${checkpoint} does not match the config: ${parts.join("; ")}`);
  }

  details(): string {
    return [
      ...this.mismatched.map((m) => `  shape mismatch: ${excerpt(m.name)}: checkpoint ${dims(m.shape)}, config expects ${dims(m.expected)}`),
      ...this.missing.map((m) => `  missing: ${excerpt(m.name)} ${dims(m.shape)}`),
      ...this.unexpected.map((m) => `  unexpected: ${excerpt(m.name)} ${dims(m.shape)}`),
    ].join("\n");
  }
}

export interface ConvertOptions {
  checkpoint: string;
  outDir: string;
  /** A config object, a path to a config.json, or undefined for the official model. */
  config?: SegVolConfig | string;
  /** Folder with tokenizer files; default: the checkpoint's folder. */
  tokenizerDir?: string;
  dtype?: "f32" | "f16";
  /** The text categories the model knows, written to categories.json (models with a text tower); default: the official SegVol list. */
  categories?: readonly string[];
  /** Progress lines (one per stage). */
  log?: (line: string) => void;
}

export interface ConvertResult {
  outDir: string;
  tensors: number;
  parameters: number;
  bytes: number;
  files: string[];
  ignored: string[];
  strippedPrefix: string;
  warnings: string[];
}

/** Compares a checkpoint with the config's parameter list; throws ConvertMismatchError listing every problem. */
export function checkAgainstConfig(ck: Checkpoint, expected: Map<string, number[]>): void {
  const missing: { name: string; shape: number[] }[] = [];
  const mismatched: { name: string; shape: number[]; expected: number[] }[] = [];
  for (const [name, shape] of expected) {
    if (!ck.has(name)) missing.push({ name, shape });
    else {
      const got = ck.info(name).shape;
      if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) mismatched.push({ name, shape: got, expected: shape });
    }
  }
  const unexpected = ck
    .names()
    .filter((n) => !expected.has(n))
    .map((name) => ({ name, shape: ck.info(name).shape }));
  if (missing.length || unexpected.length || mismatched.length) throw new ConvertMismatchError(ck.path, missing, unexpected, mismatched);
}

export function convertCheckpoint(opts: ConvertOptions): ConvertResult {
  const log = opts.log ?? (() => {});
  const dtype = opts.dtype ?? "f32";
  if (dtype !== "f32" && dtype !== "f16") throw new ConvertError(`convert: --dtype must be f32 or f16, got ${String(dtype)}`);
  const cfg = opts.config === undefined ? DEFAULT_CONFIG : typeof opts.config === "string" ? loadConfig(opts.config) : opts.config;
  const outDir = resolve(opts.outDir);
  let tokDir = opts.tokenizerDir ?? dirname(resolve(opts.checkpoint));
  let tokFiles = tokenizerFilesIn(tokDir);
  // The GitHub release SegVol_v1.pth comes without tokenizer files: a
  // CLIP-sized text tower then takes the CLIP vocabulary the package ships.
  const shippedClip = opts.tokenizerDir === undefined && cfg.text?.vocab_size === CLIP_VOCAB_SIZE && !hasVocabulary(tokFiles);
  if (shippedClip) {
    tokDir = clipTokenizerDir();
    tokFiles = tokenizerFilesIn(tokDir);
  }
  const inputs = [opts.checkpoint, ...(typeof opts.config === "string" ? [opts.config] : []), ...tokFiles.map((f) => join(tokDir, f))];
  assertSparesInputs(outDir, inputs, "convert");
  checkOutputDir(outDir);

  const ck = openCheckpoint(opts.checkpoint);
  try {
    log(
      `read ${ck.path} (${ck.format}${ck.location.length ? `, state dict under "${ck.location.join(".")}"` : ""}${ck.strippedPrefix ? `, prefix "${ck.strippedPrefix}" stripped` : ""}): ${ck.names().length} tensors`,
    );
    const expected = expectedParameters(cfg);
    checkAgainstConfig(ck, expected);
    for (const name of expected.keys()) {
      const d = ck.info(name).dtype;
      if (!isFloatDType(d)) throw new ConvertError(`convert: ${ck.path}: tensor ${quoted(ck.sourceKey(name))} is ${d}, a floating-point parameter was expected`);
    }

    const warnings: string[] = [];
    if (opts.tokenizerDir !== undefined && tokFiles.length === 0) {
      throw new ConvertError(`convert: --tokenizer ${opts.tokenizerDir} holds none of ${TOKENIZER_FILES.join(", ")}`);
    }
    if (shippedClip) log(`no tokenizer files beside the checkpoint: using the CLIP vocabulary shipped with segvol-webgpu (${tokDir})`);
    if (cfg.text && !hasVocabulary(tokFiles)) {
      warnings.push(
        `no tokenizer (tokenizer.json, or vocab.json + merges.txt) in ${tokDir}: text prompts will not work with this folder; pass --tokenizer <dir>`,
      );
    }

    // Build everything in a sibling temp folder (same filesystem: rename is atomic).
    const tmp = join(dirname(outDir), `.${basename(outDir)}.convert-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(tmp, { recursive: true }); // also creates the output's parent folders
    let done = false;
    try {
      const st = dtype === "f16" ? "F16" : "F32";
      let bytes = 0;
      let params = 0;
      const tensors: TensorToWrite[] = [...expected].map(([name, shape]) => {
        params += shapeNumel(shape);
        bytes += shapeNumel(shape) * (dtype === "f16" ? 2 : 4);
        return { name, dtype: st, shape, data: () => tensorData(ck, name, dtype) };
      });
      const metadata = { format: "pt", producer: PRODUCER, source: basename(ck.path), dtype };
      writeSafetensors(join(tmp, "model.safetensors"), tensors, metadata);
      log(`wrote model.safetensors: ${tensors.length} tensors, ${params} parameters, ${dtype}`);
      // Re-open: the written header must validate and list exactly the expected tensors.
      const check = SafetensorsFile.open(join(tmp, "model.safetensors"));
      const n = check.keys().length;
      check.close();
      if (n !== expected.size) throw new ConvertError(`convert: internal error: wrote ${n} tensors, expected ${expected.size}`);
      writeFileSync(join(tmp, "config.json"), JSON.stringify(cfg, null, 2) + "\n");
      for (const f of tokFiles) {
        copyFileSync(join(tokDir, f), join(tmp, f));
        chmodSync(join(tmp, f), 0o644); // not the source's mode (e.g. a read-only cache)
      }
      if (tokFiles.length) log(`copied ${tokFiles.join(", ")} from ${tokDir}`);
      // The folder states what its text prompts may name (src/segvol/categories.ts).
      const catFiles = cfg.text ? [CATEGORIES_FILE] : [];
      if (cfg.text) writeFileSync(join(tmp, CATEGORIES_FILE), JSON.stringify(opts.categories ?? OFFICIAL_CATEGORIES) + "\n");
      replaceDir(tmp, outDir);
      done = true;
      return {
        outDir,
        tensors: tensors.length,
        parameters: params,
        bytes,
        files: ["model.safetensors", "config.json", ...catFiles, ...tokFiles],
        ignored: ck.ignored,
        strippedPrefix: ck.strippedPrefix,
        warnings,
      };
    } finally {
      if (!done) rmSync(tmp, { recursive: true, force: true });
    }
  } finally {
    ck.close();
  }
}

/** One tensor's output bytes: f32 kept bit-exact, or rounded to f16 with an overflow check. */
function tensorData(ck: Checkpoint, name: string, dtype: "f32" | "f16"): Uint8Array | Float32Array {
  const stored = ck.info(name).dtype;
  if (dtype === "f16" && stored === "F16") return ck.readRaw(name);
  if (dtype === "f32" && stored === "F32") return ck.readRaw(name);
  const f = bytesToF32(ck.readRaw(name), stored);
  if (dtype === "f16") {
    const m = maxAbsFinite(f);
    if (m > F16_MAX) {
      throw new ConvertError(`convert: ${ck.path}: tensor ${quoted(ck.sourceKey(name))} has |value| ${m} beyond the f16 range (${F16_MAX}); convert with --dtype f32`);
    }
  }
  return f; // writeSafetensors rounds f32 → f16 (nearest even) for F16 outputs
}

/** Refuses an output folder that holds anything but a previous convert's files. */
function checkOutputDir(outDir: string): void {
  if (!existsSync(outDir)) return;
  if (!statSync(outDir).isDirectory()) throw new ConvertError(`convert: output ${outDir} exists and is not a folder`);
  const entries = readdirSync(outDir);
  if (entries.length === 0) return;
  const { ours, foreign } = previousOutput(outDir, OUTPUT_FILES, PRODUCER);
  if (!ours) {
    throw new ConvertError(
      `convert: output folder ${outDir} is not empty and not a previous convert output (${foreign.length ? `it holds ${foreign.slice(0, 3).join(", ")}` : "its model.safetensors was not written by segvol convert"}); choose another --out or remove it`,
    );
  }
}

/** Moves the finished temp folder into place; a previous output is swapped out, then deleted. */
