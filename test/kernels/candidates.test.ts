// The candidates the tuner times (matmulCandidates, attentionCandidates,
// gemmCandidates) and the choosers' tuned-table hook. On hand-built
// profiles at every subgroup size: each list starts with the heuristic's
// choice, holds only variants the device runs, and repeats none; a tuned
// entry is taken for its bucket only, and a forced variant wins over it.
// On the test device: every matmul candidate against the PyTorch goldens
// (the attention and GEMM candidates are their ops' variant lists, whose
// goldens run every entry: attention.test.ts, conv3d.test.ts …), and on a
// big output (the 32-row tiles) against a float64 product computed here,
// in f32 and in f16 (attention.test.ts and conv3d.test.ts run every variant in f16 too). A
// winner is keyed by precision: an f32 winner never serves an f16 call of
// the same shape, nor the reverse (the choosers, and the pipelines the ops
// dispatch).
// Tolerance: max |err| ≤ 1e-4 · max |expected| (1e-3 for K ≥ 768), as matmul.test.ts.
import { describe, expect, it } from "vitest";
import type { Activation } from "../../src/kernels/activation.js";
import { attention, attentionCandidates, attentionVariants, chooseAttentionVariant } from "../../src/kernels/attention.js";
import { chooseGemmVariant, gemmCandidates, gemmVariants } from "../../src/kernels/conv_gemm.js";
import { chooseMatmulVariant, matmul, matmulCandidates, type MatmulChoice } from "../../src/kernels/matmul.js";
import { conv3d } from "../../src/kernels/conv3d.js";
import { setDeviceProfile, sizeBucket, tunedKey, variantName, type DeviceProfile } from "../../src/kernels/profile.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { F16_UNIT, boundRatio, f16From, maxAbs, readAs, roundF16All } from "../helpers/f16.js";
import { loadFixture, relError, type FixtureCase } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { rnd } from "../helpers/random.js";
import { testProfile, tested } from "../helpers/variants.js";

useGpu();
const device = await testProfile();

const SIZES: DeviceProfile["subgroups"][] = [null, { min: 4, max: 4 }, { min: 8, max: 8 }, { min: 16, max: 16 }, { min: 32, max: 32 }, { min: 64, max: 64 }, { min: 8, max: 32 }];
const profile = (subgroups: DeviceProfile["subgroups"], tuned: DeviceProfile["tuned"] = {}): DeviceProfile => ({ ...device, subgroups, force: {}, tuned });
const names = (vs: object[]) => vs.map(variantName);
const SHAPES: [number, number, number][] = [[1, 1, 1], [7, 13, 5], [2048, 2304, 768], [8, 768, 2048], [300, 9, 3], [16384, 96, 12]];

describe("candidate lists", () => {
  it("matmul: the heuristic's choice first, each a variant the device runs, none twice", () => {
    for (const sizes of SIZES) {
      const p = profile(sizes);
      for (const [M, N, K] of SHAPES) {
        const c = matmulCandidates(M, N, K, p);
        expect(c[0]).toEqual(chooseMatmulVariant(M, N, K, {}, p));
        expect(new Set(names(c)).size).toBe(c.length);
        expect(c.length).toBeGreaterThan(1);
        // Fixing every knob runs the chooser's checks: they throw for a variant the device cannot run.
        for (const v of c) expect(chooseMatmulVariant(M, N, K, v, p)).toEqual(v);
        if (!sizes) expect(c.every((v) => v.share === 0)).toBe(true);
      }
    }
  });

  it("attention and the GEMM: the heuristic's choice first, then the rest of the device's variants", () => {
    for (const sizes of SIZES) {
      const p = profile(sizes);
      const a = attentionCandidates(p);
      expect(a[0]).toEqual(chooseAttentionVariant(p));
      expect(names(a).sort()).toEqual(names(attentionVariants(p)).sort());
      const g = gemmCandidates(p);
      expect(g[0]).toEqual(chooseGemmVariant(p));
      expect(names(g).sort()).toEqual(names(gemmVariants(p)).sort());
    }
  });

  it("a profile's tuned or forced variants do not change the candidates", () => {
    const p = profile({ min: 8, max: 8 });
    const tuned = profile({ min: 8, max: 8 }, { [tunedKey("attention", [64, 64, 64, 64], "f32")]: { lanes: 0 }, [tunedKey("gemm", [64, 64, 64], "f32")]: { subgroups: false, tmq: 4 } });
    expect(attentionCandidates({ ...tuned, force: { attention: { lanes: 4 } } })).toEqual(attentionCandidates(p));
    expect(gemmCandidates({ ...tuned, force: { gemm: { subgroups: true, tmq: 4 } } })).toEqual(gemmCandidates(p));
  });
});

