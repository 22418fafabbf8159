import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, loadConfig, parseConfig } from "../../src/segvol/config.js";
import { expectedParameters, parameterCount } from "../../src/segvol/params.js";
import { fixture, readJson } from "./util.js";

// Written by tools/segvol_ref/manifest.py from the PyTorch reference model and
// cross-checked there against totals measured on the published checkpoint.
const MANIFEST = join(fixture(""), "..", "..", "..", "weights", "manifest", "official.json");

describe("expected parameters", () => {
  it.skipIf(!existsSync(MANIFEST))("equal the official manifest exactly (names, order, shapes)", () => {
    const m = JSON.parse(readFileSync(MANIFEST, "utf8")) as { parameters: Record<string, number[]> };
    const mine = expectedParameters(DEFAULT_CONFIG);
    expect([...mine.keys()]).toEqual(Object.keys(m.parameters));
    expect(Object.fromEntries(mine)).toEqual(m.parameters);
    expect(mine.size).toBe(474);
    expect(parameterCount(mine)).toBe(180_891_216);
  });

  it("equal the tiny reference model's state dict (a small config scales every size)", () => {
    const { order, tensors } = readJson<{ order: string[]; tensors: Record<string, { shape: number[] }> }>("tiny_expected.json");
    const mine = expectedParameters(loadConfig(fixture("tiny_config.json")));
    expect([...mine.keys()]).toEqual(order);
    for (const [k, s] of mine) expect(s, k).toEqual(tensors[k]!.shape);
  });

  it("drop the text tower when text is null", () => {
    const withText = expectedParameters(DEFAULT_CONFIG);
    const without = expectedParameters(parseConfig({ text: null }));
    const textKeys = [...withText.keys()].filter((k) => k.startsWith("text_encoder."));
    expect(textKeys.length).toBe(12 * 16 + 2 + 2 + 2);
    expect([...without.keys()]).toEqual([...withText.keys()].filter((k) => !k.startsWith("text_encoder.")));
  });
});
