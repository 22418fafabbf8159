// Gradients of convTranspose3d, patchEmbed and resize3d (src/autograd/conv_ops.ts)
// against PyTorch float64 goldens (tools/fixtures/gen_grad_conv.py); inputs
// are re-created from the counter hash the generator used. Tolerance:
// max |err| ≤ 1e-4 · max |expected| (1e-3 where a gradient element sums ≥ 768 terms).
import { describe, expect, it } from "vitest";
import { convTranspose3dBackward, convTranspose3dWeightGrad } from "../../src/kernels/conv_transpose3d.js";
import { gemmSplits, gemmVariants } from "../../src/kernels/conv_gemm.js";
import { variantName } from "../../src/kernels/profile.js";
import { patchEmbedBackward } from "../../src/kernels/patch_embed.js";
import { resize3dBackward } from "../../src/kernels/resample.js";
import { backward, constant, param } from "../../src/autograd/autograd.js";
import { convTranspose3d } from "../../src/autograd/conv_ops.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { tested, testProfile, underForce } from "../helpers/variants.js";
import { checkCase, hashInput, tolerance } from "./conv_grad_common.js";

useGpu();
const cases = loadFixture("grad/conv");
const profile = await testProfile();

describe("conv / patch embedding / resize gradients vs PyTorch", () => {
  for (const c of cases) {
    // The convolutions' GEMMs run over every GEMM variant of this device (resize has none).
    const variants = c.params.op === "resize3d" ? [null] : tested(gemmVariants(profile));
    for (const gemm of variants) {
      it(gemm ? `${c.name} (gemm variant ${variantName(gemm)})` : c.name, () => underForce(gemm ? { gemm } : {}, async () => {
        const before = gpu().pool.stats().buffers;
        await checkCase(c);
        // Inputs, gradients, saved tensors and intermediates are all freed.
        expect(gpu().pool.stats().buffers).toBe(before);
      }));
    }
  }
});

describe("raw backward kernels", () => {
  const byName = (n: string) => cases.find((c) => c.name === n)!;

  it("convTranspose3dBackward returns dx, dw, dbias", async () => {
    const c = byName("convT_k2s2");
    const x = hashInput(c, "x"), w = hashInput(c, "w"), gy = hashInput(c, "gy");
    const { dx, dw, dbias } = convTranspose3dBackward(x, w, gy);
    for (const [k, t] of [["d_x", dx], ["d_w", dw], ["d_b", dbias]] as const) {
      expect(t.shape).toEqual(c.outputs[k]!.shape);
      expect(tolerance(c, k, await t.readFloat32()), k).toBe(true);
    }
    [x, w, gy, dx, dw, dbias].forEach((t) => t.dispose());
  });

  // A weight gradient sums over every voxel of the batch: a small output over
  // a long K, computed as partial sums over splits of K (conv_gemm.ts,
  // gemmSplits). Reference: float64 sums in TS. Shapes: 4096 input voxels,
  // so 4 splits; stride = kernel (the vector path) and stride < kernel (the
  // gather path).
  for (const [k, s] of [[2, 2], [3, 2]] as const) {
    it(`convTranspose3d weight gradient over 4096 voxels, kernel ${k} stride ${s}, matches float64`, async () => {
      const [B, Cin, Cout, D] = [1, 4, 3, 16];
      const Do = (D - 1) * s + k;
      const xs = Float32Array.from({ length: B * Cin * D ** 3 }, (_, i) => ((i * 37) % 29) / 14 - 1);
      const dys = Float32Array.from({ length: B * Cout * Do ** 3 }, (_, i) => ((i * 53) % 31) / 15 - 1);
      const dw = convTranspose3dWeightGrad(Tensor.from(xs, [B, Cin, D, D, D]), Tensor.from(dys, [B, Cout, Do, Do, Do]), [Cin, Cout, k, k, k], { stride: [s, s, s] });
      const ref = new Float64Array(Cin * Cout * k ** 3);
      for (let ci = 0; ci < Cin; ci++) for (let co = 0; co < Cout; co++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) for (let c = 0; c < k; c++) {
        let acc = 0;
        for (let z = 0; z < D; z++) for (let y = 0; y < D; y++) for (let x = 0; x < D; x++) {
          acc += xs[((ci * D + z) * D + y) * D + x]! * dys[((co * Do + z * s + a) * Do + y * s + b) * Do + x * s + c]!;
        }
        ref[(((ci * Cout + co) * k + a) * k + b) * k + c] = acc;
      }
      const got = await dw.readFloat32();
      const scale = Math.max(...ref.map(Math.abs));
      expect(Math.max(...got.map((v, i) => Math.abs(v - ref[i]!))) / scale).toBeLessThanOrEqual(1e-5);
      dw.dispose();
    });
  }

  it("splits K only for a small, bias-free output that the GEMM covers whole", () => {
    const out = Tensor.empty([24, 96]);
    expect(gemmSplits({ M: 24, N: 96, K: 16384 }, 1, false, out, 1)).toBe(8);
    expect(gemmSplits({ M: 24, N: 96, K: 2048 }, 3, false, out, 1)).toBe(2);
    expect(gemmSplits({ M: 24, N: 96, K: 16384 }, 64, false, out, 1)).toBe(1); // enough workgroups already
    expect(gemmSplits({ M: 24, N: 96, K: 16384 }, 1, true, out, 1)).toBe(1);
    expect(gemmSplits({ M: 24, N: 48, K: 16384 }, 1, false, out, 1)).toBe(1); // writes half of out
    expect(gemmSplits({ M: 24, N: 96, K: 16384 }, 1, false, out, 2)).toBe(1); // chunked output
    out.dispose();
  });

  it("patchEmbedBackward computes dx only when asked", async () => {
    const c = byName("patch_1x3x6x10x9_p3x5x3");
    const x = hashInput(c, "x"), w = hashInput(c, "w"), gy = hashInput(c, "gy");
    const p = c.params.patch as [number, number, number];
    const without = patchEmbedBackward(x, w, gy, p);
    expect(without.dx).toBeNull();
    expect(tolerance(c, "d_w", await without.dw.readFloat32())).toBe(true);
    expect(tolerance(c, "d_b", await without.dbias.readFloat32())).toBe(true);
    const all = patchEmbedBackward(x, w, gy, p, true);
    expect(tolerance(c, "d_x", await all.dx!.readFloat32())).toBe(true);
    [x, w, gy, without.dw, without.dbias, all.dw, all.dbias, all.dx!].forEach((t) => t.dispose());
  });

  it("resize3dBackward of an unchanged size copies dy", async () => {
    const data = Float32Array.from({ length: 60 }, (_, i) => i * 0.5 - 3);
    const dy = Tensor.from(data, [1, 1, 3, 4, 5]);
    for (const mode of ["trilinear", "nearest", "nearest-exact"] as const) {
      const dx = resize3dBackward(dy, [1, 1, 3, 4, 5], mode);
      expect(Array.from(await dx.readFloat32())).toEqual(Array.from(data));
      dx.dispose();
    }
    dy.dispose();
  });
});

