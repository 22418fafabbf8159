import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, loadConfig, parseConfig } from "../../src/segvol/config.js";
import { errorOf, fixture, tempDir } from "./util.js";

const dir = tempDir("cfg");

describe("config", () => {
  it("defaults to the official model (issue 3 schema)", () => {
    expect(parseConfig({})).toEqual(DEFAULT_CONFIG);
    expect(DEFAULT_CONFIG.spatial_size).toEqual([32, 256, 256]);
    expect(DEFAULT_CONFIG.vit).toEqual({ hidden_size: 768, mlp_dim: 3072, num_layers: 12, num_heads: 12 });
    expect(DEFAULT_CONFIG.text?.template).toBe("A computerized tomography of a {}.");
    expect(Object.isFrozen(DEFAULT_CONFIG.vit)).toBe(true);
  });

  it("merges partial files over the defaults, section by section", () => {
    const c = parseConfig({ vit: { num_layers: 2 }, text: null, spatial_size: [16, 64, 64] });
    expect(c.vit).toEqual({ ...DEFAULT_CONFIG.vit, num_layers: 2 });
    expect(c.text).toBeNull();
    expect(c.spatial_size).toEqual([16, 64, 64]);
    expect(c.decoder).toEqual(DEFAULT_CONFIG.decoder);
    // The result is a fresh object: editing it leaves the defaults alone.
    c.decoder.depth = 5;
    expect(DEFAULT_CONFIG.decoder.depth).toBe(2);
  });

  it("loads the tiny test config, and the written form parses back to itself", () => {
    const c = loadConfig(fixture("tiny_config.json"));
    expect(c.vit.hidden_size).toBe(16);
    expect(parseConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
  });

  const bad: [string, unknown, RegExp][] = [
    ["unknown top-level field", { vitt: {} }, /vitt: unknown field/],
    ["unknown nested field", { decoder: { heads: 8 } }, /decoder\.heads: unknown field/],
    ["wrong type", { vit: { hidden_size: "768" } }, /vit\.hidden_size: expected a positive integer, got "768"/],
    ["non-integer", { vit: { num_layers: 1.5 } }, /vit\.num_layers: expected a positive integer/],
    ["bad triple", { patch_size: [4, 16] }, /patch_size: expected 3 positive integers/],
    ["spatial not divisible by patch", { spatial_size: [30, 256, 256] }, /spatial_size: \[30,256,256\] is not divisible by patch_size \[4,16,16\] on axis 0/],
    ["heads not dividing the ViT width", { vit: { num_heads: 7 } }, /vit\.num_heads: 7 does not divide vit\.hidden_size 768/],
    ["decoder heads not dividing the cross-attention width", { decoder: { num_heads: 5 } }, /decoder\.num_heads: 5 does not divide/],
    ["text heads not dividing", { text: { num_attention_heads: 3 } }, /text\.num_attention_heads: 3 does not divide text\.hidden_size 512/],
    ["decoder width differs from the ViT", { decoder: { transformer_dim: 512 } }, /decoder\.transformer_dim: 512 must equal vit\.hidden_size 768/],
    ["mask_in_chans not divisible by 4", { prompt_encoder: { mask_in_chans: 6 } }, /prompt_encoder\.mask_in_chans: 6 must be divisible by 4/],
    ["unknown activation", { text: { hidden_act: "relu" } }, /text\.hidden_act: expected one of quick_gelu, gelu_new, gelu/],
    ["template without {}", { text: { template: "CT of" } }, /text\.template: expected a string with exactly one "\{\}"/],
    ["not an object", [1, 2], /\(top level\): expected an object/],
    ["section not an object", { vit: 3 }, /vit: expected an object, got 3/],
  ];
  for (const [what, json, re] of bad) {
    it(`refuses ${what}, naming the field and the source`, () => {
      const msg = errorOf(() => parseConfig(json, "my/config.json"));
      expect(msg).toMatch(re);
      expect(msg).toContain("my/config.json");
    });
  }

  it("names the file for unreadable or invalid JSON", () => {
    const p = join(dir, "broken.json");
    writeFileSync(p, "{ not json");
    expect(errorOf(() => loadConfig(p))).toMatch(/broken\.json: not valid JSON/);
    expect(errorOf(() => loadConfig(join(dir, "nope.json")))).toMatch(/nope\.json: cannot read/);
  });
});
