// The larger conv_grad goldens again with storage bindings limited to 64 KiB:
// dy and x read through several segments, gradients and intermediate resize
// passes written in chunks; and the GEMM variant that adapters without
// `subgroups` run. Same goldens and tolerances as conv_grad.test.ts.
import { afterEach, describe, expect, it } from "vitest";
import { setDeviceProfile } from "../../src/kernels/profile.js";
import { resize3dBackward } from "../../src/kernels/resample.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor, numel } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { testProfile } from "../helpers/variants.js";
import { refAxis, type RefMode } from "../kernels/reference.js";
import { checkCase } from "./conv_grad_common.js";

useGpu({ maxBindingBytes: 1 << 16 });
const profile = await testProfile({ maxBindingBytes: 1 << 16 });
afterEach(() => void setDeviceProfile(profile));

const cases = loadFixture("grad/conv");
const big = ["convT_k2s2_big", "patch_1x2x8x48x32_p4x16x16", "trilinear_x4_a0", "trilinear_x4_a1"];

describe("gradients with 64 KiB bindings", () => {
  for (const name of big) {
    it(name, async () => {
      const c = cases.find((k) => k.name === name)!;
      // The case really spans several bindings (dy of the convolution, x of the patch embedding, dy of the resize).
      const sizes = Object.values(c.params.inputs as Record<string, number[]>).map((s) => 4 * s.reduce((a, b) => a * b, 1));
      expect(Math.max(...sizes)).toBeGreaterThan(gpu().maxBindingBytes);
      const before = gpu().pool.stats().buffers;
      await checkCase(c);
      expect(gpu().pool.stats().buffers).toBe(before);
    });
  }
});

describe("gradients on the subgroup-free GEMM", () => {
  for (const name of ["convT_k2s2_big", "patch_1x2x8x48x32_p4x16x16"]) {
    it(name, async () => {
      setDeviceProfile({ force: { gemm: { subgroups: false, tmq: 4 } } });
      await checkCase(cases.find((k) => k.name === name)!);
    });
  }
});

/** Plain-TS adjoint of the reference resize: each output scatters dy · w_D · w_H · w_W into its ≤ 8 sources (float64). */
function refResizeBackward(dy: Float32Array, planes: number, inDims: readonly number[], outDims: readonly number[], mode: RefMode, align: boolean): Float64Array {
  const [D, H, W] = inDims as [number, number, number];
  const [OD, OH, OW] = outDims as [number, number, number];
  const dx = new Float64Array(planes * D * H * W);
  const taps = (o: number, n: number, on: number): [number, number][] => {
    const [i0, i1, l] = refAxis(o, n, on, mode, align);
    return [[i0, 1 - l], [i1, l]];
  };
  let e = 0;
  for (let p = 0; p < planes; p++)
    for (let d = 0; d < OD; d++)
      for (let h = 0; h < OH; h++)
        for (let w = 0; w < OW; w++, e++) {
          for (const [i, wi] of taps(d, D, OD))
            for (const [j, wj] of taps(h, H, OH))
              for (const [k, wk] of taps(w, W, OW)) dx[((p * D + i) * H + j) * W + k] += dy[e]! * wi * wj * wk;
        }
  return dx;
}

describe("resize3dBackward with 64 KiB bindings vs a plain-TS adjoint", () => {
  const shapes: [number[], number[]][] = [
    [[2, 1, 20, 30, 40], [7, 9, 11]], // large dx: written in chunks
    [[6, 8, 10], [20, 40, 24]], // large dy: read through segments
    [[1, 1, 40, 40, 48], [20, 20, 48]], // D and H passes of four neighbouring lines (vec4), dx written in chunks that split lines
  ];
  for (const [xShape, size] of shapes) {
    for (const [mode, align] of [["trilinear", false], ["trilinear", true], ["nearest", false], ["nearest-exact", false]] as const) {
      it(`${JSON.stringify(xShape)} <- ${JSON.stringify(size)} ${mode}${align ? " align_corners" : ""}`, async () => {
        const lead = xShape.slice(0, -3);
        const dyShape = [...lead, ...size];
        const planes = numel(lead);
        const data = Float32Array.from({ length: numel(dyShape) }, (_, i) => Math.sin(i * 0.7) + 0.25 * Math.cos(i * 0.13));
        const dy = Tensor.from(data, dyShape);
        const dx = resize3dBackward(dy, xShape, mode, align);
        expect(Math.max(dy.byteLength, dx.byteLength)).toBeGreaterThan(gpu().maxBindingBytes);
        expect(dx.shape).toEqual(xShape);
        const ref = refResizeBackward(data, planes, xShape.slice(-3), size, mode, align);
        expect(relError(await dx.readFloat32(), ref)).toBeLessThanOrEqual(1e-4);
        dy.dispose();
        dx.dispose();
      });
    }
  }
});
