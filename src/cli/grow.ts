// `segvol grow --weights DIR --out DIR --vit-layers N`: a trained weights
// folder with N image encoder blocks instead of its own count, the new ones
// starting as the identity (src/train/grow.ts), so the grown model gives
// the same masks until `segvol train` puts them to use. The tokenizer files
// and the categories are copied; the folder is built beside DIR and renamed into place.
import type { Command } from "commander";
import { copyFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { SafetensorsFile } from "../weights/safetensors.js";
import { readCategories } from "../segvol/categories.js";
import { loadConfig } from "../segvol/config.js";
import { expectedParameters } from "../segvol/params.js";
import { tokenizerFilesIn } from "../segvol/tokenizer.js";
import { deepenImageEncoder, type HostTensor } from "../train/grow.js";
import { examples } from "./help.js";
import { checkWeightsOutputDir, writeWeightsFolder } from "./weights_folder.js";

const PRODUCER = "segvol grow";

export interface GrowOptions {
  weights: string;
  out: string;
  vitLayers: number;
}

/** Writes the grown folder; returns its tensor count and image encoder depth. */
export function growFolder(o: GrowOptions): { out: string; tensors: number; vitLayers: number } {
  const src = resolve(o.weights);
  for (const f of ["config.json", "model.safetensors"]) {
    if (!existsSync(join(src, f))) throw new Error(`grow: ${src} has no ${f} (expected a weights folder written by segvol convert, init or train)`);
  }
  const out = resolve(o.out);
  if (out === src) throw new Error("grow: --out must differ from --weights");
  checkWeightsOutputDir(out, PRODUCER, "grow", [src]);
  const cfg = loadConfig(join(src, "config.json"));
  const file = SafetensorsFile.open(join(src, "model.safetensors"));
  const tensors = new Map<string, HostTensor>();
  try {
    for (const name of expectedParameters(cfg).keys()) {
      if (!file.has(name)) throw new Error(`grow: ${src}/model.safetensors has no ${name}`);
      tensors.set(name, { shape: file.info(name).shape, data: file.readF32(name) });
    }
  } finally {
    file.close();
  }
  const grown = deepenImageEncoder(cfg, tensors, o.vitLayers);
  writeWeightsFolder(out, {
    tensors: grown.tensors,
    config: grown.config,
    metadata: { producer: PRODUCER, from: src },
    tokenizer: (dir) => {
      for (const f of tokenizerFilesIn(src)) copyFileSync(join(src, f), join(dir, f));
    },
    categories: readCategories(src),
  });
  return { out, tensors: grown.tensors.size, vitLayers: o.vitLayers };
}

export function registerGrow(program: Command): void {
  program
    .command("grow")
    .description("add image encoder blocks to trained weights, starting as the identity (the same masks until trained further)")
    .requiredOption("--weights <dir>", "trained weights folder")
    .requiredOption("--out <dir>", "output folder (created; replaced only if it is a previous grow output)")
    .requiredOption("--vit-layers <n>", "image encoder blocks after growing (more than the model has)")
    .addHelpText("after", examples(["segvol grow --weights weights/demo --out runs/grown --vit-layers 22"]))
    .action((o: { weights: string; out: string; vitLayers: string }) => {
      const n = Number(o.vitLayers);
      if (o.vitLayers.trim() === "" || !Number.isInteger(n)) throw new Error(`--vit-layers ${o.vitLayers}: expected an integer`);
      const r = growFolder({ weights: o.weights, out: o.out, vitLayers: n });
      console.log(`${r.out}: ${r.tensors} tensors, ${r.vitLayers} image encoder blocks`);
    });
}
