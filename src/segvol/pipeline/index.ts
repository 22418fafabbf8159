// The volume pipeline: SegVol preprocessing and zoom-out-zoom-in over any WindowSegmenter.
export * from "./types.js";
export { segmentVolume } from "./segment.js";
export { preprocess, checkVolume, normStats, type Preprocessed, type NormStats } from "./preprocess.js";
export { percentile, percentiles } from "./percentile.js";
