// Shared by conv_grad.test.ts and conv_grad_chunked.test.ts: re-creates a
// golden case's inputs (tools/fixtures/gen_grad_conv.py hashes them), runs
// the differentiable op, backpropagates gy and compares with PyTorch.
import { param, type Var } from "../../src/autograd/autograd.js";
import { convTranspose3d, patchEmbed, resize3d } from "../../src/autograd/conv_ops.js";
import { Tensor, numel } from "../../src/tensor/tensor.js";
import { relError, type FixtureCase } from "../helpers/fixtures.js";
import { expectGradients } from "../helpers/grads.js";
import { hashValues } from "../helpers/hashinit.js";

/** Input `k` of case c, as the generator made it: hash_values(f"{name}/{k}", shape, 1, 0). */
export function hashInput(c: FixtureCase, k: string): Tensor {
  const shape = (c.params.inputs as Record<string, number[]>)[k];
  if (!shape) throw new Error(`case ${c.name} has no input ${k}`);
  return Tensor.from(hashValues(`${c.name}/${k}`, numel(shape), 1, 0), shape);
}

/** 1e-4 relative, or 1e-3 where each element of the gradient sums ≥ 768 terms. */
export function tolFor(c: FixtureCase, k: string): number {
  const terms = (c.params.terms as Record<string, number> | undefined)?.[k] ?? 0;
  return terms >= 768 ? 1e-3 : 1e-4;
}

/** Whether `actual` matches output k of the case within its tolerance (reports the error on failure). */
export function tolerance(c: FixtureCase, k: string, actual: Float32Array): boolean {
  const want = c.outputs[k];
  if (!want) throw new Error(`case ${c.name} has no output ${k}`);
  const err = relError(actual, want.data);
  const tol = tolFor(c, k);
  if (!(err <= tol)) console.error(`${c.name} ${k}: relative error ${err} > ${tol}`);
  return err <= tol;
}

function run(c: FixtureCase, v: Record<string, Var>): Var {
  const p = c.params;
  switch (p.op) {
    case "convTranspose3d":
      return convTranspose3d(v.x!, v.w!, v.b ?? null, p.stride ? { stride: p.stride as [number, number, number] } : {});
    case "patchEmbed":
      return patchEmbed(v.x!, v.w!, v.b!, p.patch as [number, number, number]);
    case "resize3d":
      return resize3d(v.x!, p.size as [number, number, number], p.mode as "trilinear", p.alignCorners as boolean);
    default:
      throw new Error(`unknown op ${String(p.op)}`);
  }
}

/** Forward (when the golden has y), backward with gy, every input gradient; frees everything. */
export async function checkCase(c: FixtureCase): Promise<void> {
  const vars: Record<string, Var> = {};
  for (const k of Object.keys(c.params.inputs as object)) if (k !== "gy") vars[k] = param(hashInput(c, k));
  const y = run(c, vars);
  await expectGradients(c, y, hashInput(c, "gy"), vars, (k) => (k === "y" ? 1e-4 : tolFor(c, k)));
}
