// Structure-aware JSON mutation, for the safetensors header and the
// tokenizer files: one value of the parsed tree replaced, deleted, copied or
// renamed, then the tree written back, sometimes with text-level damage that
// JSON.stringify cannot produce (deep nesting, duplicate keys).
import type { Rng } from "./mutate.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const LONG = "x".repeat(300);
const VALUES: readonly Json[] = [
  0, -1, 1, 2, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e308, -1e308, 5e-324, "", "x", LONG, "F32", "F16", "BF16", "I64",
  "U8", "BOOL", "F8_E4M3", "f32", "BPE", "WordPiece", "<|startoftext|>", "<|endoftext|>", "a b", "a", null, true, false, [], {}, [0],
  [-1], [1, 0], [0, 2 ** 53], [2 ** 53], [1e308], [0, 0], [[]], [0.5], ["a", "b"], ["a", "b", "c"], [1, 2], { a: 1 }, { dtype: "F32" },
];
const KEYS = ["__proto__", "constructor", "toString", "", "__metadata__", "dtype", "shape", "data_offsets", "model", "vocab", "merges",
  "type", "<|endoftext|>", "a b", LONG];
/** Replaced after stringify by text JSON.stringify cannot write. */
const DEEP = "\u0000deep\u0000";

interface Slot {
  parent: Json[] | { [k: string]: Json };
  key: string | number;
}

function slots(root: Json): Slot[] {
  const out: Slot[] = [];
  const visit = (v: Json): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push({ parent: v, key: i });
        visit(x);
      });
    } else if (v !== null && typeof v === "object") {
      for (const k of Object.keys(v)) {
        out.push({ parent: v, key: k });
        visit(v[k]!);
      }
    }
  };
  visit(root);
  return out;
}

function get(s: Slot): Json {
  return (s.parent as Record<string | number, Json>)[s.key]!;
}

function set(s: Slot, v: Json): void {
  (s.parent as Record<string | number, Json>)[s.key] = v;
}

function remove(s: Slot): void {
  if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
  else delete s.parent[s.key as string];
}

/**
 * `text` with one structural change, or null if `text` is not JSON or is
 * nested too deeply to walk (an earlier step may have made it so).
 */
export function mutateJson(text: string, rng: Rng): { text: string; what: string } | null {
  try {
    return change(JSON.parse(text) as Json, rng);
  } catch {
    return null;
  }
}

function change(root: Json, rng: Rng): { text: string; what: string } | null {
  const all = slots(root);
  if (all.length === 0) return null;
  const s = rng.pick(all);
  const path = String(s.key).slice(0, 40);
  let what: string;
  const op = rng.below(8);
  if (op <= 2) {
    const v = rng.pick(VALUES);
    set(s, structuredClone(v));
    what = `set ${JSON.stringify(path)} to ${JSON.stringify(v)?.slice(0, 40)}`;
  } else if (op === 3) {
    remove(s);
    what = `delete ${JSON.stringify(path)}`;
  } else if (op === 4) {
    const other = rng.pick(all);
    set(s, structuredClone(get(other)));
    what = `copy the value of ${JSON.stringify(String(other.key).slice(0, 40))} into ${JSON.stringify(path)}`;
  } else if (op === 5 && !Array.isArray(s.parent)) {
    const k = rng.pick(KEYS);
    const v = get(s);
    delete s.parent[s.key as string];
    s.parent[k] = v;
    what = `rename key ${JSON.stringify(path)} to ${JSON.stringify(k.slice(0, 40))}`;
  } else if (op === 6) {
    set(s, DEEP);
    const depth = rng.pick([64, 20_000]);
    const out = JSON.stringify(root).replace(JSON.stringify(DEEP), "[".repeat(depth) + "]".repeat(depth));
    return { text: out, what: `nest ${JSON.stringify(path)} ${depth} lists deep` };
  } else {
    const v = get(s);
    if (typeof v === "number") {
      const w = rng.pick([v + 1, v - 1, -v, v * 2 ** 20, v + 0.5, v * 1e300]);
      set(s, w);
      what = `change number ${JSON.stringify(path)} from ${v} to ${w}`;
    } else if (!Array.isArray(s.parent)) {
      // A duplicate key: JSON.parse keeps the last; written by hand.
      const dup = `${JSON.stringify(s.key)}: ${JSON.stringify(rng.pick(VALUES))}, `;
      const body = JSON.stringify(root);
      const at = body.indexOf(JSON.stringify(s.key) + ":");
      if (at < 0) return null;
      return { text: body.slice(0, at) + dup + body.slice(at), what: `duplicate key ${JSON.stringify(path)}` };
    } else {
      return null;
    }
  }
  return { text: JSON.stringify(root), what };
}
