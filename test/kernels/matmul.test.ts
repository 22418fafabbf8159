// matmul against PyTorch goldens (tools/fixtures/gen_matmul.py), every case
// over every variant the code can choose on this device: each row-sharing
// width (0: no subgroups; 4 and 8 where every subgroup has that many lanes)
// with the chooser's tile and with fixed tiles that between them take each
// R, C, WG and orientation the chooser can return; plus the boundary errors.
// Tolerance: max |err| ≤ 1e-4 · max |expected| for K < 768, 1e-3 for K ≥ 768.
import { describe, expect, it } from "vitest";
import type { Activation } from "../../src/kernels/activation.js";
import { chooseTile, matmul, type MatmulChoice } from "../../src/kernels/matmul.js";
import { laneGroups } from "../../src/kernels/profile.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError, type FixtureCase } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { forEachVariant, testProfile } from "../helpers/variants.js";

useGpu();
const cases = loadFixture("kernels/matmul");
const profile = await testProfile();
/** Row-sharing widths the chooser can return on this device (chooseShare takes at most 8). */
const shares = [0, ...laneGroups(profile, 8)];
/**
 * Tiles: the chooser's own ({}), and three fixed ones that, with it and the
 * 32-row tests below, take every R (8, 16, 32), C (1-4), WG (8-64) and
 * orientation the chooser can return.
 */
const tiles: Partial<MatmulChoice>[] = [{}, { R: 8, C: 3, WG: 32, swap: false }, { R: 16, C: 1, WG: 8, swap: true }, { R: 32, C: 2, WG: 16, swap: false }];
const variants = shares.flatMap((share) => tiles.map((t) => ({ share, ...t })));

async function runCase(c: FixtureCase, variant: Partial<MatmulChoice>): Promise<void> {
  const a = Tensor.from(c.inputs.a!.data as Float32Array, c.inputs.a!.shape);
  const b = Tensor.from(c.inputs.b!.data as Float32Array, c.inputs.b!.shape);
  const bias = c.inputs.bias ? Tensor.from(c.inputs.bias.data as Float32Array, c.inputs.bias.shape) : undefined;
  const y = matmul(a, b, {
    transA: c.params.transA as boolean,
    transB: c.params.transB as boolean,
    bias,
    act: c.params.act as Activation,
    variant,
  });
  expect(y.shape).toEqual(c.outputs.y!.shape);
  const tol = (c.params.K as number) >= 768 ? 1e-3 : 1e-4;
  expect(relError(await y.readFloat32(), c.outputs.y!.data)).toBeLessThanOrEqual(tol);
  for (const t of [a, b, y, bias]) t?.dispose();
}

describe("matmul vs PyTorch", () => {
  forEachVariant(variants, (v) => {
    for (const c of cases) it(c.name, () => runCase(c, v));
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
    expect(() => matmul(a, i)).toThrow(/matmul: expected dtype f32, got i32 for tensor \[3, 5\]/);
    const d = Tensor.zeros([3, 5]);
    d.dispose();
    expect(() => matmul(a, d)).toThrow(/matmul: input tensor \[3, 5\] f32 was disposed/);
    const v = Tensor.zeros([3]);
    expect(() => matmul(a, v)).toThrow(/matmul: a \[2, 3\] and b \[3\] must both have rank ≥ 2/);
    const b = Tensor.zeros([3, 5]);
    expect(() => matmul(a, b, { act: "tanh" as Activation })).toThrow(/matmul: unknown activation "tanh"/);
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

  it("empty outputs need no dispatch", async () => {
    const y = matmul(Tensor.zeros([0, 3]), Tensor.zeros([3, 5]));
    expect(y.shape).toEqual([0, 5]);
    const z = matmul(Tensor.zeros([4, 0]), Tensor.zeros([0, 2]), { bias: Tensor.from([1, -2], [2]), act: "relu" });
    expect(Array.from(await z.readFloat32())).toEqual([1, 0, 1, 0, 1, 0, 1, 0]);
  });
});
