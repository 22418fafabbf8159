// From-scratch initialisation: every expected parameter with its shape, the
// statistics PyTorch's defaults give each kind (checked against hand-written
// expectations per parameter name, not the implementation's rule table),
// determinism per seed, and a folder that SegVol.fromWeights loads and runs.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { writeInitFolder } from "../../src/cli/init.js";
import { buildTokenizer } from "../../src/demo/tokenizer_builder.js";
import { loadConfig, parseConfig } from "../../src/segvol/config.js";
import { SegVol } from "../../src/segvol/model.js";
import { expectedParameters } from "../../src/segvol/params.js";
import { initWeights, type InitTensor } from "../../src/train/init.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const demoConfigPath = join(repo, "weights", "demo", "config.json");
const tmp = mkdtempSync(join(tmpdir(), "segvol-init-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function stats(a: Float32Array): { mean: number; std: number; maxAbs: number; min: number; max: number } {
  let s = 0, s2 = 0, m = 0, min = Infinity, max = -Infinity;
  for (const v of a) {
    s += v;
    s2 += v * v;
    m = Math.max(m, Math.abs(v));
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(Math.max(0, s2 / a.length - mean * mean)), maxAbs: m, min, max };
}

/** U(±b): inside the bound, mean 0 and std b/√3 within sampling error, and reaching near the bound. */
function expectUniform(t: InitTensor, b: number, what: string): void {
  const n = t.data.length;
  const s = stats(t.data);
  expect(s.maxAbs, what).toBeLessThanOrEqual(b);
  const se = b / Math.sqrt(n); // generous: std of the mean is b/√(3n)
  expect(Math.abs(s.mean), what).toBeLessThan(5 * se + 1e-7);
  if (n >= 256) {
    expect(s.std / (b / Math.sqrt(3)), what).toBeGreaterThan(0.9);
    expect(s.std / (b / Math.sqrt(3)), what).toBeLessThan(1.1);
    expect(s.max, what).toBeGreaterThan(0.9 * b);
    expect(s.min, what).toBeLessThan(-0.9 * b);
  }
}

/** N(0, σ): mean, std and the share within one σ (0.683) within sampling error. */
function expectNormal(t: InitTensor, sigma: number, what: string): void {
  const n = t.data.length;
  const s = stats(t.data);
  expect(Math.abs(s.mean), what).toBeLessThan((5 * sigma) / Math.sqrt(n));
  const tol = 4 / Math.sqrt(2 * n); // std of a sample std ≈ σ/√(2n)
  expect(Math.abs(s.std / sigma - 1), what).toBeLessThan(tol);
  if (n >= 1000) {
    const within = t.data.filter((v) => Math.abs(v) < sigma).length / n;
    expect(Math.abs(within - 0.6827), what).toBeLessThan(5 * Math.sqrt(0.6827 * 0.3173 / n));
  }
}

function expectConstant(t: InitTensor, v: number, what: string): void {
  expect(t.data.every((x) => x === v), what).toBe(true);
}

describe("initWeights on the demo config", () => {
  const cfg = loadConfig(demoConfigPath);
  const w = initWeights(cfg, 7);
  const get = (n: string): InitTensor => {
    const t = w.get(n);
    if (!t) throw new Error(`missing ${n}`);
    return t;
  };
  const E = cfg.vit.hidden_size;
  const dim = cfg.decoder.transformer_dim;
  const th = cfg.text!.hidden_size;

  it("ships a config whose vocab_size is the tokenizer built for the demo categories", () => {
    const tok = buildTokenizer(["liver", "spleen", "left kidney", "right kidney"], cfg.text!.template);
    expect(cfg.text!.vocab_size).toBe(tok.vocabSize);
    expect(cfg.decoder.transformer_dim).toBe(cfg.vit.hidden_size);
  });

  it("has every expected parameter, with its shape, in expectedParameters' order", () => {
    const exp = expectedParameters(cfg);
    expect([...w.keys()]).toEqual([...exp.keys()]);
    for (const [n, shape] of exp) {
      expect(w.get(n)!.shape, n).toEqual(shape);
      expect(w.get(n)!.data.length, n).toBe(shape.reduce((a, b) => a * b, 1));
      expect(w.get(n)!.data.every(Number.isFinite), n).toBe(true);
    }
  });

  it("draws Linear and Conv weights and biases from U(±1/√fan_in), PyTorch's default", () => {
    expectUniform(get("image_encoder.blocks.0.mlp.linear1.weight"), 1 / Math.sqrt(E), "vit linear1.weight");
    expectUniform(get("image_encoder.blocks.0.mlp.linear1.bias"), 1 / Math.sqrt(E), "vit linear1.bias");
    expectUniform(get("image_encoder.blocks.1.mlp.linear2.weight"), 1 / Math.sqrt(cfg.vit.mlp_dim), "vit linear2.weight");
    expectUniform(get("image_encoder.blocks.1.attn.qkv.weight"), 1 / Math.sqrt(E), "qkv");
    expectUniform(get("mask_decoder.transformer.layers.0.cross_attn_token_to_image.out_proj.weight"), 1 / Math.sqrt(dim / 2), "out_proj");
    expectUniform(get("mask_decoder.txt_align_upscaled_embedding.weight"), 1 / Math.sqrt(dim), "txt_align");
    expectUniform(get("mask_decoder.iou_prediction_head.layers.1.bias"), 1 / Math.sqrt(cfg.decoder.iou_head_hidden_dim), "iou head bias");
    expectUniform(get("text_encoder.clip_text_model.text_model.encoder.layers.0.mlp.fc2.weight"), 1 / Math.sqrt(cfg.text!.intermediate_size), "fc2");
    expectUniform(get("text_encoder.dim_align.weight"), 1 / Math.sqrt(th), "dim_align");
    // Conv2d [out, in, k, k]: fan_in = in·k².
    const c = cfg.prompt_encoder.mask_in_chans;
    expectUniform(get("prompt_encoder.mask_downscaling.3.weight"), 1 / Math.sqrt((c / 4) * 4), "conv2d");
    expectUniform(get("prompt_encoder.mask_downscaling.6.bias"), 1 / Math.sqrt(c), "conv2d bias");
    // ConvTranspose3d [in, out, 2, 2, 2]: PyTorch takes fan_in from dim 1 (out·k³).
    expectUniform(get("mask_decoder.output_upscaling.0.weight"), 1 / Math.sqrt((dim / 4) * 8), "convT 0");
    expectUniform(get("mask_decoder.output_upscaling.0.bias"), 1 / Math.sqrt((dim / 4) * 8), "convT 0 bias");
    expectUniform(get("mask_decoder.output_upscaling.3.weight"), 1 / Math.sqrt((dim / 8) * 8), "convT 3");
  });

  it("sets norms to weight 1, bias 0", () => {
    for (const n of [
      "image_encoder.blocks.0.norm1",
      "image_encoder.norm",
      "mask_decoder.transformer.layers.1.norm4",
      "mask_decoder.transformer.norm_final_attn",
      "mask_decoder.output_upscaling.1",
      "prompt_encoder.mask_downscaling.4",
      "text_encoder.clip_text_model.text_model.encoder.layers.1.layer_norm2",
      "text_encoder.clip_text_model.text_model.final_layer_norm",
    ]) {
      expectConstant(get(`${n}.weight`), 1, n);
      expectConstant(get(`${n}.bias`), 0, n);
    }
  });

  it("draws embeddings from the normals of their modules", () => {
    // SAM: nn.Embedding → N(0, 1); the Fourier matrix N(0, 1)·1.
    const all = (names: string[]) => ({ shape: [0], data: Float32Array.from(names.flatMap((n) => [...get(n).data])) });
    expectNormal(all(["mask_decoder.mask_tokens.weight", "mask_decoder.iou_token.weight"]), 1, "mask/iou tokens");
    expectNormal(all([0, 1, 2, 3].map((i) => `prompt_encoder.point_embeddings.${i}.weight`).concat(["prompt_encoder.not_a_point_embed.weight", "prompt_encoder.no_mask_embed.weight"])), 1, "point embeddings");
    expectNormal(get("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"), 1, "gaussian matrix");
    // CLIP (HF): N(0, 0.02).
    expectNormal(get("text_encoder.clip_text_model.text_model.embeddings.token_embedding.weight"), 0.02, "token embedding");
    expectNormal(get("text_encoder.clip_text_model.text_model.embeddings.position_embedding.weight"), 0.02, "position embedding");
    // MONAI's patch embedding block: trunc_normal(0.02) position embeddings and patch weights, bias 0.
    expectNormal(get("image_encoder.patch_embedding.position_embeddings"), 0.02, "vit position embeddings");
    expectNormal(get("image_encoder.patch_embedding.patch_embeddings.1.weight"), 0.02, "patch weights");
    expectConstant(get("image_encoder.patch_embedding.patch_embeddings.1.bias"), 0, "patch bias");
  });

  it("is deterministic per seed, differs across seeds and across tensors", () => {
    const again = initWeights(cfg, 7);
    const other = initWeights(cfg, 8);
    for (const [n, t] of w) {
      expect(Buffer.from(again.get(n)!.data.buffer).equals(Buffer.from(t.data.buffer)), n).toBe(true);
      const s = stats(t.data);
      if (s.std > 0) expect(Buffer.from(other.get(n)!.data.buffer).equals(Buffer.from(t.data.buffer)), n).toBe(false);
    }
    // Same shape, different names: not the same stream.
    expect(get("image_encoder.blocks.0.mlp.linear1.weight").data).not.toEqual(get("image_encoder.blocks.1.mlp.linear1.weight").data);
    // A tensor's values do not depend on the rest of the config (here: no text tower).
    const noText = initWeights({ ...cfg, text: null }, 7);
    expect(noText.get("mask_decoder.mask_tokens.weight")!.data).toEqual(get("mask_decoder.mask_tokens.weight").data);
  });

  it("refuses a bad seed", () => {
    expect(() => initWeights(cfg, -1)).toThrow(/initWeights: seed/);
    expect(() => initWeights(cfg, 1.5)).toThrow(/initWeights: seed/);
  });
});

describe("an initialised folder", () => {
  // A small odd-shaped model with a text tower, so the GPU forward stays quick.
  const small = parseConfig({
    spatial_size: [12, 48, 32],
    patch_size: [4, 16, 16],
    vit: { hidden_size: 32, mlp_dim: 48, num_layers: 1, num_heads: 2 },
    decoder: { transformer_dim: 32, depth: 1, num_heads: 2, mlp_dim: 24, num_multimask_outputs: 3, iou_head_depth: 3, iou_head_hidden_dim: 16, attention_downsample_rate: 2 },
    prompt_encoder: { mask_in_chans: 4 },
    text: { vocab_size: 1, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 12, layer_norm_eps: 1e-5, hidden_act: "quick_gelu", template: "A computerized tomography of a {}." },
  }, "small");

  it("loads with SegVol.fromWeights and segments a window by text and by box", async () => {
    const out = join(tmp, "small");
    const r = writeInitFolder({ config: small, out, seed: 3, categories: ["liver", "left kidney"] });
    const written = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(written.text.vocab_size).toBe(r.vocabSize);
    const model = await SegVol.fromWeights(out);
    try {
      expect(model.tokenize("left kidney").every((id) => id < r.vocabSize!)).toBe(true);
      const [D, H, W] = small.spatial_size;
      const win = new Float32Array(D * H * W);
      for (let i = 0; i < win.length; i++) win[i] = Math.sin(i * 0.37) * 0.5;
      const byText = await model.forward(win, { text: "liver" });
      const byBox = await model.forward(win, { box: [1, 4, 3, 9, 30, 20] });
      for (const logits of [byText, byBox]) {
        expect(logits.length).toBe(D * H * W);
        expect(logits.every(Number.isFinite)).toBe(true);
        expect(stats(logits).std).toBeGreaterThan(0); // random weights: not a constant output
      }
      expect(byText).not.toEqual(byBox);
    } finally {
      model.dispose();
    }
  });
});
