// A small CLIP-compatible byte-level BPE vocabulary for a model trained from
// scratch on a handful of category names (the demo model). The official CLIP
// vocabulary has 49,408 entries; a 64-wide text tower would spend almost all
// of its parameters on token embeddings it never sees. Instead we learn BPE
// merges on the prompts the model will be asked ("A computerized tomography
// of a {}." for each category) until every word of them is a single token.
//
// The layout follows CLIP's: single byte-symbols, the same with "</w>" (word
// end), then one entry per merge in merge order, then <|startoftext|> and
// <|endoftext|> LAST, because the text tower pools at argmax(ids) and relies
// on eos having the highest id. The output is read by ClipTokenizer
// (fromVocabMerges / fromDir with vocab.json + merges.txt), and every prompt
// is checked against it before the files are returned: no word may fall back
// to the unknown id.
import { writeFileAtomic } from "../io/atomic.js";
import { join } from "node:path";
import { BYTE_TO_CHAR, ClipTokenizer } from "../segvol/tokenizer.js";

const BOS = "<|startoftext|>";
const EOS = "<|endoftext|>";
const END = "</w>";

// The tokenizer's pre-tokenisation (src/segvol/tokenizer.ts): NFC, whitespace
// runs → one space, lower case, CLIP's split regex. Repeated here (the
// tokenizer keeps it private) only to find the words to learn merges on; the
// result is verified with the real ClipTokenizer, so a divergence fails loudly.
const SPLIT = /'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}]+/giu;
const WHITESPACE = /\p{White_Space}+/gu;

const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));
const utf8 = new TextEncoder();

/** The byte-symbols of one pre-token. */
function byteSymbols(word: string): string[] {
  return Array.from(utf8.encode(word), (b) => BYTE_TO_CHAR[b]!);
}

/** The pre-tokens (words, digits, punctuation runs) of a text, as the tokenizer splits it. */
export function preTokenize(text: string): string[] {
  const t = text.normalize("NFC").replace(WHITESPACE, " ");
  let lower = "";
  for (const ch of t) lower += ch.toLowerCase(); // per code point, like the tokenizer's normaliser
  return Array.from(lower.matchAll(SPLIT), (m) => m[0]);
}

export interface BuiltTokenizer {
  /** token → id; ids 0..vocabSize-1, bos = vocabSize-2, eos = vocabSize-1. */
  vocab: Record<string, number>;
  /** "left right" pairs in rank order. */
  merges: string[];
  vocabSize: number;
  /** The prompts the vocabulary was learnt on (template applied to each category). */
  prompts: string[];
}

export interface BuildTokenizerOptions {
  /**
   * Characters always in the base alphabet (plain and word-final), so other
   * lower-case text still tokenises (letter by letter) instead of to unknown.
   * Default: a-z, 0-9 and common punctuation.
   */
  alphabet?: string;
}

const DEFAULT_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789.,-'()/";

/**
 * Learns a BPE vocabulary on `template` applied to each category until every
 * word of those prompts is one token. Deterministic: ties between equally
 * frequent pairs go to the pair seen first (prompt order, left to right).
 */
