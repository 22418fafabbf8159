// The demo tokenizer builder: every category prompt tokenises to one known id
// per word (no unknown → eos fallback), ids < vocab_size, bos/eos last; the
// word split agrees with the real CLIP tokenizer's; the written files load
// with ClipTokenizer.fromDir and give the same ids.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PHANTOM_LABELS } from "../../src/demo/phantom.js";
import { buildTokenizer, preTokenize, writeTokenizerFiles } from "../../src/demo/tokenizer_builder.js";
import { ClipTokenizer } from "../../src/segvol/tokenizer.js";
import { CLIP_TOKENIZER_DIR } from "../helpers/fixtures.js";

const TEMPLATE = "A computerized tomography of a {}.";
const ORGANS = PHANTOM_LABELS.slice(1);
const tmp = mkdtempSync(join(tmpdir(), "tokbuild-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("buildTokenizer", () => {
  const built = buildTokenizer(ORGANS, TEMPLATE);
  const tok = ClipTokenizer.fromVocabMerges(built.vocab, built.merges);
  const idToToken = new Map(Object.entries(built.vocab).map(([t, i]) => [i, t]));

  it("puts bos and eos at the end of a dense vocabulary", () => {
    const ids = Object.values(built.vocab).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: built.vocabSize }, (_, i) => i));
    expect(tok.bosId).toBe(built.vocabSize - 2);
    expect(tok.eosId).toBe(built.vocabSize - 1);
    expect(tok.vocabSize).toBe(built.vocabSize);
    // Small: a few hundred entries, not CLIP's 49,408.
    expect(built.vocabSize).toBeLessThan(300);
  });

  it("tokenises every category prompt to bos, one known id per word, eos", () => {
    const seqs = new Set<string>();
    for (const organ of ORGANS) {
      const prompt = TEMPLATE.replace("{}", organ);
      const ids = tok.encode(prompt);
      const words = preTokenize(prompt);
      expect(ids[0]).toBe(tok.bosId);
      expect(ids[ids.length - 1]).toBe(tok.eosId);
      expect(ids.length, prompt).toBe(words.length + 2);
      for (const [i, id] of ids.slice(1, -1).entries()) {
        expect(id).toBeLessThan(tok.bosId); // a real word id, never the eos (unknown) fallback
        expect(idToToken.get(id), prompt).toBe(`${words[i]}</w>`);
      }
      seqs.add(ids.join(","));
    }
    expect(seqs.size).toBe(ORGANS.length);
  });

  it("splits prompts into the same words as the real CLIP tokenizer", () => {
    const shared = CLIP_TOKENIZER_DIR;
    const clip = ClipTokenizer.fromDir(shared);
    const clipVocab = JSON.parse(readFileSync(join(shared, "vocab.json"), "utf8")) as Record<string, number>;
    const clipTokens = new Map(Object.entries(clipVocab).map(([t, i]) => [i, t]));
    for (const text of [...ORGANS.map((o) => TEMPLATE.replace("{}", o)), "A  CT of the Liver's lobe 7, (left)!"]) {
      // CLIP's tokens, joined back into words at each "</w>".
      const words: string[] = [];
      let cur = "";
      for (const id of clip.encode(text).slice(1, -1)) {
        cur += clipTokens.get(id)!;
        if (cur.endsWith("</w>")) {
          words.push(cur.slice(0, -4));
          cur = "";
        }
      }
      expect(preTokenize(text), text).toEqual(words);
    }
  });

  it("spells other lower-case text letter by letter instead of as unknown", () => {
    const ids = tok.encode("A CT scan of the bladder, 3 mm");
    expect(ids.slice(1, -1).every((id) => id < tok.bosId)).toBe(true);
  });

  it("writes vocab.json + merges.txt that ClipTokenizer.fromDir reads back to the same ids", () => {
    writeTokenizerFiles(tmp, built);
    const merges = readFileSync(join(tmp, "merges.txt"), "utf8").split("\n");
    expect(merges[0]).toMatch(/^#version/);
    const fromDir = ClipTokenizer.fromDir(tmp);
    for (const organ of ORGANS) expect(fromDir.encode(TEMPLATE.replace("{}", organ))).toEqual(tok.encode(TEMPLATE.replace("{}", organ)));
  });

  it("is deterministic and depends on the category list", () => {
    const again = buildTokenizer(ORGANS, TEMPLATE);
    expect(JSON.stringify(again)).toBe(JSON.stringify(built));
    const four = buildTokenizer(["liver", "spleen", "left kidney", "right kidney"], TEMPLATE);
    expect(four.vocabSize).toBeLessThan(built.vocabSize);
  });

  it("refuses bad input, naming the builder", () => {
    expect(() => buildTokenizer([], TEMPLATE)).toThrow(/buildTokenizer: no category names/);
    expect(() => buildTokenizer(["liver"], "no slot")).toThrow(/buildTokenizer: template "no slot" must contain exactly one "\{\}"/);
    expect(() => buildTokenizer(["liver", " "], TEMPLATE)).toThrow(/buildTokenizer: empty category name/);
    expect(() => buildTokenizer(["liver", "liver"], TEMPLATE)).toThrow(/buildTokenizer: category "liver" is listed twice/);
    expect(() => buildTokenizer(["<|endoftext|>"], TEMPLATE)).toThrow(/special-token syntax/);
  });
});
