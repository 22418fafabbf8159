// Loading the CLIP tokenizer (49,408 tokens, 48,894 merges) from each file
// layout: host work, timed by the same harness as the kernels. It runs once
// per SegVol.fromWeights of a model with a text tower.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { ClipTokenizer } from "../src/segvol/tokenizer.js";
import type { BenchCase } from "./harness.js";

const CLIP = fileURLToPath(new URL("../weights/clip-tokenizer", import.meta.url));

/** A folder holding only `files` of the vendored CLIP tokenizer, so fromDir takes that layout. */
function layout(files: string[]): { dir: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "clip-bench-"));
  for (const f of files) copyFileSync(join(CLIP, f), join(dir, f));
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

export const cases: BenchCase[] = [
  ["tokenizer.json", ["tokenizer.json"]],
  ["vocab.json + merges.txt", ["vocab.json", "merges.txt"]],
].map(([shape, files]) => ({
  op: "ClipTokenizer.fromDir",
  shape: shape as string,
  setup: () => {
    const l = layout(files as string[]);
    return { run: () => void ClipTokenizer.fromDir(l.dir), dispose: l.dispose };
  },
}));
