// `segvol forward` (one model window, no pre/post-processing) and
// `segvol tokenize`.
import type { Command } from "commander";
import { readNpy, writeNpy } from "../io/npy.js";
import { join } from "node:path";
import { loadConfig } from "../segvol/config.js";
import { SegVol, validateWindowPrompt, type WindowPrompt } from "../segvol/model.js";
import type { Vec3 } from "../segvol/prompt_encoder.js";
import { ClipTokenizer } from "../segvol/tokenizer.js";
import { releaseGpu } from "../tensor/device.js";
import { collect, parseIntList } from "./parse.js";

interface ForwardOpts {
  weights: string;
  image: string;
  text?: string;
  box?: string;
  point?: string[];
  out: string;
}

export function registerForward(program: Command): void {
  program
    .command("forward")
    .description("run the network on one model window (float32 .npy [D,H,W] or [1,1,D,H,W]) and write its logits")
    .requiredOption("--weights <dir>", "folder written by `segvol convert`")
    .requiredOption("--image <window.npy>", "float32 window equal to the config's spatial_size")
    .option("--text <name>", "category name, put into the config's template")
    .option("--box <d0,h0,w0,d1,h1,w1>", "box prompt in window voxel indices (inclusive corners)")
    .option("--point <d,h,w,label>", "point prompt (label 1 positive, 0 negative); repeatable", collect)
    .requiredOption("--out <logits.npy>", "output float32 [1,1,D,H,W] logits")
    .action(async (o: ForwardOpts) => {
      const prompt: WindowPrompt = {};
      if (o.box) prompt.box = parseIntList("--box", o.box, 6) as WindowPrompt["box"];
      if (o.point?.length) {
        const pts = o.point.map((p) => parseIntList("--point", p, 4));
        prompt.points = { coords: pts.map((p) => p.slice(0, 3) as Vec3), labels: pts.map((p) => p[3]!) };
        pts.forEach((p) => {
          if (p[3] !== 0 && p[3] !== 1) throw new Error(`--point ${p.join(",")}: label must be 1 (positive) or 0 (negative)`);
        });
      }
      if (o.text !== undefined) prompt.text = o.text;
      // Prompt and window are checked against config.json before any GPU work.
      const config = loadConfig(join(o.weights, "config.json"));
      validateWindowPrompt(config, prompt);
      const npy = readNpy(o.image);
      const [D, H, W] = config.spatial_size;
      const okShape =
        (npy.shape.length === 3 && npy.shape.join() === [D, H, W].join()) ||
        (npy.shape.length === 5 && npy.shape.join() === [1, 1, D, H, W].join());
      if (!okShape) throw new Error(`${o.image}: shape [${npy.shape.join(", ")}] is not the window [${D}, ${H}, ${W}] (or [1, 1, ${D}, ${H}, ${W}])`);
      if (npy.dtype !== "f32") throw new Error(`${o.image}: dtype ${npy.dtype}, expected float32`);
      const model = await SegVol.fromWeights(o.weights);
      try {
        const logits = await model.forward(npy.data as Float32Array, prompt);
        writeNpy(o.out, logits, [1, 1, D, H, W]);
      } finally {
        model.dispose();
        releaseGpu();
      }
    });

  program
    .command("tokenize")
    .description("print the token ids (bos and eos included, template not applied) of each text as a JSON array")
    .requiredOption("--weights <dir>", "folder with tokenizer.json or vocab.json + merges.txt")
    .argument("<text...>")
    .action((texts: string[], o: { weights: string }) => {
      const tok = ClipTokenizer.fromDir(o.weights);
      for (const t of texts) process.stdout.write(JSON.stringify(tok.encode(t)) + "\n");
    });
}
