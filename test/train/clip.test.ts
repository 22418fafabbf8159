// Gradient clipping by global norm against torch.nn.utils.clip_grad_norm_
// (tools/fixtures/gen_train_optim.py): the returned norm within 1e-5
// relative, the clipped gradients within 1e-6 absolute.
import { describe, expect, it } from "vitest";
import { clipGradNorm, gradNorm } from "../../src/train/clip.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, relError } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const cases = loadFixture("train/clip");

describe("clipGradNorm vs torch", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const n = c.params.count as number;
      const grads = Array.from({ length: n }, (_, k) => Tensor.from(c.inputs[`g${k}`]!.data as Float32Array, c.inputs[`g${k}`]!.shape));
      // Null grads are skipped; Tensors and {grad} records are both accepted.
      const items = [...grads.map((g, k) => ({ name: `p${k}`, grad: g })), { name: "frozen", grad: null }];
      const norm = clipGradNorm(items, c.params.maxNorm as number);
      expect(norm.shape).toEqual([]);
      const want = c.outputs.norm!.data[0]!;
      expect(Math.abs((await norm.readFloat32())[0]! - want) / want).toBeLessThanOrEqual(1e-5);
      for (let k = 0; k < n; k++) {
        const got = await grads[k]!.readFloat32();
        const exp = c.outputs[`g${k}`]!.data;
        let m = 0;
        for (let i = 0; i < exp.length; i++) m = Math.max(m, Math.abs(got[i]! - exp[i]!));
        expect(m, `grad ${k}`).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  it("gradNorm of no gradients is 0; a bad maxNorm is rejected", async () => {
    expect(Array.from(await gradNorm([]).readFloat32())).toEqual([0]);
    expect(() => clipGradNorm([Tensor.zeros([3])], 0)).toThrow(/clipGradNorm: maxNorm must be a finite number > 0, got 0/);
  });

  it("agrees with a plain-TS norm on a gradient spanning several reduction blocks", async () => {
    const x = new Float32Array(40001).map((_, i) => Math.sin(i * 0.37) * 0.01);
    let ss = 0;
    for (const v of x) ss += v * v;
    const norm = await gradNorm([Tensor.from(x, [40001])]).readFloat32();
    expect(relError(norm, [Math.sqrt(ss)])).toBeLessThanOrEqual(1e-5);
  });
});

describe("clipGradNorm over many gradients", () => {
  it("batches of gradients per dispatch (varied sizes, an empty one, several reduction blocks) agree with a plain-TS clip", async () => {
    // 20 gradients: at 16 storage bindings, batches of 8, 8, 4 per pass.
    const sizes = [1, 3, 0, 4, 5, 17, 64, 257, 1000, 2, 9, 4099, 16385, 6, 7, 70000, 11, 12, 13, 40001];
    const data = sizes.map((n, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * 0.01));
    const grads = data.map((d, k) => Tensor.from(d, [sizes[k]!]));
    let sq = 0;
    for (const d of data) for (const v of d) sq += v * v;
    const want = Math.sqrt(sq);
    const maxNorm = want / 3;
    const norm = clipGradNorm(grads, maxNorm);
    expect(Math.abs((await norm.readFloat32())[0]! - want) / want).toBeLessThanOrEqual(1e-5);
    const coef = maxNorm / (want + 1e-6);
    for (const [k, g] of grads.entries()) {
      const got = await g.readFloat32();
      let m = 0;
      for (let i = 0; i < got.length; i++) m = Math.max(m, Math.abs(got[i]! - data[k]![i]! * coef));
      expect(m, `grad ${k} (${sizes[k]} elements)`).toBeLessThanOrEqual(1e-6);
      g.dispose();
    }
    norm.dispose();
  });
});
