// Deterministic benchmark inputs shared by the bench files.
import { cast } from "../src/kernels/layout.js";
import type { Precision } from "../src/kernels/precision.js";
import { Tensor } from "../src/tensor/tensor.js";

/** Values in [-1, 1) from an LCG seeded by `seed` (zeros could hide denormal or NaN slow paths), stored in `dtype`. */
export function filled(shape: number[], seed: number, dtype: Precision = "f32"): Tensor {
  const n = shape.reduce((x, y) => x * y, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  const x = Tensor.from(data, shape);
  if (dtype === "f32") return x;
  const h = cast(x, dtype);
  x.dispose();
  return h;
}