export function buildTokenizer(categories: readonly string[], template: string, opts: BuildTokenizerOptions = {}): BuiltTokenizer {
  const fail = (m: string): never => {
    throw new Error(`buildTokenizer: ${m}`);
  };
  if (categories.length === 0) fail("no category names given");
  if (template.split("{}").length !== 2) fail(`template ${JSON.stringify(template)} must contain exactly one "{}"`);
  const seen = new Set<string>();
  for (const c of categories) {
    if (c.trim() === "") fail(`empty category name in ${JSON.stringify(categories)}`);
    if (c.includes("<|")) fail(`category ${JSON.stringify(c)} contains "<|" (special-token syntax)`);
    if (seen.has(c)) fail(`category ${JSON.stringify(c)} is listed twice`);
    seen.add(c);
  }
  const prompts = categories.map((c) => template.replace("{}", c));

  // Words with their frequency, in first-seen order (a Map keeps insertion order).
  const freq = new Map<string, number>();
  for (const p of prompts) for (const w of preTokenize(p)) freq.set(w, (freq.get(w) ?? 0) + 1);
  const words = [...freq.entries()].map(([w, n]) => {
    const syms = byteSymbols(w);
    syms[syms.length - 1] += END;
    return { syms, n };
  });

  // Base alphabet: every byte-symbol that occurs plus the default characters,
  // each plain and word-final, in byte order (CLIP's order).
  const base = new Set<string>();
  for (const ch of opts.alphabet ?? DEFAULT_ALPHABET) for (const s of byteSymbols(ch.toLowerCase())) base.add(s);
  for (const { syms } of words) for (const s of syms) base.add(s.endsWith(END) ? s.slice(0, -END.length) : s);
  const baseSorted = [...base].sort((a, b) => CHAR_TO_BYTE.get(a)! - CHAR_TO_BYTE.get(b)!);
  const tokens: string[] = [...baseSorted, ...baseSorted.map((s) => s + END)];

  const merges: string[] = [];
  for (;;) {
    // Pair counts, keeping first-seen order for the tie-break.
    const counts = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = `${syms[i]} ${syms[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + n);
      }
    }
    if (counts.size === 0) break; // every word is one symbol
    let best = "";
    let bestN = 0;
    for (const [k, n] of counts) {
      if (n > bestN) {
        best = k;
        bestN = n;
      }
    }
    const [left, right] = best.split(" ") as [string, string];
    merges.push(best);
    tokens.push(left + right);
    // Merge every occurrence left to right without overlap, as ClipTokenizer's bpe() does.
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === left && w.syms[i + 1] === right) {
          out.push(left + right);
          i++;
        } else {
          out.push(w.syms[i]!);
        }
      }
      w.syms = out;
    }
  }

  const vocab: Record<string, number> = {};
  for (const t of tokens) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  vocab[BOS] = Object.keys(vocab).length;
  vocab[EOS] = Object.keys(vocab).length;
  const built: BuiltTokenizer = { vocab, merges, vocabSize: Object.keys(vocab).length, prompts };
  verify(built, words.length);
  return built;
}

/**
 * Checks the built files with the real tokenizer: each prompt is bos, one id
 * per word (no unknown → eos fallback), eos.
 */
function verify(b: BuiltTokenizer, distinctWords: number): void {
  const tok = ClipTokenizer.fromVocabMerges(b.vocab, b.merges);
  const idToToken = new Map(Object.entries(b.vocab).map(([t, i]) => [i, t]));
  const used = new Set<number>();
  for (const p of b.prompts) {
    const ids = tok.encode(p);
    const words = preTokenize(p);
    const inner = ids.slice(1, -1);
    const ok =
      ids[0] === tok.bosId &&
      ids[ids.length - 1] === tok.eosId &&
      inner.length === words.length &&
      inner.every((id, i) => idToToken.get(id) === byteSymbols(words[i]!).join("") + END);
    if (!ok) throw new Error(`buildTokenizer: internal error: ${JSON.stringify(p)} tokenises to [${ids.join(", ")}], not one token per word`);
    for (const id of inner) used.add(id);
  }
  if (used.size !== distinctWords) throw new Error(`buildTokenizer: internal error: ${used.size} word ids for ${distinctWords} distinct words`);
}

/** Writes vocab.json and merges.txt (CLIP's slow-tokenizer layout) into `dir`, each atomically. */
export function writeTokenizerFiles(dir: string, b: BuiltTokenizer): void {
  writeFileAtomic(join(dir, "vocab.json"), utf8.encode(JSON.stringify(b.vocab) + "\n"), { what: "writeTokenizerFiles" });
  // The first line is a version comment, which readers skip (as in CLIP's merges.txt).
  writeFileAtomic(join(dir, "merges.txt"), utf8.encode(["#version: 0.2", ...b.merges].join("\n") + "\n"), { what: "writeTokenizerFiles" });
}
