// matmul against PyTorch goldens (tools/fixtures/gen_matmul.py), every case
// over every variant the code can choose on this device: each row-sharing
// width (0: no subgroups; 4 and 8 where every subgroup has that many lanes)
// with the chooser's tile and with fixed tiles that between them take each
// R, C, WG and orientation the chooser can return; plus the boundary errors.
// Tolerance: max |err| ≤ 1e-4 · max |expected| for K < 768, 1e-3 for K ≥ 768.
// Every case runs in f16 too (inputs rounded to f16, output f16), against
// the same f32 golden with a bound per element derived below (f16Bound).
import { describe, expect, it } from "vitest";
import type { Activation } from "../../src/kernels/activation.js";
import { ShapeError } from "../../src/kernels/check.js";
import { chooseTile, matmul, type MatmulChoice, type MatmulOptions } from "../../src/kernels/matmul.js";
import { laneGroups } from "../../src/kernels/profile.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { F16_UNIT, boundRatio, f16From, fixtureTensor, maxAbs, readAs } from "../helpers/f16.js";
import { loadFixture, relError, type FixtureArray, type FixtureCase } from "../helpers/fixtures.js";
import { onDevice, useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";

useGpu();
const cases = loadFixture("kernels/matmul");
const profile = await testProfile();
/** f16 cases need the adapter's shader-f16 (lavapipe has it). */
const noF16 = !profile.f16;
/** Row-sharing widths the chooser can return on this device (chooseShare takes at most 8). */
const shares = [0, ...laneGroups(profile, 8)];
/**
 * Tiles: the chooser's own ({}), and three fixed ones that, with it and the
 * 32-row tests below, take every R (8, 16, 32), C (1-4), WG (8-64) and
 * orientation the chooser can return.
 */
const tiles: Partial<MatmulChoice>[] = [{}, { R: 8, C: 3, WG: 32, swap: false }, { R: 16, C: 1, WG: 8, swap: true }, { R: 32, C: 2, WG: 16, swap: false }];
const variants = shares.flatMap((share) => tiles.map((t) => ({ share, ...t })));

/** The f32 tolerance of a case, relative to max |expected|. */
const f32Tolerance = (c: FixtureCase) => ((c.params.K as number) >= 768 ? 1e-3 : 1e-4);

/** A case's options (the fixture's layout and epilogue) with `bias` and `variant`. */
function caseOptions(c: FixtureCase, bias: Tensor | undefined, variant: Partial<MatmulChoice>): MatmulOptions {
  return { transA: c.params.transA as boolean, transB: c.params.transB as boolean, bias, act: c.params.act as Activation, variant };
}

async function runCase(c: FixtureCase, variant: Partial<MatmulChoice>): Promise<void> {
  const a = fixtureTensor(c.inputs.a!, "f32");
  const b = fixtureTensor(c.inputs.b!, "f32");
  const bias = c.inputs.bias ? fixtureTensor(c.inputs.bias, "f32") : undefined;
  const y = matmul(a, b, caseOptions(c, bias, variant));
  expect(y.shape).toEqual(c.outputs.y!.shape);
  expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(f32Tolerance(c));
  for (const t of [a, b, y, bias]) t?.dispose();
}

/** The largest slope of an epilogue activation: GELU's (exact or tanh) peaks at 1.129, quick GELU's at 1.100, ReLU's and the identity's is 1, sigmoid's 0.25. */
const ACT_SLOPE = 1.13;

/**
 * The f16 bound of each output element of a case, against its f32 golden y.
 * Rounding an input to f16 moves it by at most u = 2^-11 of itself, so the
 * product a_k·b_k by at most (2u + u²)·|a_k·b_k|: the sum moves by at most
 * (2u + u²)·S with S = Σ_k |a_k·b_k| (S grows with K), and the bias by u·|bias|.
 * The activation stretches that by at most its slope L; the f32 sums,
 * epilogue and golden are within the f32 tolerance; the one rounding of
 * the output to f16 adds u·|y| (and u times the error before it). f16
 * subnormals (below 6.1e-5) round with an absolute error of 2^-25, far
 * under the f32 tolerance's share of these outputs. So
 *   |y16 − y| ≤ u·|y| + (1 + u)·L·((2u + u²)·S + u·|bias|) + tol32·max |y|,
 * S computed by the f32 kernel on |a| and |b|.
 */
async function f16Bound(c: FixtureCase): Promise<Float64Array> {
  const abs = (x: FixtureArray) => Tensor.from((x.data as Float32Array).map(Math.abs), x.shape);
  const [absA, absB] = [abs(c.inputs.a!), abs(c.inputs.b!)];
  const sTensor = matmul(absA, absB, { transA: c.params.transA as boolean, transB: c.params.transB as boolean });
  const S = await sTensor.readFloat32();
  for (const t of [absA, absB, sTensor]) t.dispose();
  const y = c.outputs.y!.data;
  const bias = c.inputs.bias?.data;
  const N = c.outputs.y!.shape.at(-1)!;
  const u = F16_UNIT;
  const floor = f32Tolerance(c) * maxAbs(y);
  return Float64Array.from(y, (yi, i) => u * Math.abs(yi) + (1 + u) * ACT_SLOPE * ((2 * u + u * u) * S[i]! + u * Math.abs(bias?.[i % N] ?? 0)) + floor);
}

async function runCaseF16(c: FixtureCase, variant: Partial<MatmulChoice>): Promise<void> {
  const a = fixtureTensor(c.inputs.a!, "f16");
  const b = fixtureTensor(c.inputs.b!, "f16");
  const bias = c.inputs.bias ? fixtureTensor(c.inputs.bias, "f16") : undefined;
  const y = matmul(a, b, caseOptions(c, bias, variant));
  expect(y.dtype).toBe("f16");
  expect(y.shape).toEqual(c.outputs.y!.shape);
  expect(boundRatio(await readAs(y, "f16"), c.outputs.y!.data, await f16Bound(c))).toBeLessThanOrEqual(1);
  for (const t of [a, b, y, bias]) t?.dispose();
}

describe("matmul vs PyTorch", () => {
  forEachVariant(variants, (v) => {
    for (const c of cases) it(c.name, () => runCase(c, v));
  });
});

describe("f16 matmul vs the f32 PyTorch goldens", () => {
  forEachVariant(variants, (v) => {
    for (const c of cases) it.skipIf(noF16)(c.name, () => runCaseF16(c, v));
  });
});

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Plain float64 reference: relu(a[b] · B[b] + bias) with a [batch, M, K], B given as element (b, k, n). */
function reference(a: Float32Array, bAt: (bi: number, k: number, n: number) => number, batch: number, M: number, K: number, N: number, bias?: Float32Array): Float64Array {
  const out = new Float64Array(batch * M * N);
  for (let bi = 0; bi < batch; bi++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = bias ? bias[n]! : 0;
        for (let k = 0; k < K; k++) acc += a[(bi * M + m) * K + k]! * bAt(bi, k, n);
        out[(bi * M + m) * N + n] = bias ? Math.max(acc, 0) : acc;
      }
    }
  }
  return out;
}

