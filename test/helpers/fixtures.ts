// Golden fixtures written offline by tools/fixtures/*.py (PyTorch): JSON with
// base64 little-endian arrays. Tests never need Python.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export interface FixtureArray {
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface FixtureCase {
  name: string;
  params: Record<string, unknown>;
  inputs: Record<string, FixtureArray>;
  outputs: Record<string, FixtureArray>;
}

interface RawArray {
  shape: number[];
  dtype: "f32" | "i32";
  b64: string;
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");

/** The vendored CLIP tokenizer (weights/clip-tokenizer, MIT): both file layouts and the reference goldens. */
export const CLIP_TOKENIZER_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "weights", "clip-tokenizer");

function decode(raw: RawArray): FixtureArray {
  const bytes = Buffer.from(raw.b64, "base64");
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const data = raw.dtype === "i32" ? new Int32Array(copy) : new Float32Array(copy);
  return { shape: raw.shape, data };
}

/** Loads `test/fixtures/<path>.json` (e.g. "kernels/elementwise"). */
export function loadFixture(path: string): FixtureCase[] {
  const json = JSON.parse(readFileSync(join(root, `${path}.json`), "utf8")) as {
    cases: { name: string; params: Record<string, unknown>; inputs: Record<string, RawArray>; outputs: Record<string, RawArray> }[];
  };
  return json.cases.map((c) => ({
    name: c.name,
    params: c.params,
    inputs: Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, decode(v)])),
    outputs: Object.fromEntries(Object.entries(c.outputs).map(([k, v]) => [k, decode(v)])),
  }));
}

/** max |actual − expected| / max |expected|: the error relative to the output's scale. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: got ${actual.length}, expected ${expected.length}`);
  }
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}
