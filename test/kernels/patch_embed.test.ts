// patchEmbed against PyTorch goldens (tools/fixtures/gen_conv.py builds the
// patch vectors with the explicit rearrange b c (d p1) (h p2) (w p3) -> b (d h w) (p1 p2 p3 c)).
// Tolerance: max |err| ≤ 1e-3 · max |expected| at K = p1·p2·p3·C ≥ 768, 1e-4 below;
// in f16 (inputs cast to f16, output read back as f32) f16Tolerance(K) (test/helpers/f16.ts).
import { describe, expect, it } from "vitest";
import { patchEmbed, patchEmbedWeightGrad } from "../../src/kernels/patch_embed.js";
import { cast } from "../../src/kernels/layout.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { forEachConvGolden } from "../helpers/conv_goldens.js";
import { f16Tolerance, readAs } from "../helpers/f16.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/conv").filter((c) => c.name.startsWith("patch_embed_"));

describe("patchEmbed vs PyTorch", () => {
  it("has its golden cases", () => expect(cases.length).toBeGreaterThanOrEqual(3));
  // Every case over every GEMM variant this device runs, in f32 and f16.
  forEachConvGolden(profile, cases, async (c, dtype, { x, w, bias }) => {
    const y = patchEmbed(x, w, bias!, c.params.patch as [number, number, number]);
    expect(y.shape).toEqual(c.outputs.y!.shape);
    const K = w.shape[1]!;
    const tol = dtype === "f16" ? f16Tolerance(K, c.inputs.x!.data, c.inputs.w!.data, c.outputs.y!.data, c.inputs.bias!.data) : K >= 768 ? 1e-3 : 1e-4;
    expect(relError(await readAs(y, dtype), c.outputs.y!.data)).toBeLessThanOrEqual(tol);
  });

  it("rejects non-divisible volumes, a wrong patch length, a bad bias and a wrong rank", () => {
    const x = Tensor.zeros([1, 2, 4, 6, 10]);
    const w = Tensor.zeros([7, 60]);
    const b = Tensor.zeros([7]);
    expect(() => patchEmbed(x, w, b, [3, 2, 5])).toThrow(/patchEmbed: volume \[4, 6, 10\] of x \[1, 2, 4, 6, 10\] is not divisible into patches \[3, 2, 5\]/);
    expect(() => patchEmbed(x, w, b, [2, 3, 2])).toThrow(/patchEmbed: weight \[7, 60\] needs 2·3·2·2 = 24 inputs per patch of x \[1, 2, 4, 6, 10\], got 60/);
    expect(() => patchEmbed(x, w, Tensor.zeros([6]), [2, 3, 5])).toThrow(/patchEmbed: bias must have shape \[7\].*got \[6\]/);
    expect(() => patchEmbed(Tensor.zeros([2, 4, 6, 10]), w, b, [2, 3, 5])).toThrow(/patchEmbed: input x .* must have rank 5, got \[2, 4, 6, 10\]/);
    expect(() => patchEmbed(x, Tensor.zeros([7, 60, 1]), b, [2, 3, 5])).toThrow(/patchEmbed: weight w .* must have rank 2, got \[7, 60, 1\]/);
  });

  it.skipIf(!profile.f16)("computes gradients in f32 only: the backward refuses f16 tensors", () => {
    const x = Tensor.zeros([1, 2, 4, 6, 10]);
    const dy = cast(Tensor.zeros([1, 2, 7]), "f16");
    expect(() => patchEmbedWeightGrad(x, dy, [2, 3, 5])).toThrow(/patchEmbedBackward\(dw\): gradients are computed in f32 only, got an f16 tensor \[1, 2, 7\]: cast to f32 first/);
  });
});
