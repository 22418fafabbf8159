// The second half of every gradient-vs-golden test: compare the forward
// output y with the golden's y, backpropagate gy, compare each input's
// gradient with the golden's d_<input>, and free everything.
import { expect } from "vitest";
import { backward, type Var } from "../../src/autograd/autograd.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { relError, type FixtureCase } from "./fixtures.js";

/**
 * Checks y against c.outputs.y (when the golden has one) within `tol("y")`,
 * runs backward(y, gy) and checks every var's gradient against
 * c.outputs[`d_${name}`] within `tol(\`d_${name}\`)` (relative to the
 * golden's largest magnitude). Disposes vars, gy and y.
 */
export async function expectGradients(c: FixtureCase, y: Var, gy: Tensor, vars: Record<string, Var>, tol: (output: string) => number): Promise<void> {
  if (c.outputs.y) {
    expect(y.shape).toEqual(c.outputs.y.shape);
    expect(relError(await y.value.readFloat32(), c.outputs.y.data), "forward").toBeLessThanOrEqual(tol("y"));
  }
  backward(y, gy);
  for (const [k, v] of Object.entries(vars)) {
    const want = c.outputs[`d_${k}`]!;
    expect(v.grad, `grad of ${k}`).not.toBeNull();
    expect(v.grad!.shape).toEqual(want.shape);
    expect(relError(await v.grad!.readFloat32(), want.data), `d_${k}`).toBeLessThanOrEqual(tol(`d_${k}`));
    v.dispose();
  }
  gy.dispose();
  y.dispose();
}