describe("gradients flow only where asked", () => {
  for (const name of ["convT_k323_s212", "convT_k2s2_vec"]) {
    for (const frozen of ["x", "w"] as const) {
      it(`${name}: ${frozen} constant`, async () => {
        const c = cases.find((k) => k.name === name)!;
        const x = frozen === "x" ? constant(hashInput(c, "x")) : param(hashInput(c, "x"));
        const w = frozen === "w" ? constant(hashInput(c, "w")) : param(hashInput(c, "w"));
        const b = param(hashInput(c, "b"));
        const stride = c.params.stride as [number, number, number] | null;
        const y = convTranspose3d(x, w, b, stride ? { stride } : {});
        const gy = hashInput(c, "gy");
        backward(y, gy);
        const live = frozen === "x" ? ["w", w] as const : ["x", x] as const;
        expect((frozen === "x" ? x : w).grad).toBeNull();
        expect(tolerance(c, `d_${live[0]}`, await live[1].grad!.readFloat32())).toBe(true);
        expect(tolerance(c, "d_b", await b.grad!.readFloat32())).toBe(true);
        [x, w, b, y].forEach((v) => v.dispose());
        gy.dispose();
      });
    }
  }
});

describe("argument checks", () => {
  it("name the op and the shapes", () => {
    const x = Tensor.zeros([1, 3, 2, 2, 2]);
    const w = Tensor.zeros([3, 4, 2, 2, 2]);
    const dy = Tensor.zeros([1, 4, 4, 4, 5]);
    expect(() => convTranspose3dBackward(x, w, dy)).toThrow(/convTranspose3dBackward: dy must have the forward output shape \[1, 4, 4, 4, 4\].*dy \[1, 4, 4, 4, 5\]/);
    const w2 = Tensor.zeros([2, 4, 2, 2, 2]);
    expect(() => convTranspose3dBackward(x, w2, dy)).toThrow(/convTranspose3dBackward: weight has 2 input channels but x has 3/);
    const pw = Tensor.zeros([5, 24]);
    const pdy = Tensor.zeros([1, 2, 5]);
    expect(() => patchEmbedBackward(x, pw, pdy, [2, 2, 2])).toThrow(/patchEmbedBackward: dy must have the forward output shape \[1, 1, 5\]/);
    expect(() => resize3dBackward(dy, [1, 3, 2, 2, 2], "trilinear")).toThrow(/resize3dBackward\(trilinear\): input shape \[1,3,2,2,2\].*dy \[1, 4, 4, 4, 5\]/);
    expect(() => resize3dBackward(dy, [1, 4, 2, 2, 2], "nearest", true)).toThrow(/align_corners only applies to trilinear/);
    [x, w, dy, w2, pw, pdy].forEach((t) => t.dispose());
  });
});
