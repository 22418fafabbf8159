// The CLIP tokenizer against the reference: the vendored goldens (SegVol prompts)
// and ids for awkward inputs produced by HF's Rust `tokenizers`
// (tools/fixtures/gen_tokenizer.py: hand-picked and seeded random strings),
// loaded from both file layouts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ClipTokenizer, MAX_TOKENIZER_FILE_BYTES } from "../../src/segvol/tokenizer.js";
import { CLIP_TOKENIZER_DIR } from "../helpers/fixtures.js";
import { tempFolderWith } from "../helpers/temp.js";

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

// How long loading takes is a benchmark's question (bench/tokenizer.bench.ts), not a test's.
const fast = ClipTokenizer.fromDir(shared);
const slow = ClipTokenizer.fromDir(slowDir);

describe("ClipTokenizer", () => {
  it("loads the 49k merges and finds bos/eos in the vocab", () => {
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

describe("ClipTokenizer input validation", () => {
  const specials = { "<|startoftext|>": 0, "<|endoftext|>": 1 };
  const toyVocab = { ...specials, a: 2, b: 3, "ab</w>": 4, "b</w>": 5 };

  /** Writes the files into a fresh folder and returns the error fromDir throws. */
  function dirError(files: Record<string, string>): Error {
    const dir = mkdtempSync(join(tmpdir(), "clip-bad-"));
    try {
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
      ClipTokenizer.fromDir(dir);
    } catch (e) {
      return e as Error;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    throw new Error("expected fromDir to throw");
  }

  it("refuses ids that are not integers in [0, 2^32): 2^53 and 1e308 included", () => {
    for (const id of [2 ** 53, 1e308, 2 ** 32, -1, 1.5, Number.NaN, Infinity]) {
      expect(() => ClipTokenizer.fromVocabMerges({ ...specials, x: id }, []), String(id)).toThrow(/token "x" has id .*not an integer in \[0, 4294967295\]/);
    }
    // From JSON too, where the id may also be a string, null or a list.
    for (const id of ["9007199254740992", "1e308", '"7"', "null", "[3]"]) {
      const e = dirError({ "vocab.json": `{"<|startoftext|>": 0, "<|endoftext|>": 1, "x": ${id}}`, "merges.txt": "" });
      expect(e.name, id).toBe("TokenizerError");
      expect(e.message, id).toMatch(/vocab.json \+ merges.txt\): token "x" has id/);
    }
    expect(ClipTokenizer.fromVocabMerges({ ...specials, x: 2 ** 32 - 1 }, []).vocabSize).toBe(2 ** 32);
  });

  it("refuses a vocabulary that is not a {token: id} object, or whose tokens share an id", () => {
    for (const vocab of ["null", "[0, 1]", "7", '"text"']) {
      const e = dirError({ "vocab.json": vocab, "merges.txt": "" });
      expect(e.name, vocab).toBe("TokenizerError");
      expect(e.message, vocab).toMatch(/the vocabulary is .* not a \{token: id\} object/);
    }
    expect(() => ClipTokenizer.fromVocabMerges({ ...specials, x: 1 }, [])).toThrow(/tokens "<\|endoftext\|>" and "x" share the id 1/);
  });

  it("refuses merges that are not two tokens of the vocabulary, in either file layout", () => {
    const model = (merges: unknown): Record<string, string> => ({
      "tokenizer.json": JSON.stringify({ model: { type: "BPE", vocab: toyVocab, merges } }),
    });
    expect(ClipTokenizer.fromDir(tempFolderWith("clip-ok", model(["a b</w>"]))).encode("ab")).toEqual([0, 4, 1]);
    expect(ClipTokenizer.fromDir(tempFolderWith("clip-ok", model([["a", "b</w>"]]))).encode("ab")).toEqual([0, 4, 1]);
    for (const merges of [[[2, 3]], [["a", "b</w>", "c"]], [null], [{ a: "b" }]]) {
      expect(dirError(model(merges)).message, JSON.stringify(merges)).toMatch(/merge 0 is .*not "left right" or \["left", "right"\]/);
    }
    expect(dirError(model("a b")).message).toMatch(/model.merges is "a b", not a list/);
    expect(dirError(model(["a c"])).message).toMatch(/merge 0 \("a c"\) needs "c", which is not in the vocabulary/);
    expect(dirError(model(["a b"])).message).toMatch(/merge 0 \("a b"\) needs "ab", which is not in the vocabulary/);
    expect(dirError({ "vocab.json": JSON.stringify(toyVocab), "merges.txt": "#version: 0.2\na b</w>\nb a\n" }).message).toMatch(
      /merges.txt\): merge 1 \("b a"\) needs "ba"/,
    );
    expect(dirError({ "tokenizer.json": '{"model": {"type": 7, "vocab": {}, "merges": []}}' }).message).toMatch(/model.type is 7, expected "BPE"/);
    // Found by the fuzzer: quoting a value nested 200,000 lists deep overflowed the stack (a raw RangeError).
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    expect(dirError({ "tokenizer.json": `{"model": {"type": ${deep}, "vocab": {}, "merges": []}}` }).message).toMatch(
      /model.type is a list nested too deeply to show, expected "BPE"/,
    );
  });

  it("refuses files over the size limit before reading them, and malformed JSON as a TokenizerError", () => {
    const big = dirError({ "vocab.json": " ".repeat(MAX_TOKENIZER_FILE_BYTES + 1), "merges.txt": "" });
    expect(big.message).toMatch(/vocab.json is 16777217 bytes, over the 16777216-byte limit/);
    const e = dirError({ "tokenizer.json": '{"model": ' });
    expect(e.name).toBe("TokenizerError");
    expect(e.message).toMatch(/tokenizer.json is not valid JSON/);
    expect(() => ClipTokenizer.fromTokenizerJson("x".repeat(MAX_TOKENIZER_FILE_BYTES + 1), "t.json")).toThrow(/t.json holds 16777217 characters/);
  });

  it("cuts quoted input in messages to a few hundred characters", () => {
    const long = "z".repeat(100_000);
    const msg = (() => {
      try {
        ClipTokenizer.fromVocabMerges({ ...specials, [long]: -1 }, []);
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })();
    expect(msg).toMatch(/has id -1/);
    expect(msg.length).toBeLessThan(500);
  });
});

