// The lane projects of vitest.config.ts rerun kernel goldens at other
// subgroup sizes through lavapipe's LP_NATIVE_VECTOR_WIDTH (32 bits per
// lane). This checks that the device really has them, as reported and as a
// shader sees them: a project that ran at the default 8 lanes would test
// nothing new.
import { expect, it } from "vitest";
import { gpu } from "../../src/tensor/device.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();

/** Each invocation of a 64-lane workgroup writes its subgroup_size and subgroupAdd(1). */
const LANES_WGSL = /* wgsl */ `enable subgroups;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) size: u32) {
  out[2u * lid] = size;
  out[2u * lid + 1u] = subgroupAdd(1u);
}`;

it("runs at the subgroup size its project asks for (lavapipe)", async (ctx) => {
  const g = gpu();
  const { device, description } = g.adapter;
  ctx.skip(!/llvmpipe/i.test(`${device} ${description}`), `not lavapipe (${device}): LP_NATIVE_VECTOR_WIDTH does not apply`);
  const lanes = Number(process.env.LP_NATIVE_VECTOR_WIDTH) / 32;
  expect([g.subgroupMinSize, g.subgroupMaxSize]).toEqual([lanes, lanes]);
  const out = Tensor.empty([128], "i32");
  g.dispatch(g.pipeline("test:subgroup-lanes", () => LANES_WGSL), [{ buffer: out.buffer }], null, [1, 1, 1]);
  const r = await out.read();
  expect(new Set(r)).toEqual(new Set([lanes]));
  out.dispose();
});
