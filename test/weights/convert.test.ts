import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { registerConvert } from "../../src/cli/convert.js";
import { OFFICIAL_CATEGORIES } from "../../src/segvol/categories.js";
import { loadConfig } from "../../src/segvol/config.js";
import { expectedParameters } from "../../src/segvol/params.js";
import { CLIP_TOKENIZER_DIR } from "../helpers/fixtures.js";
import { f16BitsToF32 } from "../../src/weights/dtype.js";
import { convertCheckpoint, ConvertMismatchError } from "../../src/segvol/convert.js";
import { SafetensorsFile, writeSafetensors } from "../../src/weights/safetensors.js";
import { b64bytes, errorOf, fixture, readJson, sameBytes, tempDir } from "./util.js";

const dir = tempDir("convert");
const tinyCfg = fixture("tiny_config.json");
const expected = readJson<{ order: string[]; tensors: Record<string, { shape: number[]; f32: string; f16: string }> }>("tiny_expected.json");

// A tokenizer folder with placeholder files (convert copies, it does not parse them).
const tokDir = join(dir, "tok");
mkdirSync(tokDir);
for (const f of ["tokenizer.json", "vocab.json", "merges.txt", "special_tokens_map.json"]) writeFileSync(join(tokDir, f), `{"file": "${f}"}`);

function siblingsLeft(): string[] {
  return readdirSync(dir).filter((n) => n.includes(".convert-"));
}

