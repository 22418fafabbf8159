// WGSL text helpers shared by the attention forward and backward generators
// (attention.ts, attention_backward.ts): both emit straight-line code per
// head dim, with registers per owned row, and share row loads across a
// subgroup where the device has subgroups of SG lanes.

/** The subgroup size the subgroup variants are generated for (lavapipe's). */
export const SG = 8;

/** Vector width for a head dim: vec4 when every head row starts 16-byte aligned. */
export function width(d: number): 1 | 4 {
  return d % 4 === 0 ? 4 : 1;
}

/** The WGSL type of one vector of width w. */
export function vt(w: 1 | 4): string {
  return w === 4 ? "vec4<f32>" : "f32";
}

/** The dot product of two vectors of width w. */
export function dotw(w: 1 | 4, a: string, b: string): string {
  return w === 4 ? `dot(${a}, ${b})` : `${a} * ${b}`;
}

/** A balanced sum: shorter dependency chains than a left fold. */
export function tree(terms: string[]): string {
  if (terms.length === 1) return terms[0]!;
  const mid = Math.ceil(terms.length / 2);
  return `(${tree(terms.slice(0, mid))} + ${tree(terms.slice(mid))})`;
}

/**
 * Emits `let NAME0 .. NAME{n-1}`: one head row of n vectors from `arr` at
 * `base`, which every lane needs. Without subgroups each lane loads it all;
 * with them lane l of the subgroup loads vectors l, l+SG, … and broadcasts
 * them (subgroupBroadcast), SG times fewer per-lane loads.
 */
export function sharedLoad(L: (s: string) => void, sg: boolean, name: string, arr: string, base: string, n: number): void {
  if (!sg) {
    for (let c = 0; c < n; c++) L(`    let ${name}${c} = ${arr}[${base} + ${c}u];`);
    return;
  }
  for (let r = 0; r < Math.ceil(n / SG); r++) L(`    let ${name}l${r} = ${arr}[${base} + min(sl + ${r * SG}u, ${n - 1}u)];`);
  for (let c = 0; c < n; c++) L(`    let ${name}${c} = subgroupBroadcast(${name}l${Math.floor(c / SG)}, ${c % SG}u);`);
}
