// Text prompts are checked against the categories a weights folder states:
// the matching rules and where the list comes from. SegVol.segment's use of
// them (on the GPU) is in categories_gpu.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { normalizeCategory, readCategories, resolveText, UnknownCategoryError } from "../../src/segvol/categories.js";

const DEMO = join(__dirname, "..", "..", "weights", "demo");
const work = mkdtempSync(join(tmpdir(), "segvol-categories-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("category matching", () => {
  const check = { categories: ["liver", "left kidney"], source: "W" };

  it("ignores case and spacing, and gives the listed spelling", () => {
    expect(normalizeCategory("  Left \t Kidney ")).toBe("left kidney");
    expect(resolveText("LIVER", check)).toBe("liver");
    expect(resolveText(" left   kidney", check)).toBe("left kidney");
  });

  it("refuses anything else, naming the known categories; allowUnknown passes the text as given", () => {
    for (const text of ["kidney", "left_kidney", "pancreas", "banana"]) {
      expect(() => resolveText(text, check)).toThrow(UnknownCategoryError);
      expect(() => resolveText(text, check)).toThrow(`text prompt "${text}" is not a category of W; known categories: liver, left kidney`);
      expect(resolveText(text, { ...check, allowUnknown: true })).toBe(text);
    }
    expect(() => resolveText("liver", { categories: null, source: "W" })).toThrow(/W does not state its categories \(no categories\.json\)/);
    expect(resolveText("liver", { categories: null, allowUnknown: true })).toBe("liver");
  });

  it("reads categories.json, else a train checkpoint's categories; refuses a malformed list", () => {
    expect(readCategories(DEMO)).toEqual(["liver", "spleen", "left kidney", "right kidney"]);
    expect(readCategories(work)).toBeNull();
    writeFileSync(join(work, "trainer_state.json"), JSON.stringify({ options: { categories: ["aorta"] } }));
    expect(readCategories(work)).toEqual(["aorta"]);
    for (const bad of ["[]", '["liver", "Liver"]', '"liver"', "[1]", "{"]) {
      writeFileSync(join(work, "categories.json"), bad);
      expect(() => readCategories(work), bad).toThrow(/categories\.json/);
    }
    rmSync(join(work, "categories.json"));
  });
});

describe("category lists and messages", () => {
  it("refuses a list with a blank name, and quotes at most 200 characters of what it got", () => {
    for (const bad of ['["liver", " "]', '[" ", "liver"]', '["liver", ""]']) {
      writeFileSync(join(work, "categories.json"), bad);
      expect(() => readCategories(work), bad).toThrow(`categories must be a non-empty JSON list of names, got ${JSON.stringify(JSON.parse(bad))}`);
    }
    writeFileSync(join(work, "categories.json"), JSON.stringify("x".repeat(500)));
    const message = (() => {
      try {
        readCategories(work);
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })();
    expect(message.endsWith(`got "${"x".repeat(199)}`)).toBe(true);
    writeFileSync(join(work, "categories.json"), "[\"liver\",");
    expect(() => readCategories(work)).toThrow(new RegExp(`^${join(work, "categories.json")} is not valid JSON \\(.+\\)$`));
    rmSync(join(work, "categories.json"));
  });

  it("a trainer state without options.categories, or of null, states none", () => {
    for (const state of ["{}", '{"options": {}}', "null", '{"options": null}']) {
      writeFileSync(join(work, "trainer_state.json"), state);
      expect(readCategories(work), state).toBeNull();
    }
    rmSync(join(work, "trainer_state.json"));
  });

  it("the refusal says how to allow open-vocabulary text, by default through the library option", () => {
    expect(() => resolveText("banana", { categories: ["liver"] })).toThrow(expect.objectContaining({ name: "UnknownCategoryError" }));
    expect(() => resolveText("banana", { categories: ["liver"] })).toThrow(
      'text prompt "banana" is not a category of the model; known categories: liver ' +
        "(case and spacing are ignored; use allowUnknownText: true for open-vocabulary text, which may segment another structure)",
    );
    expect(() => resolveText("banana", { categories: null, allowHint: "--allow-unknown-text" })).toThrow(
      'text prompt "banana": the model does not state its categories (no categories.json), so the prompt cannot be checked; ' +
        "add categories.json (a JSON list of names) to the weights folder, or use --allow-unknown-text for open-vocabulary text",
    );
  });
});
