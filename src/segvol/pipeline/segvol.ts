// SegVol as a WindowSegmenter: the pipeline's only view of the network.
import type { ImageEmbedding, SegVol } from "../model.js";
import type { Vec3, WindowSegmenter } from "./types.js";

/** Wraps a loaded SegVol: one image embedding per window, decoded for any number of prompts. */
export function segvolSegmenter(model: SegVol): WindowSegmenter {
  return {
    spatialSize: model.spatialSize as Vec3,
    encode: async (window) => model.encodeImage(window),
    decode: (embedding, prompt) => model.decode(embedding as ImageEmbedding, prompt),
    release: (embedding) => (embedding as ImageEmbedding).dispose(),
  };
}
