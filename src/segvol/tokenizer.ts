// The CLIP byte-level BPE tokenizer, as HuggingFace's fast CLIP tokenizer
// (tokenizer.json) computes it: NFC, whitespace runs → one space, lower case,
// the CLIP split regex, bytes → printable unicode, BPE with `</w>` on the last
// symbol of each word, bos + ids + eos. No padding or truncation: a batch of
// one needs none (spec §5). Written here rather than taken from
// `@huggingface/tokenizers` because it is ~150 lines, has no dependency, and
// is checked id for id against the reference Rust tokenizer's output.
import { existsSync, join, readFileSync, statSync } from "../node/host.node.js";

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

/** Tokenizer files larger than this are refused (CLIP's tokenizer.json is 2.2 MB, its vocab.json 0.9 MB). */
export const MAX_TOKENIZER_FILE_BYTES = 16 * 1024 * 1024;
/** At most this many vocabulary entries, and at most this many merges (CLIP has 49,408 and 48,894). */
export const MAX_TOKENIZER_ENTRIES = 1 << 20;

/** The files of a tokenizer folder, in Hugging Face's layouts; weights folders carry them along. */
export const TOKENIZER_FILES: readonly string[] = ["tokenizer.json", "vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"];

/** The TOKENIZER_FILES present in `dir`. */
export function tokenizerFilesIn(dir: string): string[] {
  return TOKENIZER_FILES.filter((f) => existsSync(join(dir, f)) && statSync(join(dir, f)).isFile());
}

