// Deterministic test inputs: a fixed LCG, so a failing case reproduces.

/** n uniform values in [-scale, scale) from a fixed LCG seed. */
export function rnd(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}
