// The `segvol` command line. Each subcommand lives in its own module.
import { Command } from "commander";
import { GpuUnavailableError } from "../tensor/device.js";
import { registerConvert } from "./convert.js";
import { registerDemo } from "./demo.js";
import { registerForward } from "./forward.js";
import { registerInit } from "./init.js";
import { registerGrow } from "./grow.js";
import { registerPhantom } from "./phantom.js";
import { registerSegment } from "./segment.js";
import { registerSmoke } from "./smoke.js";
import { registerTrain } from "./train.js";

const program = new Command();
program.name("segvol").description("SegVol 3-D medical segmentation on WebGPU (Dawn), from the command line").version("0.1.0");
registerSmoke(program);
registerConvert(program);
registerForward(program);
registerSegment(program);
registerTrain(program);
registerPhantom(program);
registerInit(program);
registerGrow(program);
registerDemo(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Expected failures (bad input, no GPU) print one clear line, not a stack.
  const err = e as Error;
  if (err instanceof GpuUnavailableError) console.error(err.message);
  else console.error(`segvol: ${err.message}`);
  if (process.env.SEGVOL_DEBUG) console.error(err.stack);
  process.exitCode = 1;
}
