// The CLIP byte-level BPE tokenizer, as HuggingFace's fast CLIP tokenizer
// (tokenizer.json) computes it: NFC, whitespace runs → one space, lower case,
// the CLIP split regex, bytes → printable unicode, BPE with `</w>` on the last
// symbol of each word, bos + ids + eos. No padding or truncation: a batch of
// one needs none (spec §5). Written here rather than taken from
// `@huggingface/tokenizers` because it is ~150 lines, has no dependency, and
// is checked id for id against the reference Rust tokenizer's output.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export class TokenizerError extends Error {
  override name = "TokenizerError";
}

const BOS = "<|startoftext|>";
const EOS = "<|endoftext|>";

// CLIP's pre-tokenisation. `\s` is spelled `\p{White_Space}` because JS's `\s`
// differs from the Unicode property (Rust regex, used by the reference) on
// U+0085 and U+FEFF.
const SPLIT =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}]+/giu;
const WHITESPACE = /\p{White_Space}+/gu;
// The reference's ByteLevel pre-tokenizer splits each piece again with GPT-2's
// regex. That only changes pieces the CLIP regex took whole that mix letters
// and punctuation: "<|endoftext|>" not written exactly (e.g. upper case) is
// text, split into "<|", "endoftext", "|>".
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** GPT-2's bytes_to_unicode: every byte gets a printable, non-space character. */
function byteEncoder(): string[] {
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  return table;
}
/** Byte → printable character of CLIP's byte-level BPE (shared with the demo tokenizer builder). */
export const BYTE_TO_CHAR: readonly string[] = byteEncoder();
const utf8 = new TextEncoder();

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly vocabSize: number;
  private readonly vocab: Map<string, number>;
  /** "left right" → merge rank; symbols never contain a space (it maps to "Ġ"). */
  private readonly ranks: Map<string, number>;
  private readonly cache = new Map<string, number[]>();

  private constructor(vocab: Map<string, number>, merges: readonly string[], source: string) {
    this.vocab = vocab;
    const bos = vocab.get(BOS);
    const eos = vocab.get(EOS);
    if (bos === undefined || eos === undefined) {
      throw new TokenizerError(`ClipTokenizer (${source}): the vocabulary lacks "${BOS}" or "${EOS}"`);
    }
    this.bosId = bos;
    this.eosId = eos;
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.ranks = new Map();
    for (let i = 0; i < merges.length; i++) {
      const m = merges[i]!;
      const sp = m.indexOf(" ");
      if (sp <= 0 || sp === m.length - 1 || m.indexOf(" ", sp + 1) >= 0) {
        throw new TokenizerError(`ClipTokenizer (${source}): merge ${i} is not "left right": ${JSON.stringify(m)}`);
      }
      // A duplicate keeps its first (best) rank, as the reference does.
      if (!this.ranks.has(m)) this.ranks.set(m, i);
    }
  }

  /**
   * Loads `tokenizer.json` (HF fast format, `model.vocab` + `model.merges`) or,
   * failing that, `vocab.json` + `merges.txt` from `dir`.
   */
  static fromDir(dir: string): ClipTokenizer {
    const fast = join(dir, "tokenizer.json");
    if (existsSync(fast)) {
      const json = readJson(fast) as { model?: { type?: string; vocab?: unknown; merges?: unknown } };
      const model = json.model;
      if (!model || typeof model.vocab !== "object" || model.vocab === null || !Array.isArray(model.merges)) {
        throw new TokenizerError(`ClipTokenizer: ${fast} has no model.vocab / model.merges (not a BPE tokenizer.json)`);
      }
      if (model.type !== undefined && model.type !== "BPE") {
        throw new TokenizerError(`ClipTokenizer: ${fast} holds a ${model.type} model, expected BPE`);
      }
      // Newer `tokenizers` versions store merges as [left, right] pairs.
      const merges = (model.merges as unknown[]).map((m) => (Array.isArray(m) ? m.join(" ") : String(m)));
      return ClipTokenizer.build(model.vocab as Record<string, number>, merges, fast);
    }
    const vocabPath = join(dir, "vocab.json");
    const mergesPath = join(dir, "merges.txt");
    if (existsSync(vocabPath) && existsSync(mergesPath)) {
      const vocab = readJson(vocabPath) as Record<string, number>;
      // First line is "#version: …"; the reference skips comment and empty lines.
      const merges = readFileSync(mergesPath, "utf8")
        .split(/\r?\n/)
        .filter((l) => l.length > 0 && !l.startsWith("#version"));
      return ClipTokenizer.build(vocab, merges, `${vocabPath} + merges.txt`);
    }
    throw new TokenizerError(
      `ClipTokenizer: ${dir} has neither tokenizer.json nor vocab.json + merges.txt`,
    );
  }

  static fromVocabMerges(vocab: Record<string, number>, merges: string[]): ClipTokenizer {
    return ClipTokenizer.build(vocab, merges, "fromVocabMerges");
  }

  private static build(vocab: Record<string, number>, merges: string[], source: string): ClipTokenizer {
    const map = new Map<string, number>();
    for (const [tok, id] of Object.entries(vocab)) {
      if (!Number.isInteger(id) || id < 0) {
        throw new TokenizerError(`ClipTokenizer (${source}): token ${JSON.stringify(tok)} has id ${String(id)}`);
      }
      map.set(tok, id);
    }
    return new ClipTokenizer(map, merges, source);
  }

  /** bos + BPE ids of `text` + eos. */
  encode(text: string): number[] {
    const ids = [this.bosId];
    // As the reference's added tokens: "<|endoftext|>" is special only where
    // the raw text has it verbatim (not normalised), "<|startoftext|>"
    // wherever the normalised text has it; both are cut out before the split
    // regex runs, so neighbouring punctuation cannot absorb them.
    text.split(EOS).forEach((segment, n) => {
      if (n > 0) ids.push(this.eosId);
      normalize(segment).split(BOS).forEach((part, m) => {
        if (m > 0) ids.push(this.bosId);
        for (const match of part.matchAll(SPLIT)) for (const id of this.word(match[0])) ids.push(id);
      });
    });
    ids.push(this.eosId);
    return ids;
  }

  /** Ids of one pre-token, cached (prompts repeat the same words). */
  private word(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    const ids: number[] = [];
    for (const sub of piece.match(GPT2_SPLIT) ?? []) {
      let chars = "";
      for (const b of utf8.encode(sub)) chars += BYTE_TO_CHAR[b]!;
      for (const sym of this.bpe(chars)) ids.push(this.vocab.get(sym) ?? this.eosId /* unk = eos */);
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(piece, ids);
    return ids;
  }

  /** Repeatedly merges the lowest-ranked adjacent pair (leftmost first). */
  private bpe(chars: string): string[] {
    const syms = Array.from(chars);
    syms[syms.length - 1] += "</w>";
    while (syms.length > 1) {
      let best = Infinity;
      let at = -1;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = this.ranks.get(`${syms[i]} ${syms[i + 1]}`);
        if (r !== undefined && r < best) {
          best = r;
          at = i;
        }
      }
      if (at < 0) break;
      // Merge every occurrence of this pair, left to right, without overlap.
      const left = syms[at]!;
      const right = syms[at + 1]!;
      const out: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i >= at && i + 1 < syms.length && syms[i] === left && syms[i + 1] === right) {
          out.push(left + right);
          i++;
        } else {
          out.push(syms[i]!);
        }
      }
      syms.length = 0;
      syms.push(...out);
    }
    return syms;
  }
}

/**
 * The reference normaliser: NFC, whitespace runs → " ", lower case one code
 * point at a time. JS's toLowerCase differs from that only by the Greek final
 * sigma rule (Σ at a word end → ς), so strings with Σ go per code point.
 */
function normalize(text: string): string {
  const t = text.normalize("NFC").replace(WHITESPACE, " ");
  if (!t.includes("\u03a3")) return t.toLowerCase();
  let out = "";
  for (const ch of t) out += ch.toLowerCase();
  return out;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new TokenizerError(`ClipTokenizer: cannot read ${path}: ${(e as Error).message}`);
  }
}
