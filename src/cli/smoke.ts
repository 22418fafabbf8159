// `segvol smoke`: prints the adapter and runs one kernel against a host
// reference — the quickest check that Dawn and the driver work.
import type { Command } from "commander";
import { examples } from "./help.js";
import { unary } from "../kernels/elementwise.js";
import { initGpu, releaseGpu } from "../tensor/device.js";
import { Tensor } from "../tensor/tensor.js";

export function registerSmoke(program: Command): void {
  program
    .command("smoke")
    .description("print the WebGPU adapter and run a kernel against a CPU reference")
    .option("--json", "print a JSON summary on stdout")
    .addHelpText("after", examples(["segvol smoke", "segvol smoke --json"]))
    .action(async (opts: { json?: boolean }) => {
      const g = await initGpu();
      try {
        const n = 1 << 20;
        const host = new Float32Array(n);
        for (let i = 0; i < n; i++) host[i] = Math.sin(i * 0.001) * 4;
        const t0 = performance.now();
        const x = Tensor.from(host, [n]);
        const y = await unary("sigmoid", x).readFloat32();
        const ms = performance.now() - t0;
        let maxErr = 0;
        for (let i = 0; i < n; i++) maxErr = Math.max(maxErr, Math.abs(y[i]! - 1 / (1 + Math.exp(-host[i]!))));
        const ok = maxErr < 1e-5;
        const a = g.adapter;
        const summary = {
          adapter: { vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description },
          features: { "shader-f16": g.hasF16, subgroups: g.hasSubgroups },
          limits: { maxBufferSize: g.maxBufferBytes, maxStorageBufferBindingSize: g.maxBindingBytes },
          kernel: { op: "sigmoid", elements: n, ms: Math.round(ms * 10) / 10, maxAbsError: maxErr, ok },
        };
        if (opts.json) {
          process.stdout.write(JSON.stringify(summary) + "\n");
        } else {
          console.log(`adapter: ${a.description || a.device || "(unnamed)"} [${a.vendor} ${a.architecture}]`);
          console.log(`features: shader-f16=${g.hasF16} subgroups=${g.hasSubgroups}`);
          console.log(`limits: maxBufferSize=${g.maxBufferBytes} maxStorageBufferBindingSize=${g.maxBindingBytes}`);
          console.log(`kernel: sigmoid over ${n} elements in ${summary.kernel.ms} ms, max |error| ${maxErr.toExponential(2)}: ${ok ? "OK" : "WRONG"}`);
        }
        if (!ok) process.exitCode = 1;
      } finally {
        releaseGpu();
      }
    });
}
