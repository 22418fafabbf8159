// Layout ops against PyTorch goldens (tools/fixtures/gen_layout.py); all exact.
import { describe, expect, it } from "vitest";
import { cast, concat, gather, pad, permute, slice } from "../../src/kernels/layout.js";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { loadFixture, type FixtureArray, type FixtureCase } from "../helpers/fixtures.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const cases = loadFixture("kernels/layout");
const up = (a: FixtureArray) =>
  a.data instanceof Int32Array ? Tensor.from(a.data, a.shape, "i32") : Tensor.from(a.data, a.shape);

describe("layout ops vs PyTorch", () => {
  for (const c of cases) {
    it(c.name, async (ctx) => {
      const p = c.params;
      ctx.skip(p.op === "cast" && !gpu().hasF16, "the adapter lacks shader-f16");
      const x = c.inputs.x ? up(c.inputs.x) : undefined;
      if (p.op === "cast") {
        const h = cast(x!, "f16");
        expect(h.dtype).toBe("f16");
        expect(Array.from(await h.read())).toEqual(Array.from(c.outputs.bits!.data));
        const back = cast(h, "f32");
        expect(Array.from(await back.readFloat32())).toEqual(Array.from(c.outputs.back!.data));
        return;
      }
      const y = run(c, up);
      expect(y.shape).toEqual(c.outputs.y!.shape);
      expect(Array.from(await y.readFloat32())).toEqual(Array.from(c.outputs.y!.data));
    });
  }
});

/** The case's op on its inputs, made by `input` (f32 from the fixture, or those cast to f16). */
function run(c: FixtureCase, input: (a: FixtureArray) => Tensor): Tensor {
  const p = c.params;
  const x = c.inputs.x ? input(c.inputs.x) : undefined;
  if (p.op === "slice") return slice(x!, p.starts as number[], p.ends as number[]);
  if (p.op === "pad") return pad(x!, p.pads as [number, number][], p.value as number);
  if (p.op === "permute") return permute(x!, p.perm as number[]);
  if (p.op === "concat") return concat(["a", "b", "c"].filter((k) => c.inputs[k]).map((k) => input(c.inputs[k]!)), p.axis as number);
  return gather(input(c.inputs.table!), up(c.inputs.ids!));
}

// In f16 a layout op moves half values: the output must be exactly the
// golden rounded to half (moving, padding and gathering commute with the
// rounding), bit for bit, with the pad value rounded the same way.
describe("layout ops in f16 (exact)", () => {
  for (const c of cases.filter((k) => k.params.op !== "cast")) {
    it(c.name, async (ctx) => {
      ctx.skip(!gpu().hasF16, "the adapter lacks shader-f16");
      const half = (a: FixtureArray) => (a.data instanceof Int32Array ? up(a) : cast(up(a), "f16"));
      const y = run(c, half);
      expect(y.dtype).toBe("f16");
      expect(y.shape).toEqual(c.outputs.y!.shape);
      expect(Array.from(await y.read())).toEqual(Array.from(await cast(up(c.outputs.y!), "f16").read()));
    });
  }
});

describe("layout ops: integers, checks", () => {

  it("moves i32 data exactly (permute, pad with an integer value, concat)", async () => {
    const v = Int32Array.from({ length: 24 }, (_, i) => i * 1000003 - 7);
    const x = Tensor.from(v, [2, 3, 4], "i32");
    const t = await permute(x, [2, 0, 1]).read();
    expect(t[1]).toBe(v[4]); // out [0,0,1] = x[0,1,0]
    expect(t[6]).toBe(v[1]); // out [1,0,0] = x[0,0,1]
    const pd = await pad(x, [[0, 0], [0, 0], [1, 0]], -5).read();
    expect(Array.from(pd.slice(0, 5))).toEqual([-5, ...v.slice(0, 4)]);
    const cc = await concat([x, x], 0).read();
    expect(Array.from(cc)).toEqual([...v, ...v]);
  });

  it("gather: host ids are range-checked, GPU ids are clamped", async () => {
    const table = Tensor.from(Float32Array.from({ length: 12 }, (_, i) => i), [4, 3]);
    expect(() => gather(table, [1, 4])).toThrow(/gather: id 4 at position 1 is out of range for table \[4, 3\]/);
    expect(Array.from(await gather(table, [2, 0]).readFloat32())).toEqual([6, 7, 8, 0, 1, 2]);
    const ids = Tensor.from(new Int32Array([-3, 9]), [2], "i32");
    expect(Array.from(await gather(table, ids).readFloat32())).toEqual([0, 1, 2, 9, 10, 11]);
  });

  it("rejects bad arguments naming the op and shapes", () => {
    const x = Tensor.zeros([3, 5, 7]);
    expect(() => permute(x, [0, 0, 1])).toThrow(/permute: \[0, 0, 1\] is not a permutation of the axes of \[3, 5, 7\]/);
    expect(() => slice(x, [0, 2], [3, 6])).toThrow(/slice: range \[2, 6\) is out of bounds for axis 1 of \[3, 5, 7\]/);
    expect(() => concat([x, Tensor.zeros([3, 4, 7])], 0)).toThrow(/concat: shapes \[3, 5, 7\], \[3, 4, 7\] differ outside axis 0/);
    expect(() => concat([x], 3)).toThrow(/concat: axis 3 is out of range for rank 3/);
    expect(() => pad(x, [[1, -1]])).toThrow(/pad: pads must be non-negative integers/);
    expect(() => cast(x, "i32" as "f32")).toThrow(/cast: target dtype must be f32 or f16, got i32 for \[3, 5, 7\]/);
  });
});
