// The CLIP tokenizer against the reference: the vendored goldens (SegVol prompts)
// and ids for awkward inputs produced by HF's Rust `tokenizers`
// (tools/fixtures/gen_tokenizer.py: hand-picked and seeded random strings),
// loaded from both file layouts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ClipTokenizer } from "../../src/segvol/tokenizer.js";
import { CLIP_TOKENIZER_DIR } from "../helpers/fixtures.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const shared = CLIP_TOKENIZER_DIR;

interface Item {
  text: string;
  input_ids: number[];
}
const goldens = (JSON.parse(readFileSync(join(shared, "goldens.json"), "utf8")) as { items: Item[] }).items;
const odd = (JSON.parse(readFileSync(join(repo, "test", "fixtures", "tokenizer", "odd.json"), "utf8")) as { items: Item[] })
  .items;

// A folder with only vocab.json + merges.txt, so fromDir must take that path.
const slowDir = mkdtempSync(join(tmpdir(), "clip-slow-"));
copyFileSync(join(shared, "vocab.json"), join(slowDir, "vocab.json"));
copyFileSync(join(shared, "merges.txt"), join(slowDir, "merges.txt"));
afterAll(() => rmSync(slowDir, { recursive: true, force: true }));

// CPU time, not wall time: the test machine's two cores are shared, so wall
// time measures the neighbours.
const c0 = process.cpuUsage();
const fast = ClipTokenizer.fromDir(shared);
const c1 = process.cpuUsage(c0);
const loadMs = (c1.user + c1.system) / 1000;
const slow = ClipTokenizer.fromDir(slowDir);

describe("ClipTokenizer", () => {
  it("loads the 49k merges quickly and finds bos/eos in the vocab", () => {
    expect(loadMs).toBeLessThan(500);
    for (const tok of [fast, slow]) {
      expect(tok.bosId).toBe(49406);
      expect(tok.eosId).toBe(49407);
      expect(tok.vocabSize).toBe(49408);
    }
  });

  it("reproduces every shared golden from tokenizer.json and from vocab.json + merges.txt", () => {
    expect(goldens.length).toBeGreaterThan(0);
    for (const g of goldens) {
      expect(fast.encode(g.text), g.text).toEqual(g.input_ids);
      expect(slow.encode(g.text), g.text).toEqual(g.input_ids);
    }
  });

  it("matches the reference on whitespace, case, punctuation, digits, unicode, specials and 400 random strings", () => {
    for (const g of odd) {
      expect(fast.encode(g.text), JSON.stringify(g.text)).toEqual(g.input_ids);
      expect(slow.encode(g.text), JSON.stringify(g.text)).toEqual(g.input_ids);
    }
  });

  it("gives [bos, eos] for an empty string and is stable across repeated calls (cache)", () => {
    expect(fast.encode("")).toEqual([49406, 49407]);
    const a = fast.encode("A computerized tomography of a liver.");
    expect(fast.encode("A computerized tomography of a liver.")).toEqual(a);
  });

  it("applies BPE merges by rank on a toy vocabulary", () => {
    // bytes map to themselves for printable ASCII; "</w>" ends each word.
    const vocab: Record<string, number> = {
      "<|startoftext|>": 100, "<|endoftext|>": 101,
      a: 0, b: 1, c: 2, "a</w>": 3, "b</w>": 4, "c</w>": 5, ab: 6, "bc</w>": 7, "abc</w>": 8, "ab</w>": 9,
    };
    // "b c</w>" ranks before "a b", so "abc" → a + bc</w> (no "a bc</w>" merge).
    const tok = ClipTokenizer.fromVocabMerges(vocab, ["b c</w>", "a b"]);
    expect(tok.encode("abc")).toEqual([100, 0, 7, 101]);
    // "a b" does not apply to "a b</w>": the word-end symbol is distinct.
    expect(tok.encode("ab ab")).toEqual([100, 0, 4, 0, 4, 101]);
    const tok2 = ClipTokenizer.fromVocabMerges(vocab, ["a b", "ab c</w>"]);
    expect(tok2.encode("ABC")).toEqual([100, 8, 101]);
    expect(tok2.vocabSize).toBe(102);
  });

  it("fails clearly on a folder without tokenizer files, or a vocab without specials", () => {
    const empty = mkdtempSync(join(tmpdir(), "clip-empty-"));
    try {
      expect(() => ClipTokenizer.fromDir(empty)).toThrow(new RegExp(`${empty}.*neither tokenizer.json nor vocab.json`));
      writeFileSync(join(empty, "tokenizer.json"), "{\"model\": {}}");
      expect(() => ClipTokenizer.fromDir(empty)).toThrow(/tokenizer.json has no model.vocab/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
    expect(() => ClipTokenizer.fromVocabMerges({ a: 0 }, [])).toThrow(/lacks "<\|startoftext\|>"/);
    expect(() => ClipTokenizer.fromVocabMerges({ "<|startoftext|>": 0, "<|endoftext|>": 1 }, ["abc"])).toThrow(/merge 0/);
  });
});
