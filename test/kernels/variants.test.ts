// Device profiles and variant choice: which variant each kernel takes at
// every subgroup size a device may report (4 to 128 lanes, fixed or a
// range, or no subgroups), checked on profiles built by hand; and the
// errors for a forced variant the test device cannot run.
import { describe, expect, it } from "vitest";
import { attention, chooseAttentionVariant } from "../../src/kernels/attention.js";
import { chooseGemmVariant } from "../../src/kernels/conv_gemm.js";
import { layerNorm } from "../../src/kernels/layernorm.js";
import { chooseMatmulVariant, chooseShare, matmul } from "../../src/kernels/matmul.js";
import { chooseRowVariant, rowVariants, variantName, type DeviceProfile } from "../../src/kernels/profile.js";
import { softmax } from "../../src/kernels/softmax.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";

useGpu();
const device = await testProfile();

function profile(subgroups: DeviceProfile["subgroups"]): DeviceProfile {
  return { ...device, subgroups, force: {} };
}

describe("variant choice at every subgroup size", () => {
  it("row kernels: one subgroup per row at any fixed size, one row a workgroup where sizes vary, portable without", () => {
    for (const lanes of [4, 8, 16, 32, 64, 128]) {
      expect(chooseRowVariant(profile({ min: lanes, max: lanes }))).toEqual({ lanes, rows: Math.max(1, 64 / lanes) });
    }
    expect(chooseRowVariant(profile({ min: 8, max: 32 }))).toEqual({ lanes: 8, rows: 1 });
    expect(chooseRowVariant(profile({ min: 32, max: 64 }))).toEqual({ lanes: 32, rows: 1 });
    expect(chooseRowVariant(profile(null))).toEqual({ lanes: 0, rows: 1 });
    expect(chooseRowVariant(profile({ min: 1, max: 1 }))).toEqual({ lanes: 0, rows: 1 });
    expect(rowVariants(profile({ min: 8, max: 8 })).map(variantName)).toEqual(["lanes=0 rows=1", "lanes=4 rows=1", "lanes=8 rows=1", "lanes=8 rows=8"]);
  });

  it("matmul, the conv GEMM and attention share loads over as many lanes as every subgroup has (at most 8 for the GEMMs)", () => {
    const cases: [DeviceProfile["subgroups"], number, number][] = [
      [null, 0, 0], [{ min: 4, max: 4 }, 4, 4], [{ min: 8, max: 8 }, 8, 8], [{ min: 16, max: 16 }, 8, 16],
      [{ min: 32, max: 32 }, 8, 32], [{ min: 64, max: 64 }, 8, 64], [{ min: 128, max: 128 }, 8, 128], [{ min: 8, max: 32 }, 8, 8],
    ];
    for (const [sizes, share, lanes] of cases) {
      const p = profile(sizes);
      expect(chooseShare(p)).toBe(share);
      expect(chooseGemmVariant(p)).toEqual(share ? { subgroups: true, tmq: share } : { subgroups: false, tmq: 4 });
      expect(chooseAttentionVariant(p)).toEqual({ lanes });
      const m = chooseMatmulVariant(2048, 768, 768, {}, p);
      expect(m.R % Math.max(1, share)).toBe(0);
      expect(m.WG % Math.max(1, share)).toBe(0);
    }
  });

  it("a profile's forced variants win over the choice, the call's over the profile's", () => {
    const p: DeviceProfile = { ...profile({ min: 8, max: 8 }), force: { matmul: { share: 0, R: 8 }, gemm: { subgroups: false, tmq: 4 }, attention: { lanes: 4 } } };
    expect(chooseMatmulVariant(64, 64, 64, {}, p)).toMatchObject({ share: 0, R: 8 });
    expect(chooseMatmulVariant(64, 64, 64, { R: 16 }, p)).toMatchObject({ share: 0, R: 16 });
    expect(chooseGemmVariant(p)).toEqual({ subgroups: false, tmq: 4 });
    expect(chooseAttentionVariant(p)).toEqual({ lanes: 4 });
  });
});

describe("a forced variant the device cannot run is refused, naming it", () => {
  const wider = 2 * (device.subgroups?.min ?? 4);
  it("row kernels, attention and matmul", () => {
    const x = Tensor.zeros([2, 8]);
    expect(() => softmax(x, -1, { lanes: wider, rows: 1 })).toThrow(new RegExp(`softmax: variant lanes=${wider} rows=1 does not run on this device`));
    expect(() => layerNorm(x, Tensor.zeros([8]), Tensor.zeros([8]), 1e-5, { lanes: wider, rows: 2 })).toThrow(/layerNorm: variant lanes=\d+ rows=2 does not run/);
    expect(() => attention(Tensor.zeros([1, 2, 8]), Tensor.zeros([1, 2, 8]), Tensor.zeros([1, 2, 8]), { numHeads: 1, variant: { lanes: wider } })).toThrow(
      new RegExp(`attention: variant lanes=${wider} does not run on this device`),
    );
    expect(() => matmul(x, Tensor.zeros([8, 3]), { variant: { share: wider } })).toThrow(new RegExp(`matmul: variant share=${wider}: share ${wider} must be 0 or a power of two`));
    expect(() => matmul(x, Tensor.zeros([8, 3]), { variant: { share: 0, WG: 0 } })).toThrow(/matmul: variant WG=0 share=0: WG 0 must be/);
  });
});
