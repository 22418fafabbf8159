// `segvol info --weights DIR [--json]`: what a weights folder holds — its
// configuration, the categories its text prompts may name, its parameter
// count and dtype — read from the files alone (no GPU).
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ST_DTYPE_BYTES } from "../weights/dtype.js";
import { SafetensorsFile } from "../weights/safetensors.js";
import { CATEGORIES_FILE, readCategories } from "../segvol/categories.js";
import { loadConfig, type SegVolConfig } from "../segvol/config.js";
import { examples } from "./help.js";

export interface WeightsInfo {
  weights: string;
  config: SegVolConfig;
  /** What text prompts may name; null when the folder states nothing. */
  categories: string[] | null;
  parameters: number;
  /** The tensors' storage type(s), e.g. "F32"; several joined by "+". */
  dtype: string;
  bytes: number;
}

/** Reads a weights folder's description; throws naming a missing file. */
export function weightsInfo(dir: string): WeightsInfo {
  for (const f of ["config.json", "model.safetensors"]) {
    if (!existsSync(join(dir, f))) throw new Error(`${dir}: missing ${f} (expected a weights folder: segvol convert's output, or weights/demo)`);
  }
  const config = loadConfig(join(dir, "config.json"));
  const file = SafetensorsFile.open(join(dir, "model.safetensors"));
  try {
    let parameters = 0;
    let bytes = 0;
    const dtypes = new Set<string>();
    for (const name of file.keys()) {
      const { dtype, shape } = file.info(name);
      const n = shape.reduce((a, b) => a * b, 1);
      parameters += n;
      bytes += n * ST_DTYPE_BYTES[dtype];
      dtypes.add(dtype);
    }
    return { weights: dir, config, categories: config.text ? readCategories(dir) : null, parameters, dtype: [...dtypes].sort().join("+"), bytes };
  } finally {
    file.close();
  }
}

function categoriesLine(i: WeightsInfo): string {
  if (!i.config.text) return "none (no text tower: box and point prompts only)";
  if (!i.categories) return `not stated (no ${CATEGORIES_FILE}): text prompts need --allow-unknown-text`;
  return i.categories.join(", ");
}

export function registerInfo(program: Command): void {
  program
    .command("info")
    .description("describe a weights folder: its categories, parameter count, dtype and configuration")
    .requiredOption("--weights <dir>", "weights folder (written by `segvol convert`, or weights/demo)")
    .option("--json", "print {weights, config, categories, parameters, dtype, bytes} as JSON")
    .addHelpText("after", examples(["segvol info --weights weights/demo", "segvol info --weights weights/segvol --json"]))
    .action((o: { weights: string; json?: boolean }) => {
      const i = weightsInfo(o.weights);
      if (o.json) {
        process.stdout.write(JSON.stringify(i) + "\n");
        return;
      }
      console.log(`weights:    ${i.weights}`);
      console.log(`categories: ${categoriesLine(i)}`);
      console.log(`parameters: ${i.parameters.toLocaleString("en-US")} (${i.dtype}, ${(i.bytes / 1e6).toFixed(1)} MB)`);
      console.log("config:");
      for (const [key, value] of Object.entries(i.config)) console.log(`  ${key}: ${JSON.stringify(value)}`);
    });
}