describe("the choosers' tuned table", () => {
  const p8 = profile({ min: 8, max: 8 });
  const mm: MatmulChoice = { share: 4, R: 8, C: 1, WG: 8, swap: true };

  it("buckets sizes by the next power of two", () => {
    expect([0, 1, 2, 3, 4, 5, 768, 1024, 1025, 2304].map(sizeBucket)).toEqual([1, 1, 2, 4, 4, 8, 1024, 1024, 2048, 4096]);
    expect(tunedKey("matmul", [2048, 2304, 768], "f32")).toBe("matmul:f32:2048x4096x1024");
  });

  it("takes the tuned variant for every shape of its bucket, the heuristic for others", () => {
    const p = { ...p8, tuned: { [tunedKey("matmul", [2048, 2304, 768], "f32")]: mm } };
    expect(chooseMatmulVariant(2048, 2304, 768, {}, p)).toEqual(mm);
    expect(chooseMatmulVariant(1025, 4096, 513, {}, p)).toEqual(mm);
    expect(chooseMatmulVariant(2048, 2304, 1025, {}, p)).toEqual(chooseMatmulVariant(2048, 2304, 1025, {}, p8));
    const a = { ...p8, tuned: { [tunedKey("attention", [2048, 2048, 64, 64], "f32")]: { lanes: 4 } } };
    expect(chooseAttentionVariant(a, { Nq: 2000, Nk: 1500, dk: 64, dv: 64 })).toEqual({ lanes: 4 });
    expect(chooseAttentionVariant(a, { Nq: 2000, Nk: 1500, dk: 32, dv: 32 })).toEqual(chooseAttentionVariant(p8));
    expect(chooseAttentionVariant(a)).toEqual(chooseAttentionVariant(p8));
    const g = { ...p8, tuned: { [tunedKey("gemm", [1536, 2048, 768], "f32")]: { subgroups: false, tmq: 4 } } };
    expect(chooseGemmVariant(g, { M: 1536, N: 2048, K: 768 })).toEqual({ subgroups: false, tmq: 4 });
    expect(chooseGemmVariant(g, { M: 768, N: 2048, K: 768 })).toEqual(chooseGemmVariant(p8));
  });

  it("keys winners by precision: an f32 winner serves f32 calls only, an f16 winner f16 calls only", () => {
    const mm16: MatmulChoice = { share: 0, R: 16, C: 2, WG: 16, swap: false };
    const p = { ...p8, tuned: { [tunedKey("matmul", [64, 64, 64], "f32")]: mm, [tunedKey("matmul", [512, 64, 64], "f16")]: mm16 } };
    expect(chooseMatmulVariant(64, 64, 64, {}, p, "f32")).toEqual(mm);
    expect(chooseMatmulVariant(64, 64, 64, {}, p, "f16")).toEqual(chooseMatmulVariant(64, 64, 64, {}, p8, "f16"));
    expect(chooseMatmulVariant(512, 64, 64, {}, p, "f16")).toEqual(mm16);
    expect(chooseMatmulVariant(512, 64, 64, {}, p, "f32")).toEqual(chooseMatmulVariant(512, 64, 64, {}, p8, "f32"));
    const dims = { Nq: 64, Nk: 64, dk: 64, dv: 64 };
    const a = { ...p8, tuned: { [tunedKey("attention", [64, 64, 64, 64], "f16")]: { lanes: 4 } } };
    expect(chooseAttentionVariant(a, dims, "f16")).toEqual({ lanes: 4 });
    expect(chooseAttentionVariant(a, dims, "f32")).toEqual(chooseAttentionVariant(p8));
    const g = { ...p8, tuned: { [tunedKey("gemm", [64, 64, 64], "f32")]: { subgroups: false, tmq: 4 } } };
    expect(chooseGemmVariant(g, { M: 64, N: 64, K: 64 }, "f32")).toEqual({ subgroups: false, tmq: 4 });
    expect(chooseGemmVariant(g, { M: 64, N: 64, K: 64 }, "f16")).toEqual(chooseGemmVariant(p8));
    expect(tunedKey("matmul", [64, 64, 64], "f16")).toBe("matmul:f16:64x64x64");
  });

  it("a forced variant (the profile's or the call's) wins over the tuned one", () => {
    const key = tunedKey("matmul", [64, 64, 64], "f32");
    const p = { ...p8, tuned: { [key]: mm } };
    expect(chooseMatmulVariant(64, 64, 64, { R: 16 }, p).R).toBe(16);
    expect(chooseMatmulVariant(64, 64, 64, {}, { ...p, force: { matmul: { share: 0 } } }).share).toBe(0);
    const a = { ...p8, tuned: { [tunedKey("attention", [64, 64, 64, 64], "f32")]: { lanes: 0 } }, force: { attention: { lanes: 4 } } };
    expect(chooseAttentionVariant(a, { Nq: 64, Nk: 64, dk: 64, dv: 64 })).toEqual({ lanes: 4 });
    const g = { ...p8, tuned: { [tunedKey("gemm", [64, 64, 64], "f32")]: { subgroups: false, tmq: 4 } }, force: { gemm: { subgroups: true, tmq: 4 } } };
    expect(chooseGemmVariant(g, { M: 64, N: 64, K: 64 })).toEqual({ subgroups: true, tmq: 4 });
  });
});

