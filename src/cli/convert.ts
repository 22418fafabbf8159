// `segvol convert <checkpoint> --out <dir> [--config <config.json>]
// [--tokenizer <dir>] [--dtype f32|f16]`: turns the official PyTorch
// checkpoint (or a prefixed safetensors file) into a weights folder the
// library loads. The work is src/segvol/convert.ts; this is argument plumbing.
import type { Command } from "commander";
import { convertCheckpoint, ConvertMismatchError } from "../segvol/convert.js";
import { examples } from "./help.js";

export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description("convert a PyTorch (.bin/.pth) or safetensors SegVol checkpoint into a weights folder")
    .argument("<checkpoint>", "pytorch_model.bin, SegVol_v1.pth, or a .safetensors file")
    .requiredOption("--out <dir>", "output folder (created; replaced only if it is a previous convert output)")
    .option("--config <config.json>", "model config (partial files merge over the official defaults)")
    .option(
      "--tokenizer <dir>",
      "folder with tokenizer.json / vocab.json + merges.txt (default: the checkpoint's folder; if it has none, the CLIP vocabulary shipped with the package)",
    )
    .option("--dtype <dtype>", "stored precision: f32 (bit-exact) or f16", "f32")
    .addHelpText(
      "after",
      examples([
        "segvol convert path/to/pytorch_model.bin --out weights/segvol",
        "segvol convert SegVol_v1.pth --out weights/segvol-f16 --dtype f16",
        "segvol convert model.safetensors --out weights/small --config small_config.json --tokenizer path/to/tokenizer",
      ]),
    )
    .action((checkpoint: string, opts: { out: string; config?: string; tokenizer?: string; dtype: string }) => {
      if (opts.dtype !== "f32" && opts.dtype !== "f16") throw new Error(`convert: --dtype must be f32 or f16, got "${opts.dtype}"`);
      const t0 = performance.now();
      try {
        const r = convertCheckpoint({
          checkpoint,
          outDir: opts.out,
          config: opts.config,
          tokenizerDir: opts.tokenizer,
          dtype: opts.dtype,
          log: (line) => console.error(line),
        });
        for (const w of r.warnings) console.error(`warning: ${w}`);
        if (r.ignored.length) console.error(`ignored (not weights): ${r.ignored.join(", ")}`);
        const s = ((performance.now() - t0) / 1000).toFixed(1);
        console.log(`${r.outDir}: ${r.tensors} tensors, ${r.parameters} parameters (${(r.bytes / 1e6).toFixed(1)} MB), ${r.files.join(", ")} in ${s} s`);
      } catch (e) {
        // Every problem on its own line first; main prints the one-line summary.
        if (e instanceof ConvertMismatchError) console.error(e.details());
        throw e;
      }
    });
}
