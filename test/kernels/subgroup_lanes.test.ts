// The lane projects of vitest.config.ts rerun kernel goldens at other
// subgroup sizes through lavapipe's LP_NATIVE_VECTOR_WIDTH (32 bits per
// lane). This checks that the device really has them: a project that ran at
// the default 8 lanes would test nothing new.
import { expect, it } from "vitest";
import { gpu } from "../../src/tensor/device.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();

it("runs at the subgroup size its project asks for (lavapipe)", (ctx) => {
  const g = gpu();
  const { device, description } = g.adapter;
  ctx.skip(!/llvmpipe/i.test(`${device} ${description}`), `not lavapipe (${device}): LP_NATIVE_VECTOR_WIDTH does not apply`);
  const lanes = Number(process.env.LP_NATIVE_VECTOR_WIDTH) / 32;
  expect([g.subgroupMinSize, g.subgroupMaxSize]).toEqual([lanes, lanes]);
});