/** Whether `files` hold a whole vocabulary, as ClipTokenizer.fromDir reads it: tokenizer.json, or vocab.json with merges.txt. */
export function hasVocabulary(files: readonly string[]): boolean {
  return files.includes("tokenizer.json") || (files.includes("vocab.json") && files.includes("merges.txt"));
}
/** The largest token id: the reference (HF `tokenizers`) stores ids as u32. */
const MAX_TOKEN_ID = 0xffff_ffff;

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
        throw new TokenizerError(`ClipTokenizer (${source}): merge ${i} is not "left right": ${quote(m)}`);
      }
      // As the reference: both halves and their concatenation must be tokens.
      const left = m.slice(0, sp);
      const right = m.slice(sp + 1);
      for (const sym of [left, right, left + right]) {
        if (!vocab.has(sym)) {
          throw new TokenizerError(`ClipTokenizer (${source}): merge ${i} (${quote(m)}) needs ${quote(sym)}, which is not in the vocabulary`);
        }
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
    if (existsSync(fast)) return ClipTokenizer.fromTokenizerJson(readText(fast), fast);
    const vocabPath = join(dir, "vocab.json");
    const mergesPath = join(dir, "merges.txt");
    if (existsSync(vocabPath) && existsSync(mergesPath)) {
      return ClipTokenizer.fromVocabJson(readText(vocabPath), readText(mergesPath), vocabPath);
    }
    throw new TokenizerError(
      `ClipTokenizer: ${dir} has neither tokenizer.json nor vocab.json + merges.txt`,
    );
  }

  /** Parses the text of an HF fast `tokenizer.json` holding a BPE model; `source` names it in errors. */
  static fromTokenizerJson(text: string, source = "tokenizer.json"): ClipTokenizer {
    const json = parseJson(text, source);
    const model = isRecord(json) ? json.model : undefined;
    if (!isRecord(model) || model.vocab === undefined || model.merges === undefined) {
      throw new TokenizerError(`ClipTokenizer: ${source} has no model.vocab / model.merges (not a BPE tokenizer.json)`);
    }
    if (model.type !== undefined && model.type !== "BPE") {
      throw new TokenizerError(`ClipTokenizer: ${source}: model.type is ${describe(model.type)}, expected "BPE"`);
    }
    if (!Array.isArray(model.merges)) {
      throw new TokenizerError(`ClipTokenizer: ${source}: model.merges is ${describe(model.merges)}, not a list`);
    }
    checkCount(model.merges.length, "merges", source);
    // Newer `tokenizers` versions store merges as [left, right] pairs.
    const merges = model.merges.map((m: unknown, i) => {
      if (typeof m === "string") return m;
      if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") return `${m[0]} ${m[1]}`;
      throw new TokenizerError(`ClipTokenizer (${source}): merge ${i} is ${describe(m)}, not "left right" or ["left", "right"]`);
    });
    return ClipTokenizer.build(model.vocab, merges, source);
  }

  /**
   * Parses the texts of `vocab.json` and `merges.txt`; `vocabPath` (the
   * merges file is named as its sibling) names them in errors.
   */
  static fromVocabJson(vocabText: string, mergesText: string, vocabPath = "vocab.json"): ClipTokenizer {
    const vocab = parseJson(vocabText, vocabPath);
    const source = `${vocabPath} + merges.txt`;
    checkLength(mergesText, source);
    // First line is "#version: …"; the reference skips comment and empty lines.
    const merges = mergesText.split(/\r?\n/).filter((l) => l.length > 0 && !l.startsWith("#version"));
    return ClipTokenizer.build(vocab, merges, source);
  }

  static fromVocabMerges(vocab: Record<string, number>, merges: string[]): ClipTokenizer {
    return ClipTokenizer.build(vocab, merges, "fromVocabMerges");
  }

  /** Checks the vocabulary (a {token: id} object of distinct u32 ids) and the counts. */
  private static build(vocab: unknown, merges: readonly string[], source: string): ClipTokenizer {
    if (!isRecord(vocab)) {
      throw new TokenizerError(`ClipTokenizer (${source}): the vocabulary is ${describe(vocab)}, not a {token: id} object`);
    }
    const entries = Object.entries(vocab);
    checkCount(entries.length, "vocabulary entries", source);
    checkCount(merges.length, "merges", source);
    const map = new Map<string, number>();
    const tokenOf = new Map<number, string>();
    for (const [tok, id] of entries) {
      if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0 || id > MAX_TOKEN_ID) {
        throw new TokenizerError(`ClipTokenizer (${source}): token ${quote(tok)} has id ${describe(id)}, not an integer in [0, ${MAX_TOKEN_ID}]`);
      }
      const other = tokenOf.get(id);
      if (other !== undefined) {
        throw new TokenizerError(`ClipTokenizer (${source}): tokens ${quote(other)} and ${quote(tok)} share the id ${id}`);
      }
      tokenOf.set(id, tok);
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

/** A file's text, refusing files over MAX_TOKENIZER_FILE_BYTES before reading them. */
function readText(path: string): string {
  try {
    const size = statSync(path).size;
    if (size > MAX_TOKENIZER_FILE_BYTES) {
      throw new TokenizerError(`ClipTokenizer: ${path} is ${size} bytes, over the ${MAX_TOKENIZER_FILE_BYTES}-byte limit for a tokenizer file`);
    }
    return readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof TokenizerError) throw e;
    throw new TokenizerError(`ClipTokenizer: cannot read ${path}: ${(e as Error).message}`);
  }
}

function checkLength(text: string, source: string): void {
  if (text.length > MAX_TOKENIZER_FILE_BYTES) {
    throw new TokenizerError(`ClipTokenizer: ${source} holds ${text.length} characters, over the ${MAX_TOKENIZER_FILE_BYTES} limit for a tokenizer file`);
  }
}

function checkCount(n: number, what: string, source: string): void {
  if (n > MAX_TOKENIZER_ENTRIES) {
    throw new TokenizerError(`ClipTokenizer (${source}): ${n} ${what}, over the limit of ${MAX_TOKENIZER_ENTRIES}`);
  }
}

function parseJson(text: string, source: string): unknown {
  checkLength(text, source);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`ClipTokenizer: ${source} is not valid JSON: ${clip((e as Error).message)}`);
  }
}

/** A plain JSON object (not null, not a list). */
function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Input quoted in an error message, cut to a readable length. */
function quote(s: string): string {
  return clip(JSON.stringify(s));
}

/** A JSON value for a message: cut, and never a stack overflow on deep nesting. */
function describe(v: unknown): string {
  if (v === undefined) return "missing";
  try {
    return clip(JSON.stringify(v));
  } catch {
    return Array.isArray(v) ? "a list nested too deeply to show" : "an object nested too deeply to show";
  }
}

function clip(s: string, max = 200): string {
  return s.length > max ? `${s.slice(0, max)}… (${s.length} characters)` : s;
}
