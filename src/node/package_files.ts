// Files that ship inside the segvol-webgpu package (the demo model, the CLIP
// vocabulary), found from this module's own location, not the working
// directory: the same code runs from src/ (tsx, tests) and from the dist/
// bundle of an installed package. Node only.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package folder (holds package.json named segvol-webgpu), found upwards from this module. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "segvol-webgpu") return dir;
      } catch {
        // an unreadable package.json is not ours; keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the segvol-webgpu package folder above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The shipped demo weights folder. */
export function demoWeightsDir(): string {
  return join(packageRoot(), "weights", "demo");
}

/** The shipped CLIP tokenizer (vocab.json + merges.txt, OpenAI's, MIT), which the official SegVol text tower uses. */
export function clipTokenizerDir(): string {
  return join(packageRoot(), "weights", "clip-tokenizer");
}

/** CLIP's vocabulary size: a text tower of this size takes the shipped CLIP tokenizer. */
export const CLIP_VOCAB_SIZE = 49408;