describe("the ops dispatch their bucket's tuned variant", () => {
  // The pipelines a kernel profile saw are keyed by the variant's JSON (variantPipeline).
  it.runIf(device.timestamps)("matmul, attention and the conv GEMM", async () => {
    const mm = matmulCandidates(40, 50, 24, device).at(-1)!;
    const att = attentionCandidates(device).at(-1)!;
    const gemm = gemmCandidates(device).at(-1)!;
    expect(mm).not.toEqual(chooseMatmulVariant(40, 50, 24, {}, device));
    expect(att).not.toEqual(chooseAttentionVariant(device));
    expect(gemm).not.toEqual(chooseGemmVariant(device));
    const prev = setDeviceProfile({
      tuned: { [tunedKey("matmul", [40, 50, 24], "f32")]: mm, [tunedKey("attention", [16, 16, 8, 8], "f32")]: att, [tunedKey("gemm", [6, 64, 3], "f32")]: gemm },
    });
    const g = gpu();
    const [a, b, q, x, w] = [[40, 24], [24, 50], [1, 16, 16], [1, 3, 4, 4, 4], [6, 3, 1, 1, 1]].map((shape) => Tensor.zeros(shape)) as Tensor[];
    try {
      g.startKernelProfile();
      matmul(a!, b!).dispose();
      attention(q!, q!, q!, { numHeads: 2 }).dispose();
      conv3d(x!, w!).dispose();
    } finally {
      setDeviceProfile(prev);
      for (const t of [a, b, q, x, w]) t!.dispose();
    }
    const keys = (await g.stopKernelProfile()).map((t) => t.kernel);
    const fields = (v: object) => JSON.stringify(v).slice(1, -1);
    expect(keys.find((k) => k.startsWith("matmul:")), keys.join("\n")).toContain(fields(mm));
    expect(keys.find((k) => k.startsWith("attention:")), keys.join("\n")).toContain(`"lanes":${att.lanes}}`);
    expect(keys.find((k) => k.startsWith("gemm:")), keys.join("\n")).toContain(fields(gemm));
  });
});