// Outputs of ≥ 65536 elements take the 32-row tile (R32 C4 WG64 for the
// first); the fixtures are smaller. Each row-sharing width.
describe("matmul with 32-row tiles vs a float64 reference", () => forEachVariant(shares.map((share) => ({ share })), (variant) => {
  it("[300, 40] · [260, 40]ᵀ + bias, relu (owned axis = M)", async () => {
    const [M, K, N] = [300, 40, 260];
    const a = values(M * K, 1);
    const w = values(N * K, 2);
    const bias = values(N, 3);
    const y = matmul(Tensor.from(a, [M, K]), Tensor.from(w, [N, K]), { transB: true, bias: Tensor.from(bias, [N]), act: "relu", variant });
    expect(y.shape).toEqual([M, N]);
    const ref = reference(a, (_, k, n) => w[n * K + k]!, 1, M, K, N, bias);
    expect(relError(await y.readFloat32(), ref)).toBeLessThanOrEqual(1e-4);
  });

  it("[2, 260, 21] · [21, 300] (owned axis = N, K % 4 ≠ 0)", async () => {
    const [B, M, K, N] = [2, 260, 21, 300];
    const a = values(B * M * K, 4);
    const b = values(K * N, 5);
    const y = matmul(Tensor.from(a, [B, M, K]), Tensor.from(b, [K, N]), { variant });
    expect(y.shape).toEqual([B, M, N]);
    const ref = reference(a, (_, k, n) => b[k * N + n]!, B, M, K, N);
    expect(relError(await y.readFloat32(), ref)).toBeLessThanOrEqual(1e-4);
  });
}));

