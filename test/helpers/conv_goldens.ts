// The convolution goldens' loop (conv3d, convTranspose3d, patchEmbed): each
// case over every GEMM variant the device runs (forced through the profile)
// and in each precision, its inputs uploaded in that precision.
import { describe, it } from "vitest";
import { gemmVariants } from "../../src/kernels/conv_gemm.js";
import type { DeviceProfile } from "../../src/kernels/profile.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { fixtureTensor, PRECISIONS, skipWithoutF16, type TestPrecision } from "./f16.js";
import type { FixtureCase } from "./fixtures.js";
import { forEachVariant, underForce } from "./variants.js";

/** The inputs x, w and bias (undefined where the case has none) of a case, in its precision. */
export interface ConvInputs {
  x: Tensor;
  w: Tensor;
  bias: Tensor | undefined;
}

/** One test per (variant, precision, case); `check` runs the op on the inputs and compares. */
export function forEachConvGolden(profile: DeviceProfile, cases: readonly FixtureCase[], check: (c: FixtureCase, dtype: TestPrecision, t: ConvInputs) => Promise<void>): void {
  forEachVariant(gemmVariants(profile), (gemm) => {
    for (const dtype of PRECISIONS) describe(dtype, () => {
      for (const c of cases) {
        it(c.name, (ctx) => underForce({ gemm }, async () => {
          skipWithoutF16(ctx, dtype);
          const bias = c.inputs.bias ? fixtureTensor(c.inputs.bias, dtype) : undefined;
          await check(c, dtype, { x: fixtureTensor(c.inputs.x!, dtype), w: fixtureTensor(c.inputs.w!, dtype), bias });
        }));
      }
    });
  });
}
