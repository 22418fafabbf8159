// Gradients of every differentiable op against PyTorch float64 goldens
// (tools/fixtures/gen_grad_ops.py): each case runs the op on params, then
// backward(y, gy) and compares y and every input gradient.
// Tolerance: max |err| ≤ 1e-4 · max |expected| (1e-3 for matmul with K ≥ 768).
import { describe, expect, it } from "vitest";
import type { Activation } from "../../src/kernels/activation.js";
import type { UnaryOp } from "../../src/kernels/elementwise.js";
import { param, type Var } from "../../src/autograd/autograd.js";
import * as ag from "../../src/autograd/ops.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, type FixtureCase } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";
import { expectGradients } from "../helpers/grads.js";

useGpu();
const cases = loadFixture("grad/ops");

function run(c: FixtureCase, v: Record<string, Var>, ids: Tensor | null): Var {
  const p = c.params;
  const op = p.op as string;
  switch (op) {
    case "add":
    case "sub":
    case "mul":
    case "div":
      return ag[op](v.a!, v.b!);
    case "sum":
    case "mean":
      return ag[op](v.x!, p.axis as number | undefined, (p.keepDims as boolean | undefined) ?? false);
    case "matmul":
      return ag.matmul(v.a!, v.b!, { transA: p.transA as boolean, transB: p.transB as boolean });
    case "linear":
      return ag.linear(v.x!, v.w!, v.b ?? null, p.act as Activation, { recompute: p.recompute as boolean });
    case "slice":
      return ag.slice(v.x!, p.starts as number[], p.ends as number[]);
    case "pad":
      return ag.pad(v.x!, p.pads as [number, number][], p.value as number);
    case "permute":
      return ag.permute(v.x!, p.perm as number[]);
    case "reshape":
      return ag.reshape(v.x!, p.shape as number[]);
    case "concat":
      return ag.concat(Object.keys(v).sort().map((k) => v[k]!), p.axis as number);
    case "gather":
      return ag.gather(v.table!, ids!);
    default:
      return ag.unaryOp(op as UnaryOp, v.x!, p.a as number, p.b as number);
  }
}

async function check(c: FixtureCase): Promise<void> {
  const vars: Record<string, Var> = {};
  for (const [k, a] of Object.entries(c.inputs)) {
    if (k === "gy" || k === "ids") continue;
    vars[k] = param(Tensor.from(a.data as Float32Array, a.shape));
  }
  const ids = c.inputs.ids ? Tensor.from(c.inputs.ids.data as Int32Array, c.inputs.ids.shape, "i32") : null;
  const y = run(c, vars, ids);
  ids?.dispose();
  const tol = c.params.op === "matmul" && (c.params.K as number) >= 768 ? 1e-3 : 1e-4;
  await expectGradients(c, y, Tensor.from(c.inputs.gy!.data as Float32Array, c.inputs.gy!.shape), vars, () => tol);
}

describe("op gradients vs PyTorch", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const before = gpu().pool.stats().buffers;
      await check(c);
      // Every tensor of the case (inputs, grads, saved, intermediates) is freed.
      expect(gpu().pool.stats().buffers).toBe(before);
    });
  }

  // The same linear goldens with the pre-activation recomputed in backward.
  for (const c of cases.filter((c) => c.params.op === "linear" && c.params.act !== "none")) {
    it(`${c.name} (recompute)`, async () => {
      await check({ ...c, params: { ...c.params, recompute: true } });
    });
  }
});