describe("f32 and f16 calls of one shape dispatch their own precision's tuned variant", () => {
  it.runIf(device.timestamps && device.f16)("matmul, attention and the conv GEMM", async () => {
    const [mm32, mm16] = [matmulCandidates(40, 50, 24, device).at(-1)!, matmulCandidates(40, 50, 24, device).at(-2)!];
    const atts = attentionCandidates(device);
    expect(mm32).not.toEqual(mm16);
    const [att32, att16] = [atts.at(-1)!, atts.length > 1 ? atts.at(-2)! : atts[0]!];
    const gemms = gemmCandidates(device);
    const [gemm32, gemm16] = [gemms.at(-1)!, gemms.length > 1 ? gemms.at(-2)! : gemms[0]!];
    const prev = setDeviceProfile({
      tuned: {
        [tunedKey("matmul", [40, 50, 24], "f32")]: mm32,
        [tunedKey("matmul", [40, 50, 24], "f16")]: mm16,
        [tunedKey("attention", [16, 16, 8, 8], "f32")]: att32,
        [tunedKey("attention", [16, 16, 8, 8], "f16")]: att16,
        [tunedKey("gemm", [6, 64, 3], "f32")]: gemm32,
        [tunedKey("gemm", [6, 64, 3], "f16")]: gemm16,
      },
    });
    const g = gpu();
    const shapes = [[40, 24], [24, 50], [1, 16, 16], [1, 3, 4, 4, 4], [6, 3, 1, 1, 1]];
    const tensors = (["f32", "f16"] as const).flatMap((dtype) => shapes.map((shape) => Tensor.zeros(shape, dtype)));
    try {
      g.startKernelProfile();
      for (const [a, b, q, x, w] of [tensors.slice(0, 5), tensors.slice(5)] as Tensor[][]) {
        matmul(a!, b!).dispose();
        attention(q!, q!, q!, { numHeads: 2 }).dispose();
        conv3d(x!, w!).dispose();
      }
    } finally {
      setDeviceProfile(prev);
      for (const t of tensors) t.dispose();
    }
    const keys = (await g.stopKernelProfile()).map((t) => t.kernel);
    const key = (prefix: string) => keys.find((k) => k.startsWith(prefix)) ?? `none of:\n${keys.join("\n")}`;
    const fields = (v: object) => JSON.stringify(v).slice(1, -1);
    expect(key('matmul:{"precision":"f32"')).toContain(fields(mm32));
    expect(key('matmul:{"precision":"f16"')).toContain(fields(mm16));
    expect(key('attention:{"precision":"f32"')).toContain(`"lanes":${att32.lanes}}`);
    expect(key('attention:{"precision":"f16"')).toContain(`"lanes":${att16.lanes}}`);
    const gemmKey = (dtype: string) => keys.find((k) => k.startsWith("gemm:") && k.includes(`"dtype":"${dtype}"`)) ?? `none of:\n${keys.join("\n")}`;
    expect(gemmKey("f32")).toContain(fields(gemm32));
    expect(gemmKey("f16")).toContain(fields(gemm16));
  });
});

/** M, N, K of a golden case, read off its operands' shapes as matmul does. */
function dims(c: FixtureCase): [number, number, number] {
  const [ar, ac] = c.inputs.a!.shape.slice(-2) as [number, number];
  const [br, bc] = c.inputs.b!.shape.slice(-2) as [number, number];
  return [c.params.transA ? ac : ar, c.params.transB ? br : bc, c.params.transA ? ar : ac];
}

