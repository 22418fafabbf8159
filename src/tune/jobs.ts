// The shapes the tuner times, as data, and the jobs that time them: each
// allocates its inputs once, in the precision it tunes, and runs its op
// with one candidate forced. The candidate lists are the same at f32 and
// f16: every variant of matmul, attention and the conv GEMM runs at both
// (f16 is storage only; every f16 matmul candidate runs against a
// reference in test/kernels/candidates.test.ts, and attention.test.ts and
// conv3d.test.ts run every attention and GEMM variant in f16).
import { attention, attentionCandidates, attentionTuneKey } from "../kernels/attention.js";
import { conv3d } from "../kernels/conv3d.js";
import { gemmCandidates, type GemmVariant } from "../kernels/conv_gemm.js";
import { matmul, matmulCandidates, type MatmulChoice } from "../kernels/matmul.js";
import { checkF16, type Precision } from "../kernels/precision.js";
import { deviceProfile, setDeviceProfile, type AttentionVariant } from "../kernels/profile.js";
import { Tensor } from "../tensor/tensor.js";
import { tune, type TuneJob, type TuneOptions, type TuneResult } from "./tuner.js";

/** A Linear-style product: x [M, K] · wᵀ (w [N, K]). */
export interface MatmulShape {
  op: "matmul";
  M: number;
  N: number;
  K: number;
}

/** Self or cross attention of one batch: Nq queries over Nk keys, H heads of dk (q, k) and dv (v) features. */
export interface AttentionShape {
  op: "attention";
  Nq: number;
  Nk: number;
  H: number;
  dk: number;
  dv: number;
}

/** A convolution GEMM: C[M, N] = Σ_k A(k, m) · B(k, n). */
export interface GemmShape {
  op: "gemm";
  M: number;
  N: number;
  K: number;
}

export type TuneShape = MatmulShape | AttentionShape | GemmShape;

/** The shape as `op a×b×c…` (its dimensions in the order the op's chooser buckets them), with ` f16` after it at f16. */
export function shapeTitle(s: TuneShape, precision: Precision = "f32"): string {
  const title = `${s.op} ${tuneDims(s).join("×")}`;
  return precision === "f32" ? title : `${title} ${precision}`;
}

/** The dimensions the op's chooser buckets (see tunedKey). */
export function tuneDims(s: TuneShape): number[] {
  return s.op === "attention" ? attentionTuneKey(s) : [s.M, s.N, s.K];
}

/** Inputs of `precision` made on first use (a job list holds no memory until each job runs) and freed by `dispose`. */
function lazyInputs(shapes: number[][], precision: Precision): { get(): Tensor[]; dispose(): void } {
  let inputs: Tensor[] | null = null;
  return {
    get: () => (inputs ??= shapes.map((shape) => Tensor.zeros(shape, precision))),
    dispose: () => {
      inputs?.forEach((t) => t.dispose());
      inputs = null;
    },
  };
}

/** The job's fields that come from its shape and precision alone. */
function jobHead(s: TuneShape, precision: Precision): Pick<TuneJob, "op" | "dims" | "precision" | "title"> {
  return { op: s.op, dims: tuneDims(s), precision, title: shapeTitle(s, precision) };
}

function matmulJob(s: MatmulShape, precision: Precision): TuneJob<MatmulChoice> {
  const inputs = lazyInputs([[s.M, s.K], [s.N, s.K]], precision);
  return {
    ...jobHead(s, precision),
    candidates: matmulCandidates(s.M, s.N, s.K),
    flops: 2 * s.M * s.N * s.K,
    run: (variant) => {
      const [x, w] = inputs.get() as [Tensor, Tensor];
      matmul(x, w, { transB: true, variant }).dispose();
    },
    dispose: inputs.dispose,
  };
}

function attentionJob(s: AttentionShape, precision: Precision): TuneJob<AttentionVariant> {
  const inputs = lazyInputs([[1, s.Nq, s.H * s.dk], [1, s.Nk, s.H * s.dk], [1, s.Nk, s.H * s.dv]], precision);
  return {
    ...jobHead(s, precision),
    candidates: attentionCandidates(),
    flops: 2 * s.H * s.Nq * s.Nk * (s.dk + s.dv),
    run: (variant) => {
      const [q, k, v] = inputs.get() as [Tensor, Tensor, Tensor];
      attention(q, k, v, { numHeads: s.H, variant }).dispose();
    },
    dispose: inputs.dispose,
  };
}

/**
 * A GEMM is timed through a pointwise conv3d of the same M, N and K (x
 * [1, K, 1, 1, N], w [M, K, 1, 1, 1]): the GEMM core and its variants are
 * the same for every conv op; only the loaders' index arithmetic differs.
 * The conv ops take no variant argument, so the candidate is forced in the
 * profile for the call.
 */
function gemmJob(s: GemmShape, precision: Precision): TuneJob<GemmVariant> {
  const inputs = lazyInputs([[1, s.K, 1, 1, s.N], [s.M, s.K, 1, 1, 1]], precision);
  return {
    ...jobHead(s, precision),
    candidates: gemmCandidates(),
    flops: 2 * s.M * s.N * s.K,
    run: (gemm) => {
      const prev = setDeviceProfile({ force: { ...deviceProfile().force, gemm } });
      try {
        const [x, w] = inputs.get() as [Tensor, Tensor];
        conv3d(x, w).dispose();
      } finally {
        setDeviceProfile({ force: prev.force });
      }
    },
    dispose: inputs.dispose,
  };
}

/** The job timing `shape` at `precision` (its inputs are made when it first runs and freed by its dispose, which `tune` calls). */
export function tuneJob(shape: TuneShape, precision: Precision = "f32"): TuneJob {
  switch (shape.op) {
    case "matmul":
      return matmulJob(shape, precision) as TuneJob;
    case "attention":
      return attentionJob(shape, precision) as TuneJob;
    case "gemm":
      return gemmJob(shape, precision) as TuneJob;
  }
}

export interface TuneShapesOptions extends TuneOptions {
  /** The storage precision the shapes are timed at (default f32); f16 needs the shader-f16 feature. */
  precision?: Precision;
}

/** Tunes `shapes` at `opts.precision`: one job each, timed and freed in turn (see `tune`). */
export function tuneShapes(shapes: readonly TuneShape[], opts: TuneShapesOptions = {}): Promise<TuneResult[]> {
  const precision = opts.precision ?? "f32";
  checkF16("tune", precision);
  return tune(shapes.map((s) => tuneJob(s, precision)), opts);
}
