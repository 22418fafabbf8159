// The deterministic window model of tools/pipeline_ref/fake.py, in TS: the
// same formula in float64, rounded to float32. It counts encodes and tracks
// live embeddings so tests can check sharing and releases.
import type { Vec3, WindowPrompt, WindowSegmenter } from "../../src/segvol/pipeline/types.js";

export function textBias(text: string): number {
  let s = 0;
  for (const ch of text) s += ch.codePointAt(0)!;
  return (s % 11) / 10 - 0.5;
}

interface Embedding {
  id: number;
  pixels: Float32Array;
}

export class FakeSegmenter implements WindowSegmenter {
  encodes = 0;
  decodes = 0;
  live = new Set<number>();
  /** Most embeddings alive at once. */
  peak = 0;
  /** Every encoded window, for tests that inspect what the model saw. */
  windows: Float32Array[] = [];
  prompts: WindowPrompt[] = [];

  constructor(readonly spatialSize: Vec3) {}

  async encode(window: Float32Array): Promise<unknown> {
    const [D, H, W] = this.spatialSize;
    if (window.length !== D * H * W) throw new Error(`fake encode: got ${window.length} values`);
    const e: Embedding = { id: this.encodes++, pixels: window.slice() };
    this.windows.push(e.pixels);
    this.live.add(e.id);
    this.peak = Math.max(this.peak, this.live.size);
    return e;
  }

  async decode(embedding: unknown, prompt: WindowPrompt): Promise<Float32Array> {
    const e = embedding as Embedding;
    if (!this.live.has(e.id)) throw new Error("fake decode: embedding was released");
    this.decodes++;
    this.prompts.push(prompt);
    const [D, H, W] = this.spatialSize;
    const y = new Float64Array(D * H * W);
    for (let x = 0; x < y.length; x++) y[x] = 4 * (e.pixels[x]! - 0.5);
    const addBox = (d0: number, h0: number, w0: number, d1: number, h1: number, w1: number, v: number) => {
      for (let d = Math.max(d0, 0); d <= Math.min(d1, D - 1); d++)
        for (let h = Math.max(h0, 0); h <= Math.min(h1, H - 1); h++)
          for (let w = Math.max(w0, 0); w <= Math.min(w1, W - 1); w++) y[(d * H + h) * W + w] = y[(d * H + h) * W + w]! + v;
    };
    const addAll = (v: number) => {
      for (let x = 0; x < y.length; x++) y[x] = y[x]! + v;
    };
    if (prompt.text !== undefined) addAll(textBias(prompt.text));
    if (prompt.box) {
      const b = prompt.box;
      if (b[0] < 0) addAll(-0.5);
      else addBox(b[0], b[1], b[2], b[3], b[4], b[5], 2.5);
    }
    if (prompt.points) {
      prompt.points.coords.forEach((c, n) => {
        const l = prompt.points!.labels[n]!;
        if (l === -1) addAll(-0.25);
        else addBox(c[0] - 2, c[1] - 2, c[2] - 2, c[0] + 2, c[1] + 2, c[2] + 2, l === 1 ? 2 : -2);
      });
    }
    return Float32Array.from(y);
  }

  release(embedding: unknown): void {
    const e = embedding as Embedding;
    if (!this.live.delete(e.id)) throw new Error("fake release: embedding released twice");
  }
}
