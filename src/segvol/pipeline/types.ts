// The pipeline's contract with the model and with callers. The pipeline is
// model-agnostic: it only sees one window at a time through `WindowSegmenter`,
// so tests can drive it with a deterministic fake and the CLI with SegVol.
import type { VoxelArray } from "../../io/nifti.js";

/** Three sizes or coordinates; in model space ordered (D, H, W) = (k, j, i). */
export type Vec3 = [number, number, number];

/** Prompts for one window, in window voxel indices ordered (d, h, w). */
export interface WindowPrompt {
  /** Labels: 1 positive, 0 negative, −1 padding (coordinates ignored). */
  points?: { coords: Vec3[]; labels: number[] };
  /** (d0, h0, w0, d1, h1, w1), inclusive corners; all −1 means "no box inside this window". */
  box?: [number, number, number, number, number, number];
  text?: string;
}

export interface WindowSegmenter {
  /** (D, H, W) of one window. */
  readonly spatialSize: Vec3;
  /** One window, C-order [D, H, W]; returns an opaque embedding handle. */
  encode(window: Float32Array): Promise<unknown>;
  /** Window logits [D*H*W] for one prompt set. */
  decode(embedding: unknown, prompt: WindowPrompt): Promise<Float32Array>;
  release(embedding: unknown): void;
}

/** One thing to segment. Coordinates are voxel indices (i, j, k) of the input array. */
export interface Target {
  name: string;
  text?: string;
  /** (i0, j0, k0, i1, j1, k1), inclusive. */
  box?: [number, number, number, number, number, number];
  points?: { ijk: Vec3; label: 0 | 1 }[];
}

export interface SegmentOptions {
  /** Run the zoom-in stage (default true). */
  zoomIn?: boolean;
  /** Sliding-window overlap in [0, 1) (default 0.5). */
  overlap?: number;
  /**
   * Let text prompts name things outside the weights folder's categories
   * (open vocabulary; default false: such a prompt is refused, since the
   * model answers it with some other structure). Checked by SegVol.segment.
   */
  allowUnknownText?: boolean;
  onProgress?: (done: number, total: number, stage: string) => void;
}

/** A box in model space: `start` inclusive, `end` exclusive, axes (D, H, W). */
export interface Box3 {
  start: Vec3;
  end: Vec3;
}

/** Where the zoom-in stage looked for one target (coordinates in the cropped volume). */
export interface ZoomInPlan {
  /** The ROI cut from the cropped volume. */
  roi: Box3;
  /** Zeros added before/after the ROI along each axis where it is smaller than a window. */
  padBefore: Vec3;
  padAfter: Vec3;
  /** Window start positions in the padded ROI, in MONAI's order (first axis slowest). */
  windowStarts: Vec3[];
}

export interface TargetResult {
  name: string;
  /** 1 where sigmoid(logit) > 0.5; same layout as the input (i fastest). */
  mask: Uint8Array;
  /** Logits in the input geometry, i fastest like NIfTI; 0 outside the crop box. */
  logits: Float32Array;
  voxels: number;
  /** Time of this target's decodes and pasting plus its share of the encodes it used. */
  seconds: number;
  /** Windows decoded for this target: 1 (zoom-out) + its zoom-in windows. */
  windows: number;
  /** The zoom-in plan, or null when zoom-in was off or the zoom-out found nothing. */
  zoomIn: ZoomInPlan | null;
}

export interface SegmentStats {
  /** Encoder runs: 1 zoom-out + one per distinct zoom-in window. */
  encodes: number;
  decodes: number;
  zoomInEncodes: number;
  /** Zoom-in windows summed over targets (what the upstream loop would encode). */
  zoomInWindows: number;
  seconds: { preprocess: number; zoomOut: number; zoomIn: number; total: number };
}

export interface SegmentResult {
  targets: TargetResult[];
  /** The foreground crop in model space (D, H, W) = (k, j, i) of the input. */
  cropBox: Box3;
  stats: SegmentStats;
}

/**
 * The input volume: `data` in NIfTI order (i fastest), `dims` = (I, J, K).
 * Float32, or an integer type as `readNifti` keeps it (every value exact in
 * float32): the pipeline reads integers as they are, with no float copy.
 */
export interface Volume {
  dims: Vec3;
  data: VoxelArray;
}

/**
 * A C-order [D, H, W] volume read a row at a time: writes the values of row
 * (d, h) from w0 to w1 (exclusive) into `out` from index `at`. The
 * normalised volume is read this way, computed from the input on demand.
 */
export type RowReader = (d: number, h: number, w0: number, w1: number, out: Float32Array, at: number) => void;
