// The row kernels (LayerNorm, softmax) and the reductions, f32 and f16.
// Their speed is memory bandwidth: `bytes` counts what an op must move at
// least (each input read once, the output written once), so GB/s is the
// effective bandwidth (this machine's memory moves about 21 GB/s).
import { cast } from "../src/kernels/layout.js";
import { layerNorm } from "../src/kernels/layernorm.js";
import { reduce, type ReduceOp, type ReduceVariant } from "../src/kernels/reduce.js";
import { softmax, type SoftmaxVariant } from "../src/kernels/softmax.js";
import { BYTES_PER_ELEMENT, Tensor } from "../src/tensor/tensor.js";
import type { BenchCase } from "./harness.js";
import { filled } from "./inputs.js";

type Precision = "f32" | "f16";

/** A deterministic input at precision p. */
function input(shape: number[], seed: number, p: Precision): Tensor {
  const x = filled(shape, seed);
  if (p === "f32") return x;
  const h = cast(x, "f16");
  x.dispose();
  return h;
}

function layerNormCase(op: string, shape: number[], norm: number[], p: Precision, note = ""): BenchCase {
  return {
    op: `${op} ${p}`,
    precision: p,
    shape: `${shape.join("x")}${note}`,
    setup: () => {
      const [x, w, b] = [input(shape, 1, p), input(norm, 2, p), input(norm, 3, p)];
      const bytes = (2 * x.size + 2 * w.size) * BYTES_PER_ELEMENT[p];
      return { run: () => layerNorm(x, w, b).dispose(), bytes, dispose: () => (x.dispose(), w.dispose(), b.dispose()) };
    },
  };
}

/** The strided kernels' previous path, benched beside the columns kernel: one output (row) an invocation or subgroup. */
const ROW_PATH = { cols: 1 } as const;

function softmaxCase(shape: number[], axis: number, p: Precision, note: string, variant?: Partial<SoftmaxVariant>): BenchCase {
  return {
    op: `softmax ${p}`,
    precision: p,
    shape: `${shape.join("x")} ${note}`,
    setup: () => {
      const x = input(shape, 4, p);
      return { run: () => softmax(x, axis, variant).dispose(), bytes: 2 * x.size * BYTES_PER_ELEMENT[p], dispose: () => x.dispose() };
    },
  };
}

function reduceCase(op: ReduceOp, shape: number[], axis: number | undefined, p: Precision, note: string, variant?: Partial<ReduceVariant>): BenchCase {
  return {
    op: `${op} ${p}`,
    precision: p,
    shape: `${shape.join("x")} ${note}`,
    setup: () => {
      const x = input(shape, 5, p);
      const outSize = axis === undefined ? 1 : x.size / shape.at(axis)!;
      const bytes = (x.size + outSize) * BYTES_PER_ELEMENT[p];
      return { run: () => reduce(op, x, axis, false, variant).dispose(), bytes, dispose: () => x.dispose() };
    },
  };
}

export const cases: BenchCase[] = (["f32", "f16"] as const).flatMap((p) => [
  // The ViT / decoder row norm (tfjs-webgpu: 44.3 ms on this machine).
  layerNormCase("layernorm", [2048, 768], [768], p),
  // SegVol's output_upscaling.1: one mean/var over a whole 3.1M block.
  layerNormCase("layernorm_block", [1, 192, 16, 32, 32], [192, 16, 32, 32], p, " over 192x16x32x32"),
  softmaxCase([4096, 2048], -1, p, "(rows of 2048)"),
  // Attention's scores are contiguous rows; a strided axis is the other layout.
  softmaxCase([64, 2048, 32], 1, p, "(axis 1: rows of 2048, stride 32)"),
  softmaxCase([64, 2048, 32], 1, p, "(axis 1, cols=1: the row kernel)", ROW_PATH),
  reduceCase("sum", [2048, 3072], undefined, p, "(all)"),
  reduceCase("sum", [2048, 3072], -1, p, "(rows of 3072)"),
  reduceCase("mean", [2048, 3072], 0, p, "(columns of 2048)"),
  reduceCase("mean", [2048, 3072], 0, p, "(columns of 2048, cols=1: one an invocation)", ROW_PATH),
  reduceCase("max", [2048, 3072], -1, p, "(rows of 3072)"),
]);
