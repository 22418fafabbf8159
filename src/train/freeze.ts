// Parameter freezing: a list of name prefixes (e.g. "text_encoder." as
// SegVol freezes its CLIP tower, or "image_encoder." to train only the
// prompt encoder and decoder) splits the parameters into trainable and
// frozen ones. A prefix that matches nothing is an error: a typo would
// otherwise silently train everything.

export interface FreezeResult<P> {
  trainable: P[];
  frozen: P[];
}

export function selectTrainable<P extends { name: string }>(params: readonly P[], freeze: readonly string[]): FreezeResult<P> {
  for (const f of freeze) {
    if (typeof f !== "string" || f.length === 0) throw new Error(`freeze: prefixes must be non-empty strings, got ${JSON.stringify(f)}`);
  }
  const used = new Set<string>();
  const trainable: P[] = [];
  const frozen: P[] = [];
  for (const p of params) {
    const hit = freeze.find((f) => p.name.startsWith(f));
    if (hit === undefined) trainable.push(p);
    else {
      used.add(hit);
      frozen.push(p);
    }
  }
  // A prefix may be shadowed by an earlier one; it still counts if it matches.
  for (const f of freeze) {
    if (!used.has(f) && !params.some((p) => p.name.startsWith(f))) {
      const roots = [...new Set(params.map((p) => p.name.split(".")[0] + "."))].slice(0, 8);
      throw new Error(`freeze: prefix "${f}" matches no parameter (top-level names: ${roots.join(", ")})`);
    }
  }
  return { trainable, frozen };
}