describe("convert", () => {
  it("HF .bin → f32 folder: bit-identical tensors, resolved config, tokenizer files", () => {
    const out = join(dir, "hf32");
    const lines: string[] = [];
    const r = convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: out, config: tinyCfg, tokenizerDir: tokDir, log: (l) => lines.push(l) });
    expect(r.tensors).toBe(expected.order.length);
    expect(r.ignored).toEqual(["model.text_encoder.clip_text_model.text_model.embeddings.position_ids"]);
    expect(r.warnings).toEqual([]);
    expect(readdirSync(out).sort()).toEqual(["categories.json", "config.json", "merges.txt", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "vocab.json"]);
    expect(readFileSync(join(out, "vocab.json"), "utf8")).toBe(`{"file": "vocab.json"}`);
    // The folder states the official model's categories, which text prompts are checked against.
    expect(JSON.parse(readFileSync(join(out, "categories.json"), "utf8"))).toEqual(OFFICIAL_CATEGORIES);
    expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8"))).toEqual(loadConfig(tinyCfg));
    const st = SafetensorsFile.open(join(out, "model.safetensors"));
    expect(st.keys()).toEqual(expected.order);
    expect(st.metadata.producer).toBe("segvol convert");
    for (const name of expected.order) {
      expect(st.info(name)).toEqual({ dtype: "F32", shape: expected.tensors[name]!.shape });
      expect(sameBytes(st.readRaw(name), b64bytes(expected.tensors[name]!.f32)), name).toBe(true);
    }
    st.close();
    expect(lines[0]).toMatch(/prefix "model\." stripped/);
    expect(siblingsLeft()).toEqual([]);
  });

  it("HF .bin → f16: torch's .half() bits, so within f16 rounding of the f32 values", () => {
    const out = join(dir, "hf16");
    convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: out, config: tinyCfg, tokenizerDir: tokDir, dtype: "f16" });
    const st = SafetensorsFile.open(join(out, "model.safetensors"));
    let maxRel = 0;
    for (const name of expected.order) {
      const e = expected.tensors[name]!;
      expect(st.info(name).dtype).toBe("F16");
      const raw = st.readRaw(name);
      expect(sameBytes(raw, b64bytes(e.f16)), name).toBe(true);
      const h = f16BitsToF32(new Uint16Array(raw.buffer));
      const f = new Float32Array(b64bytes(e.f32).buffer);
      for (let i = 0; i < f.length; i++) {
        // Half precision: relative error ≤ 2^-11 for normal values (|x| ≥ 2^-14).
        if (Math.abs(f[i]!) >= 2 ** -14) maxRel = Math.max(maxRel, Math.abs(h[i]! - f[i]!) / Math.abs(f[i]!));
        else expect(Math.abs(h[i]! - f[i]!)).toBeLessThanOrEqual(2 ** -25);
      }
    }
    expect(maxRel).toBeLessThanOrEqual(2 ** -11);
    expect(maxRel).toBeGreaterThan(0);
    st.close();
  });

  it("SegVol_v1.pth (nested, module., f16) → f32: exact widening of the stored halves", () => {
    const out = join(dir, "v1");
    const r = convertCheckpoint({ checkpoint: fixture("tiny_v1.pth"), outDir: out, config: tinyCfg, tokenizerDir: tokDir });
    expect(r.strippedPrefix).toBe("module.");
    const st = SafetensorsFile.open(join(out, "model.safetensors"));
    for (const name of expected.order) {
      const want = f16BitsToF32(new Uint16Array(b64bytes(expected.tensors[name]!.f16).buffer));
      const got = st.readF32(name);
      expect(st.info(name).dtype).toBe("F32");
      expect(sameBytes(new Uint8Array(got.buffer), new Uint8Array(want.buffer)), name).toBe(true);
    }
    st.close();
  });

  it("prefixed safetensors → folder, bit-identical; f16 source stays bit-identical at --dtype f16", () => {
    const out = join(dir, "fromst");
    convertCheckpoint({ checkpoint: fixture("tiny_prefixed.safetensors"), outDir: out, config: tinyCfg, tokenizerDir: tokDir });
    const st = SafetensorsFile.open(join(out, "model.safetensors"));
    for (const name of expected.order) expect(sameBytes(st.readRaw(name), b64bytes(expected.tensors[name]!.f32)), name).toBe(true);
    st.close();
    const out16 = join(dir, "v1f16");
    convertCheckpoint({ checkpoint: fixture("tiny_v1.pth"), outDir: out16, config: tinyCfg, tokenizerDir: tokDir, dtype: "f16" });
    const st16 = SafetensorsFile.open(join(out16, "model.safetensors"));
    for (const name of expected.order) expect(sameBytes(st16.readRaw(name), b64bytes(expected.tensors[name]!.f16)), name).toBe(true);
    st16.close();
  });

  it("lists every missing / unexpected key before failing, and writes nothing", () => {
    // The official config against the tiny checkpoint: everything mismatches.
    const out = join(dir, "wrongcfg");
    const e = (() => {
      try {
        convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: out });
      } catch (err) {
        return err as ConvertMismatchError;
      }
      throw new Error("no error");
    })();
    expect(e).toBeInstanceOf(ConvertMismatchError);
    expect(e.message).not.toContain("\n");
    expect(e.message).toContain(fixture("tiny_hf.bin"));
    // All but the few tensors whose shapes do not depend on the sizes (e.g. the 4-way IoU bias).
    expect(e.mismatched.length + e.missing.length).toBeGreaterThan(460);
    expect(e.details().split("\n").length).toBe(e.mismatched.length + e.missing.length + e.unexpected.length);
    expect(existsSync(out)).toBe(false);
    expect(siblingsLeft()).toEqual([]);
  });

  it("names the missing tensor, the unexpected one, and a shape mismatch, one line each", () => {
    const st = SafetensorsFile.open(fixture("tiny_prefixed.safetensors"));
    const keys = st.keys();
    const drop = "model.mask_decoder.iou_token.weight";
    const p = join(dir, "edited.safetensors");
    writeSafetensors(p, [
      ...keys.filter((k) => k !== drop).map((k) => ({ name: k, dtype: st.info(k).dtype, shape: st.info(k).shape, data: () => st.readRaw(k) })),
      { name: "model.extra.weight", dtype: "F32" as const, shape: [2], data: new Float32Array(2) },
    ]);
    st.close();
    const missing = errorOf(() => convertCheckpoint({ checkpoint: p, outDir: join(dir, "edited"), config: tinyCfg }));
    expect(missing).toBe(
      `convert: ${p} does not match the config: 1 missing (mask_decoder.iou_token.weight); 1 unexpected (extra.weight)`,
    );
    // Shape mismatch: a config whose ViT MLP is wider (linear1 w+b, linear2 w, in 2 blocks).
    const cfg = { ...loadConfig(tinyCfg) };
    cfg.vit = { ...cfg.vit, mlp_dim: 32 };
    const shape = errorOf(() => convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: join(dir, "shape"), config: cfg }));
    expect(shape).toMatch(
      /tiny_hf\.bin does not match the config: 6 shape mismatch\(es\) \(image_encoder\.blocks\.0\.mlp\.linear1\.weight: checkpoint \[24, 16\], config \[32, 16\], \.\.\.\)/,
    );
    expect(shape).not.toContain("\n");
    expect(existsSync(join(dir, "shape"))).toBe(false);
  });

  it("replaces a previous convert output, refuses a foreign non-empty folder", () => {
    const out = join(dir, "again");
    convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: out, config: tinyCfg, tokenizerDir: tokDir });
    convertCheckpoint({ checkpoint: fixture("tiny_v1.pth"), outDir: out, config: tinyCfg });
    // The second run's tokenizer folder (the fixtures folder) has none: only its files remain.
    expect(readdirSync(out).sort()).toEqual(["categories.json", "config.json", "model.safetensors"]);
    const foreign = join(dir, "foreign");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "notes.txt"), "mine");
    expect(errorOf(() => convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: foreign, config: tinyCfg }))).toMatch(
      /foreign is not empty and not a previous convert output \(it holds notes\.txt\)/,
    );
    expect(readdirSync(foreign)).toEqual(["notes.txt"]);
    const empty = join(dir, "emptyout");
    mkdirSync(empty);
    convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: empty, config: tinyCfg });
    expect(existsSync(join(empty, "model.safetensors"))).toBe(true);
    expect(siblingsLeft()).toEqual([]);
  });

  it("warns when the text tower has no tokenizer; refuses a --tokenizer folder without one", () => {
    const r = convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: join(dir, "notok"), config: tinyCfg });
    expect(r.warnings.join(" ")).toMatch(/no tokenizer .* text prompts will not work/);
    expect(errorOf(() => convertCheckpoint({ checkpoint: fixture("tiny_hf.bin"), outDir: join(dir, "badtok"), config: tinyCfg, tokenizerDir: dir }))).toMatch(
      /--tokenizer .* holds none of tokenizer\.json/,
    );
  });

  it("gives a CLIP-sized text tower without tokenizer files the CLIP vocabulary the package ships (SegVol_v1.pth comes without)", () => {
    const cfg = loadConfig(tinyCfg);
    cfg.text!.vocab_size = 49408;
    const src = join(dir, "clip-sized");
    mkdirSync(src);
    const ckpt = join(src, "model.safetensors");
    writeSafetensors(
      ckpt,
      [...expectedParameters(cfg)].map(([name, shape]) => ({ name, dtype: "F32" as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) })),
    );
    const lines: string[] = [];
    const out = join(dir, "clip-sized-out");
    const r = convertCheckpoint({ checkpoint: ckpt, outDir: out, config: cfg, log: (l) => lines.push(l) });
    expect(r.warnings).toEqual([]);
    expect(lines.join("\n")).toMatch(/no tokenizer files beside the checkpoint: using the CLIP vocabulary shipped with segvol-webgpu/);
    for (const f of ["vocab.json", "merges.txt"]) expect(sameBytes(readFileSync(join(out, f)), readFileSync(join(CLIP_TOKENIZER_DIR, f))), f).toBe(true);
    // Any other vocabulary size is not CLIP's: no tokenizer is guessed for it.
    cfg.text!.vocab_size = 49407;
    const other = join(dir, "other-vocab");
    writeSafetensors(
      ckpt,
      [...expectedParameters(cfg)].map(([name, shape]) => ({ name, dtype: "F32" as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) })),
    );
    expect(convertCheckpoint({ checkpoint: ckpt, outDir: other, config: cfg }).warnings.join(" ")).toMatch(/no tokenizer .* text prompts will not work/);
    expect(existsSync(join(other, "vocab.json"))).toBe(false);
  });

  it("refuses malicious and legacy checkpoints before writing anything", () => {
    expect(errorOf(() => convertCheckpoint({ checkpoint: fixture("malicious_os_system.pth"), outDir: join(dir, "evil"), config: tinyCfg }))).toMatch(
      /refusing to load global "os\.system"/,
    );
    expect(errorOf(() => convertCheckpoint({ checkpoint: fixture("legacy.pth"), outDir: join(dir, "old"), config: tinyCfg }))).toMatch(/re-save/);
    expect(existsSync(join(dir, "evil")) || existsSync(join(dir, "old"))).toBe(false);
  });
});

describe("segvol convert (CLI)", () => {
  function program(): Command {
    const p = new Command().exitOverride();
    p.configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerConvert(p);
    return p;
  }

  it("converts with the documented options", async () => {
    const out = join(dir, "cli");
    await program().parseAsync(["node", "segvol", "convert", fixture("tiny_v1.pth"), "--out", out, "--config", tinyCfg, "--tokenizer", tokDir, "--dtype", "f16"]);
    const st = SafetensorsFile.open(join(out, "model.safetensors"));
    expect(st.info(expected.order[0]!).dtype).toBe("F16");
    st.close();
    expect(existsSync(join(out, "tokenizer.json"))).toBe(true);
  });

  it("rejects a bad --dtype and a missing --out", async () => {
    await expect(program().parseAsync(["node", "segvol", "convert", fixture("tiny_v1.pth"), "--out", join(dir, "x"), "--dtype", "f8"])).rejects.toThrow(
      /--dtype must be f32 or f16, got "f8"/,
    );
    await expect(program().parseAsync(["node", "segvol", "convert", fixture("tiny_v1.pth")])).rejects.toThrow(/--out/);
  });
});