// f16 is storage only: the sums accumulate in f32. f16 holds integers
// exactly only up to 2048 (2048 + 1 rounds back to 2048), so a sum of 3000
// ones kept in f16 would stop at 2048; 3000 and 3002 are f16s (even).
describe("f16 matmul accumulates in f32", () => forEachVariant(shares.map((share) => ({ share })), (variant) => {
  it.skipIf(noF16)("[5, K] · [K, 3] of ones is K everywhere, K = 3000 (vec4 loads) and 3002 (a K tail)", async () => {
    for (const K of [3000, 3002]) {
      const ones = (n: number) => new Float32Array(n).fill(1);
      const [M, N] = [5, 3];
      const a = f16From(ones(M * K), [M, K]);
      const b = f16From(ones(K * N), [K, N]);
      const y = matmul(a, b, { variant });
      expect(Array.from(await readAs(y, "f16"))).toEqual(new Array(M * N).fill(K));
      for (const t of [a, b, y]) t.dispose();
    }
  });
}));

// The tile follows the output's shape (chooseTile): narrow outputs take
// narrow tiles, which compile to pipelines the fixtures above may not reach.
describe("matmul tiles for narrow outputs", () => {
  it("chooses tiles that cover a narrow output without padding it to a 64×4 span", () => {
    // A 1×12 output over K = 32768 (a hypernetwork input gradient): at most twice the useful outputs.
    for (const share of [8, 4, 0]) {
      const t = chooseTile(1, 12, 32768, share);
      const [rows, cols] = t.swap ? [12, 1] : [1, 12];
      expect(Math.ceil(rows / t.R) * t.R * Math.ceil(cols / (t.WG * t.C)) * t.WG * t.C).toBeLessThanOrEqual(16 * 8);
    }
    // A 96-wide output is covered exactly.
    const w = chooseTile(96, 96, 512, 8);
    expect(w.WG * w.C).toBe(96);
    // A big square product keeps the big tile.
    expect(chooseTile(2048, 768, 768, 8)).toEqual({ share: 8, swap: false, R: 32, C: 4, WG: 64 });
    // Fixed knobs are kept.
    expect(chooseTile(1, 12, 32768, 8, { R: 8, C: 2, WG: 16 })).toMatchObject({ share: 8, R: 8, C: 2, WG: 16 });
  });

  it("[3, 1, 4100] · [3, 12, 4100]ᵀ and [3, 12, 4096]ᵀ · [3, 12, 5] (long K, few outputs) match float64", async () => {
    const [B, M, K, N] = [3, 1, 4100, 12];
    const a = values(B * M * K, 6);
    const b = values(B * N * K, 7);
    const y = matmul(Tensor.from(a, [B, M, K]), Tensor.from(b, [B, N, K]), { transB: true });
    const ref = reference(a, (bi, k, n) => b[(bi * N + n) * K + k]!, B, M, K, N);
    expect(relError(await y.readFloat32(), ref)).toBeLessThanOrEqual(1e-3);
    // transA: a stored [B, K, M] with M = 12, N = 5.
    const [K2, M2, N2] = [4096, 12, 5];
    const at = values(B * K2 * M2, 8);
    const b2 = values(B * K2 * N2, 9);
    const y2 = matmul(Tensor.from(at, [B, K2, M2]), Tensor.from(b2, [B, K2, N2]), { transA: true });
    const a2 = new Float32Array(B * M2 * K2);
    for (let bi = 0; bi < B; bi++) for (let k = 0; k < K2; k++) for (let m = 0; m < M2; m++) a2[(bi * M2 + m) * K2 + k] = at[(bi * K2 + k) * M2 + m]!;
    const ref2 = reference(a2, (bi, k, n) => b2[(bi * K2 + k) * N2 + n]!, B, M2, K2, N2);
    expect(relError(await y2.readFloat32(), ref2)).toBeLessThanOrEqual(1e-3);
  });
});

