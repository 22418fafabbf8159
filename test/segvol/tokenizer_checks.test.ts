// ClipTokenizer's checks of what it loads, at their edges: the shape of a
// merge, the special tokens, which files a folder must hold, the size and
// count limits exactly at and one past the limit, and error messages that
// stay readable (cut quotes, deeply nested values).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ClipTokenizer, hasVocabulary, MAX_TOKENIZER_ENTRIES, MAX_TOKENIZER_FILE_BYTES } from "../../src/segvol/tokenizer.js";
import { tempFolderWith } from "../helpers/temp.js";

const BOS = "<|startoftext|>";
const EOS = "<|endoftext|>";
const specials = { [BOS]: 0, [EOS]: 1 };
const toyVocab = { ...specials, a: 2, b: 3, "ab</w>": 4, "b</w>": 5 };


function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected an error");
}

describe("merges", () => {
  it("a merge is two non-empty symbols separated by exactly one space", () => {
    expect(ClipTokenizer.fromVocabMerges(toyVocab, ["a b</w>"]).encode("ab")).toEqual([0, 4, 1]);
    for (const m of ["ab</w>", " ab</w>", "a b</w> ", "ab</w> ", "a  b</w>", "a b </w>", " "]) {
      expect(() => ClipTokenizer.fromVocabMerges(toyVocab, [m]), JSON.stringify(m)).toThrow(
        `ClipTokenizer (fromVocabMerges): merge 0 is not "left right": ${JSON.stringify(m)}`,
      );
    }
  });

  it("tokenizer.json's pair merges must be two strings", () => {
    const json = (merges: unknown) => JSON.stringify({ model: { vocab: toyVocab, merges } });
    expect(ClipTokenizer.fromTokenizerJson(json([["a", "b</w>"]])).encode("ab")).toEqual([0, 4, 1]);
    for (const m of [["a"], [3, "b</w>"], ["a", 3]]) {
      expect(() => ClipTokenizer.fromTokenizerJson(json([m]), "t.json"), JSON.stringify(m)).toThrow(
        `ClipTokenizer (t.json): merge 0 is ${JSON.stringify(m)}, not "left right" or ["left", "right"]`,
      );
    }
  });

  it("a repeated merge keeps its first rank", () => {
    const vocab = { ...specials, a: 2, b: 3, "c</w>": 4, ab: 5, "bc</w>": 6 };
    // "b c</w>" ranks 0, before "a b": "abc" → a + bc</w>. Were the repeat's rank 2 kept, "a b" would merge first.
    expect(ClipTokenizer.fromVocabMerges(vocab, ["b c</w>", "a b", "b c</w>"]).encode("abc")).toEqual([0, 2, 6, 1]);
    expect(ClipTokenizer.fromVocabMerges(vocab, ["a b", "b c</w>"]).encode("abc")).toEqual([0, 5, 4, 1]);
  });

  it("merges.txt may have CRLF line ends and blank lines; only its #version line is skipped", () => {
    const tok = ClipTokenizer.fromVocabJson(JSON.stringify(toyVocab), "#version: 0.2\r\n\r\na b</w>\r\n\n");
    expect(tok.encode("ab")).toEqual([0, 4, 1]);
    expect(() => ClipTokenizer.fromVocabJson(JSON.stringify(toyVocab), "#other\na b</w>\n")).toThrow(/merge 0 is not "left right": "#other"/);
  });
});

describe("vocabulary and files", () => {
  it("needs both special tokens", () => {
    for (const vocab of [{ [BOS]: 0, x: 1 }, { [EOS]: 1, x: 0 }] as Record<string, number>[]) {
      expect(() => ClipTokenizer.fromVocabMerges(vocab, []), JSON.stringify(vocab)).toThrow(
        `ClipTokenizer (fromVocabMerges): the vocabulary lacks "${BOS}" or "${EOS}"`,
      );
    }
  });

  it("a folder needs tokenizer.json, or vocab.json and merges.txt together", () => {
    expect(hasVocabulary(["tokenizer.json"])).toBe(true);
    expect(hasVocabulary(["merges.txt", "vocab.json"])).toBe(true);
    for (const files of [[], ["vocab.json"], ["merges.txt"], ["special_tokens_map.json", "tokenizer_config.json"]]) {
      expect(hasVocabulary(files), JSON.stringify(files)).toBe(false);
    }
    for (const files of [{ "vocab.json": JSON.stringify(toyVocab) }, { "merges.txt": "#version: 0.2\n" }] as Record<string, string>[]) {
      const dir = tempFolderWith("clip-checks", files);
      expect(() => ClipTokenizer.fromDir(dir)).toThrow(`ClipTokenizer: ${dir} has neither tokenizer.json nor vocab.json + merges.txt`);
    }
    const both = tempFolderWith("clip-checks", { "vocab.json": JSON.stringify(toyVocab), "merges.txt": "#version: 0.2\na b</w>\n" });
    expect(ClipTokenizer.fromDir(both).encode("ab")).toEqual([0, 4, 1]);
  });

  it("tokenizer.json needs model.vocab and model.merges; a missing model.type is taken as BPE", () => {
    for (const model of [{ vocab: toyVocab }, { merges: [] }, [toyVocab], null]) {
      expect(() => ClipTokenizer.fromTokenizerJson(JSON.stringify({ model }), "t.json"), JSON.stringify(model)).toThrow(
        "ClipTokenizer: t.json has no model.vocab / model.merges (not a BPE tokenizer.json)",
      );
    }
    expect(ClipTokenizer.fromTokenizerJson(JSON.stringify({ model: { vocab: toyVocab, merges: ["a b</w>"] } })).encode("ab")).toEqual([0, 4, 1]);
  });

  it("a tokenizer file that cannot be read is named, as a TokenizerError", () => {
    const dir = tempFolderWith("clip-checks", {});
    mkdirSync(join(dir, "tokenizer.json"));
    const e = (() => {
      try {
        ClipTokenizer.fromDir(dir);
      } catch (err) {
        return err as Error;
      }
      throw new Error("expected an error");
    })();
    expect(e.name).toBe("TokenizerError");
    expect(e.message).toMatch(new RegExp(`^ClipTokenizer: cannot read ${join(dir, "tokenizer.json")}: EISDIR`));
  });
});

