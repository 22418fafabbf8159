// Model goldens (test/fixtures/model, from tools/segvol_ref in float64):
// one encoder case and prompt cases, each compared with a stated relative
// tolerance (max |err| ≤ tol · max |ref|) and a mask agreement bound. Shared
// by the f32 parity test and the f16 one.
import { expect } from "vitest";
import { constant, noGrad } from "../../src/autograd/autograd.js";
import type { SegVol, ImageEmbedding, TextEmbedding, WindowPrompt } from "../../src/segvol/model.js";
import type { Vec3 } from "../../src/segvol/prompt_encoder.js";
import { readAsFloat32 } from "../../src/weights/safetensors_reader.js";
import { relError, type FixtureCase } from "./fixtures.js";

/** Bounds of one comparison: every tensor within tol · max |ref|, masks (logit > 0) agreeing on ≥ agreement of voxels. */
export interface GoldenBounds {
  tol: number;
  agreement: number;
}

/** [1, C, N...] channel-major → [N, C] token-major. */
export function toTokenMajor(a: Float32Array, C: number): Float32Array {
  const N = a.length / C;
  const out = new Float32Array(a.length);
  for (let c = 0; c < C; c++) for (let t = 0; t < N; t++) out[t * C + c] = a[c * N + t]!;
  return out;
}

export function maskAgreement(a: Float32Array, b: Float32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i]! > 0 === b[i]! > 0) same++;
  return same / a.length;
}

export function promptOf(c: FixtureCase): Omit<WindowPrompt, "text"> {
  const p: WindowPrompt = {};
  const pts = c.inputs.points;
  if (pts) {
    const coords: Vec3[] = [];
    for (let i = 0; i < pts.shape[0]!; i++) coords.push([pts.data[3 * i]!, pts.data[3 * i + 1]!, pts.data[3 * i + 2]!]);
    p.points = { coords, labels: Array.from(c.inputs.labels!.data) };
  }
  if (c.inputs.box) p.box = Array.from(c.inputs.box.data) as WindowPrompt["box"];
  return p;
}

/** The prompt's sparse tokens [T, C] as the decoder gets them (positional part + learned rows, then the text). */
async function sparseTokens(model: SegVol, prompt: WindowPrompt, text: TextEmbedding | null): Promise<Float32Array> {
  const v = noGrad(() => model.network.promptEncoder.sparse([prompt], text ? constant(text.gpu) : null))!;
  try {
    return await readAsFloat32(v.value);
  } finally {
    v.dispose();
  }
}

export async function checkCases(model: SegVol, goldens: FixtureCase[], bounds: GoldenBounds): Promise<void> {
  const { tol: TOL, agreement } = bounds;
  const enc = goldens.find((c) => c.name === "encoder")!;
  const C = model.config.decoder.transformer_dim;
  const emb: ImageEmbedding = model.encodeImage(enc.inputs.window!.data as Float32Array);
  try {
    const tokens = await readAsFloat32(emb.tokens);
    expect(relError(tokens, toTokenMajor(enc.outputs.image_embedding!.data as Float32Array, C))).toBeLessThanOrEqual(TOL);
    const dense = model.network.promptEncoder.densePositional();
    expect(relError(dense, toTokenMajor(enc.outputs.dense_pe!.data as Float32Array, C))).toBeLessThanOrEqual(TOL);

    for (const c of goldens.filter((g) => g.name !== "encoder")) {
      const prompt: WindowPrompt = promptOf(c);
      if (c.inputs.text_ids) {
        const text = await model.encodeTextIds(Array.from(c.inputs.text_ids.data));
        expect(relError(text.host, c.outputs.text_embedding!.data), `${c.name}: text embedding`).toBeLessThanOrEqual(TOL);
        prompt.text = text;
      }
      const sparse = await sparseTokens(model, prompt, typeof prompt.text === "object" ? prompt.text : null);
      expect(relError(sparse, c.outputs.sparse!.data), `${c.name}: sparse tokens`).toBeLessThanOrEqual(TOL);
      const logits = await model.decode(emb, prompt);
      const ref = c.outputs.logits!.data as Float32Array;
      expect(relError(logits, ref), `${c.name}: logits`).toBeLessThanOrEqual(TOL);
      expect(maskAgreement(logits, ref), `${c.name}: mask agreement`).toBeGreaterThanOrEqual(agreement);
    }
  } finally {
    emb.dispose();
  }
}

