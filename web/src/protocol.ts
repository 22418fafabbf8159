// Messages between the app (app.ts) and its segmentation worker (worker.ts).
import type { Target } from "../../src/segvol/pipeline/types.js";

export type ToWorker =
  | { type: "weights"; files: File[] | null }
  | { type: "segment"; dims: [number, number, number]; data: Float32Array | Int16Array | Uint16Array | Int8Array | Uint8Array; targets: Target[] };

export interface WorkerTarget {
  name: string;
  voxels: number;
  mask: Uint8Array;
}

export type FromWorker =
  | { type: "progress"; stage: string; done: number; total: number }
  | { type: "loaded"; source: string; categories: string[] | null }
  | { type: "result"; targets: WorkerTarget[]; labels: Int16Array; seconds: number }
  | { type: "error"; message: string };