describe("matmul errors name the op and the shapes", () => {
  it("inner dimension mismatch", () => {
    const a = Tensor.zeros([2, 3]);
    const b = Tensor.zeros([4, 5]);
    expect(() => matmul(a, b)).toThrow(/matmul: inner dimensions differ: a \[2, 3\] has K=3, b \[4, 5\] has K=4/);
    expect(() => matmul(a, b, { transB: true })).toThrow(/matmul: inner dimensions differ: a \[2, 3\] has K=3, b \(transB\) \[4, 5\] has K=5/);
  });

  it("batch dims that do not broadcast", () => {
    const a = Tensor.zeros([2, 3, 4]);
    const b = Tensor.zeros([3, 4, 5]);
    expect(() => matmul(a, b)).toThrow(/matmul: batch dims of a \[2, 3, 4\] and b \[3, 4, 5\] do not broadcast/);
  });

  it("wrong bias shape", () => {
    const a = Tensor.zeros([2, 3]);
    const b = Tensor.zeros([3, 5]);
    const bias = Tensor.zeros([4]);
    expect(() => matmul(a, b, { bias })).toThrow(/matmul: bias \[4\] must have shape \[5\]/);
    const bias2 = Tensor.zeros([1, 5]);
    expect(() => matmul(a, b, { bias: bias2 })).toThrow(/matmul: bias \[1, 5\] must have shape \[5\]/);
  });

  it("wrong dtype, disposed input, rank < 2, unknown activation", () => {
    const a = Tensor.zeros([2, 3]);
    const i = Tensor.from(new Int32Array(15), [3, 5], "i32");
    expect(() => matmul(a, i)).toThrow(/matmul: expected dtype f32 or f16, got i32 for tensor \[3, 5\]/);
    const d = Tensor.zeros([3, 5]);
    d.dispose();
    expect(() => matmul(a, d)).toThrow(/matmul: input tensor \[3, 5\] f32 was disposed/);
    const v = Tensor.zeros([3]);
    expect(() => matmul(a, v)).toThrow(/matmul: a \[2, 3\] and b \[3\] must both have rank ≥ 2/);
    const b = Tensor.zeros([3, 5]);
    expect(() => matmul(a, b, { act: "tanh" as Activation })).toThrow(/matmul: unknown activation "tanh"/);
  });

  it.skipIf(noF16)("inputs that mix f32 and f16 (a bias included)", () => {
    const a = Tensor.zeros([2, 3]);
    const b = Tensor.zeros([3, 5]);
    const b16 = f16From(new Float32Array(15), [3, 5]);
    const bias16 = f16From(new Float32Array(5), [5]);
    expect(() => matmul(a, b16)).toThrow(ShapeError);
    expect(() => matmul(a, b16)).toThrow(/matmul: inputs mix f32 and f16: cast them to one precision first/);
    expect(() => matmul(a, b, { bias: bias16 })).toThrow(/matmul: inputs mix f32 and f16/);
    expect(() => matmul(f16From(new Float32Array(6), [2, 3]), b16, { bias: Tensor.zeros([5]) })).toThrow(/matmul: inputs mix f16 and f32/);
  });

  it("f16 inputs on a device without shader-f16", async () => {
    await onDevice({ f16: false }, () => {
      expect(gpu().hasF16).toBe(false);
      // f16 bits uploaded as they are: no kernel needs to run to make them.
      const a = Tensor.from(new Uint16Array(6), [2, 3], "f16");
      const b = Tensor.from(new Uint16Array(15), [3, 5], "f16");
      expect(() => matmul(a, b)).toThrow(ShapeError);
      expect(() => matmul(a, b)).toThrow(/matmul: f16 tensors need the shader-f16 feature, which this device does not have/);
    });
  });

  it("a tensor larger than one storage binding", () => {
    const g = gpu();
    const limit = g.maxBindingBytes;
    g.maxBindingBytes = 1024;
    try {
      const a = Tensor.zeros([16, 8]);
      const b = Tensor.zeros([8, 32]);
      expect(() => matmul(a, b)).toThrow(/matmul: output \[16, 32\] is 2048 bytes, more than one storage binding allows \(1024\)/);
    } finally {
      g.maxBindingBytes = limit;
    }
  });

  it.skipIf(noF16)("an f16 tensor larger than one storage binding: 2 bytes an element", () => {
    const g = gpu();
    const limit = g.maxBindingBytes;
    // The f32 output too large above fits in f16; one twice as wide does not.
    const [a, b, wide] = [f16From(new Float32Array(128), [16, 8]), f16From(new Float32Array(256), [8, 32]), f16From(new Float32Array(512), [8, 64])];
    g.maxBindingBytes = 1024;
    try {
      expect(matmul(a, b).shape).toEqual([16, 32]);
      expect(() => matmul(a, wide)).toThrow(/matmul: output \[16, 64\] is 2048 bytes, more than one storage binding allows \(1024\)/);
    } finally {
      g.maxBindingBytes = limit;
    }
  });

  it("empty outputs need no dispatch", async () => {
    const y = matmul(Tensor.zeros([0, 3]), Tensor.zeros([3, 5]));
    expect(y.shape).toEqual([0, 5]);
    const z = matmul(Tensor.zeros([4, 0]), Tensor.zeros([0, 2]), { bias: Tensor.from([1, -2], [2]), act: "relu" });
    expect(Array.from(await z.readFloat32())).toEqual([1, 0, 1, 0, 1, 0, 1, 0]);
  });
});
