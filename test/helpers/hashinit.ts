// Re-creates the reference's counter-hash weights (tools/segvol_ref/hashinit.py)
// so large test models need not be committed: value i of tensor `name` is
// offset + scale·(2u − 1), u = lowbias32(fnv1a32(name) ^ (i+1)·0x9E3779B9) / 2³².
import { readFileSync } from "node:fs";

export interface InitSpec {
  tensors: Record<string, { shape: number[]; scale: number; offset: number }>;
  check?: Record<string, number[]>;
}

export function fnv1a32(s: string): number {
  let h = 2166136261;
  for (const b of Buffer.from(s, "utf8")) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h >>> 0;
}

export function hashValues(name: string, size: number, scale: number, offset: number): Float32Array {
  const seed = fnv1a32(name);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    let x = (seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d) >>> 0;
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b) >>> 0;
    x ^= x >>> 16;
    const u = (x >>> 0) / 2 ** 32;
    out[i] = offset + scale * (2 * u - 1);
  }
  return out;
}

export function loadInitSpec(path: string): InitSpec {
  return JSON.parse(readFileSync(path, "utf8")) as InitSpec;
}