describe("limits", () => {
  it(`a file of exactly ${MAX_TOKENIZER_FILE_BYTES} bytes is read; one byte more is refused before reading, with that message`, () => {
    const json = JSON.stringify(toyVocab);
    const exact = json + " ".repeat(MAX_TOKENIZER_FILE_BYTES - json.length);
    const dir = tempFolderWith("clip-checks", { "vocab.json": exact, "merges.txt": "a b</w>\n" });
    expect(ClipTokenizer.fromDir(dir).encode("ab")).toEqual([0, 4, 1]);
    expect(ClipTokenizer.fromVocabJson(exact, "a b</w>").encode("ab")).toEqual([0, 4, 1]);
    const over = tempFolderWith("clip-checks", { "vocab.json": exact + " ", "merges.txt": "" });
    expect(messageOf(() => ClipTokenizer.fromDir(over))).toBe(
      `ClipTokenizer: ${join(over, "vocab.json")} is ${MAX_TOKENIZER_FILE_BYTES + 1} bytes, over the ${MAX_TOKENIZER_FILE_BYTES}-byte limit for a tokenizer file`,
    );
  });

  it(`at most ${MAX_TOKENIZER_ENTRIES} merges`, () => {
    // At the limit the count passes and the first merge is checked; one more is refused by count.
    expect(() => ClipTokenizer.fromVocabMerges(specials, Array<string>(MAX_TOKENIZER_ENTRIES).fill("x"))).toThrow(/merge 0 is not "left right"/);
    const tooMany = JSON.stringify({ model: { vocab: specials, merges: Array<string>(MAX_TOKENIZER_ENTRIES + 1).fill("x") } });
    expect(() => ClipTokenizer.fromTokenizerJson(tooMany, "t.json")).toThrow(
      `ClipTokenizer (t.json): ${MAX_TOKENIZER_ENTRIES + 1} merges, over the limit of ${MAX_TOKENIZER_ENTRIES}`,
    );
    expect(() => ClipTokenizer.fromVocabMerges(specials, Array<string>(MAX_TOKENIZER_ENTRIES + 1).fill("x"))).toThrow(
      `ClipTokenizer (fromVocabMerges): ${MAX_TOKENIZER_ENTRIES + 1} merges, over the limit of ${MAX_TOKENIZER_ENTRIES}`,
    );
  });
});

describe("messages", () => {
  it("name tokenizer.json or vocab.json when no source is given", () => {
    expect(() => ClipTokenizer.fromTokenizerJson("{")).toThrow(/^ClipTokenizer: tokenizer\.json is not valid JSON: /);
    expect(() => ClipTokenizer.fromVocabJson("{", "")).toThrow(/^ClipTokenizer: vocab\.json is not valid JSON: /);
  });

  it("quote input whole up to 200 characters, and cut longer input saying how long it was", () => {
    const idError = (tok: string) => messageOf(() => ClipTokenizer.fromVocabMerges({ ...specials, [tok]: -1 }, []));
    const fits = "z".repeat(198); // quoted: 200 characters
    expect(idError(fits)).toContain(`token "${fits}" has id -1`);
    const long = "z".repeat(199);
    expect(idError(long)).toContain(`token "${long}… (201 characters) has id -1`);
  });

  it("name a deeply nested object without overflowing the stack", () => {
    const deep = '{"a":'.repeat(200_000) + "1" + "}".repeat(200_000);
    expect(() => ClipTokenizer.fromTokenizerJson(`{"model": {"type": ${deep}, "vocab": {}, "merges": []}}`, "t.json")).toThrow(
      'ClipTokenizer: t.json: model.type is an object nested too deeply to show, expected "BPE"',
    );
  });
});
