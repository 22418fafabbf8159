// patchEmbed against PyTorch goldens (tools/fixtures/gen_conv.py builds the
// patch vectors with the explicit rearrange b c (d p1) (h p2) (w p3) -> b (d h w) (p1 p2 p3 c)).
// Tolerance: max |err| ≤ 1e-3 · max |expected| at K = p1·p2·p3·C ≥ 768, 1e-4 below.
import { describe, expect, it } from "vitest";
import { patchEmbed } from "../../src/kernels/patch_embed.js";
import { gemmVariants } from "../../src/kernels/conv_gemm.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError, type FixtureArray } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile, underForce } from "../helpers/variants.js";

useGpu();
const profile = await testProfile();
const cases = loadFixture("kernels/conv").filter((c) => c.name.startsWith("patch_embed_"));
const up = (a: FixtureArray) => Tensor.from(a.data as Float32Array, a.shape);

describe("patchEmbed vs PyTorch", () => {
  it("has its golden cases", () => expect(cases.length).toBeGreaterThanOrEqual(3));
  // Every case over every GEMM variant this device runs (forced through the profile).
  forEachVariant(gemmVariants(profile), (gemm) => {
    for (const c of cases) {
      it(c.name, () => underForce({ gemm }, async () => {
        const w = up(c.inputs.w!);
        const y = patchEmbed(up(c.inputs.x!), w, up(c.inputs.bias!), c.params.patch as [number, number, number]);
        expect(y.shape).toEqual(c.outputs.y!.shape);
        const tol = w.shape[1]! >= 768 ? 1e-3 : 1e-4;
        expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(tol);
      }));
    }
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
});
