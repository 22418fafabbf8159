// `defineOp` + `apply`: an op declared once in Tensor terms (as the kernels
// declare theirs) runs on Vars, saves only when a gradient is wanted, returns
// only the wanted gradients, frees what it saved, and without a backward
// gives a constant.
import { describe, expect, it } from "vitest";
import { backward, constant, noGrad, param } from "../../src/autograd/autograd.js";
import { apply } from "../../src/autograd/op_inputs.js";
import { binary, unary } from "../../src/kernels/elementwise.js";
import { defineOp } from "../../src/kernels/op.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();

const live = () => gpu().pool.stats().buffers;

/** out = a·b·k (elementwise), with a counter of save calls. */
function scaledMul() {
  const calls = { save: 0 };
  const op = defineOp<[Tensor, Tensor], { k: number }>({
    name: "scaledMul",
    forward: ([a, b], { k }) => {
      const ab = binary("mul", a, b);
      const out = unary("affine", ab, k, 0);
      ab.dispose();
      return out;
    },
    save: ([a, b], _out, { wants: [ga, gb] }) => {
      calls.save++;
      // A tensor made here: the tape keeps its own handle on it.
      return [gb ? unary("neg", unary("neg", a)) : null, ga ? b : null];
    },
    backward: ([a, b], g, { attrs: { k }, wants: [ga, gb] }) => [
      ga ? unary("affine", binary("mul", g, b!), k, 0) : null,
      gb ? unary("affine", binary("mul", g, a!), k, 0) : null,
    ],
  });
  return { op, calls };
}

describe("defineOp + apply", () => {
  it("gives the gradients of each wanted input, and frees what it saved", async () => {
    const start = live();
    const { op, calls } = scaledMul();
    const a = param(Tensor.from([1, 2, 3], [3]));
    const b = param(Tensor.from([4, 5, 6], [3]));
    const y = apply(op, [a, b], { k: 2 });
    expect(Array.from(await y.value.readFloat32())).toEqual([8, 20, 36]);
    expect(calls.save).toBe(1);
    const ones = Tensor.from([1, 1, 1], [3]);
    backward(y, ones);
    expect(Array.from(await a.grad!.readFloat32())).toEqual([8, 10, 12]);
    expect(Array.from(await b.grad!.readFloat32())).toEqual([2, 4, 6]);
    for (const v of [a, b, y]) v.dispose();
    ones.dispose();
    expect(live()).toBe(start);
  });

  it("asks nothing of a constant input, saves nothing without a wanted gradient", async () => {
    const { op, calls } = scaledMul();
    const a = param(Tensor.from([1, 2, 3], [3]));
    const b = constant(Tensor.from([4, 5, 6], [3]));
    const y = apply(op, [a, b], { k: 1 });
    const ones = Tensor.from([1, 1, 1], [3]);
    backward(y, ones);
    ones.dispose();
    expect(Array.from(await a.grad!.readFloat32())).toEqual([4, 5, 6]);
    expect(b.grad).toBeNull();
    const z = noGrad(() => apply(op, [a, b], { k: 1 }));
    expect(calls.save).toBe(1);
    expect(z.requiresGrad).toBe(false);
    for (const v of [a, b, y, z]) v.dispose();
  });

  it("records an op without backward as a constant, and names the op when an input is freed", () => {
    const op = defineOp<[Tensor], { t: number }>({ name: (a) => `step(${a.t})`, forward: ([x], { t }) => unary("threshold", x, t) });
    const x = param(Tensor.from([1, 2, 3], [3]));
    const y = apply(op, [x], { t: 1.5 });
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    y.dispose();
    x.dispose();
    expect(() => apply(op, [x], { t: 0 })).toThrow(/^step\(0\): input Var \[3\] was freed/);
  });
});
