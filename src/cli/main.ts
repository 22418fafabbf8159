// The `segvol` command line. Each subcommand lives in its own module.
import { Command } from "commander";
import { GpuUnavailableError } from "../tensor/device.js";
import { registerConvert } from "./convert.js";
import { registerDemo } from "./demo.js";
import { registerForward } from "./forward.js";
import { helpConfig } from "./help.js";
import { registerInfo } from "./info.js";
import { registerInit } from "./init.js";
import { registerGrow } from "./grow.js";
import { registerPhantom } from "./phantom.js";
import { relayStderr, stderrRelayed } from "./quiet_stderr.js";
import { registerSegment } from "./segment.js";
import { registerSmoke } from "./smoke.js";
import { registerStatus } from "./status.js";
import { registerSubmit } from "./submit.js";
import { registerTrain } from "./train.js";
import { registerTune } from "./tune.js";
import { registerWorker } from "./worker.js";

async function main(): Promise<void> {
  const program = new Command();
  program.name("segvol").description("SegVol 3-D medical segmentation on WebGPU (Dawn), from the command line").version("0.1.0");
  program.configureHelp(helpConfig); // before the commands: they inherit it
  registerSmoke(program);
  registerInfo(program);
  registerConvert(program);
  registerForward(program);
  registerSegment(program);
  registerTrain(program);
  registerPhantom(program);
  registerInit(program);
  registerGrow(program);
  registerDemo(program);
  registerWorker(program);
  registerSubmit(program);
  registerStatus(program);
  registerTune(program);

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
}

// The command runs in a child whose stderr is relayed without Dawn's adapter
// notices (quiet_stderr.ts explains why it takes a process). Not `worker`: a
// long-lived service must stop when its own process is killed (worker.ts).
if (stderrRelayed() || process.argv[2] === "worker") await main();
else relayStderr();
