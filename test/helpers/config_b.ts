// Config B's weights folder as its goldens were made: every tensor from
// the hash init of test/fixtures/model/config_b_init.json
// (tools/segvol_ref hashes them the same way), config_b.json, and a
// placeholder tokenizer (the goldens feed explicit token ids).
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors } from "../../src/weights/safetensors.js";
import { hashValues, loadInitSpec } from "./hashinit.js";

const FIX = join(__dirname, "..", "fixtures", "model");

/** Writes config B's model.safetensors, config.json, vocab.json and merges.txt into dir. */
export function writeConfigBWeights(dir: string): void {
  const spec = loadInitSpec(join(FIX, "config_b_init.json"));
  writeSafetensors(
    join(dir, "model.safetensors"),
    Object.entries(spec.tensors).map(([name, t]) => ({
      name,
      dtype: "F32" as const,
      shape: t.shape,
      data: () => hashValues(name, t.shape.reduce((a, b) => a * b, 1), t.scale, t.offset),
    })),
  );
  copyFileSync(join(FIX, "config_b.json"), join(dir, "config.json"));
  const vocab: Record<string, number> = {};
  for (let i = 0; i < 62; i++) vocab[`t${i}</w>`] = i;
  vocab["<|startoftext|>"] = 62;
  vocab["<|endoftext|>"] = 63;
  writeFileSync(join(dir, "vocab.json"), JSON.stringify(vocab));
  writeFileSync(join(dir, "merges.txt"), "#version: 0.2\n");
}