/** Cases that between them take both transposes, a K tail and K % 4 = 0, a batch, K ≥ 768 and an epilogue. */
const PICKED = ["7x13x5", "7x13x5_transA_transB", "33x20x70_K4_transB", "37x768x13_linear", "batch_heads_transB", "19x24x21_bias_gelu"];
const cases = loadFixture("kernels/matmul").filter((c) => PICKED.includes(c.name));

describe("every matmul candidate vs PyTorch", () => {
  it("has the picked cases", () => expect(cases.map((c) => c.name).sort()).toEqual([...PICKED].sort()));
  for (const c of cases) {
    it(c.name, { timeout: 600_000 }, async () => {
      const a = Tensor.from(c.inputs.a!.data as Float32Array, c.inputs.a!.shape);
      const b = Tensor.from(c.inputs.b!.data as Float32Array, c.inputs.b!.shape);
      const bias = c.inputs.bias ? Tensor.from(c.inputs.bias.data as Float32Array, c.inputs.bias.shape) : undefined;
      const [M, N, K] = dims(c);
      for (const variant of tested(matmulCandidates(M, N, K, device))) {
        const y = matmul(a, b, { transA: c.params.transA as boolean, transB: c.params.transB as boolean, bias, act: c.params.act as Activation, variant });
        const err = relError(await y.readFloat32(), c.outputs.y!.data);
        expect(err, variantName(variant)).toBeLessThanOrEqual(K >= 768 ? 1e-3 : 1e-4);
        y.dispose();
      }
      for (const t of [a, b, bias]) t?.dispose();
    });
  }
});

it("every matmul candidate of a big output (257×260×21, 32-row tiles among them) vs a float64 product", { timeout: 600_000 }, async () => {
  const [M, N, K] = [257, 260, 21];
  const av = rnd(M * K, 1);
  const bv = rnd(N * K, 2);
  const want = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) want[m * N + n]! += av[m * K + k]! * bv[n * K + k]!;
  const a = Tensor.from(av, [M, K]);
  const b = Tensor.from(bv, [N, K]);
  const candidates = tested(matmulCandidates(M, N, K, device));
  expect(matmulCandidates(M, N, K, device).some((v) => v.R === 32)).toBe(true);
  for (const variant of candidates) {
    const y = matmul(a, b, { transB: true, variant });
    expect(relError(await y.readFloat32(), want), variantName(variant)).toBeLessThanOrEqual(1e-4);
    y.dispose();
  }
  a.dispose();
  b.dispose();
});

/**
 * The f16 candidates (the same list: every variant runs at both precisions)
 * on f16 operands, against a float64 product of the same f16 values: the
 * kernel sums in f32 (within the f32 bound above, 1e-4 · max |y|) and
 * rounds each output to f16 once (u = 2^-11 of it), so
 * |y16 − y| ≤ u·|y| + 1e-4 · max |y|.
 */
it.skipIf(!device.f16)("every f16 matmul candidate (32-row tiles among them) vs a float64 product of its f16 operands", { timeout: 600_000 }, async () => {
  const [M, N, K] = [257, 260, 21];
  const av = roundF16All(rnd(M * K, 3));
  const bv = roundF16All(rnd(N * K, 4));
  const want = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) want[m * N + n]! += av[m * K + k]! * bv[n * K + k]!;
  const floor = 1e-4 * maxAbs(want);
  const bound = want.map((y) => F16_UNIT * Math.abs(y) + floor);
  const a = f16From(av, [M, K]);
  const b = f16From(bv, [N, K]);
  for (const variant of tested(matmulCandidates(M, N, K, device))) {
    const y = matmul(a, b, { transB: true, variant });
    expect(y.dtype).toBe("f16");
    expect(boundRatio(await readAs(y, "f16"), want, bound), variantName(variant)).toBeLessThanOrEqual(1);
    y.dispose();
  }
  a.dispose();
  b.dispose();
});
