// `segvol forward` (one model window, no pre/post-processing) and
// `segvol tokenize`.
import type { Command } from "commander";
import { readNpy, writeNpy } from "../io/npy.js";
import { join } from "node:path";
import { readCategories, resolveText } from "../segvol/categories.js";
import { loadConfig } from "../segvol/config.js";
import { SegVol, validateWindowPrompt, type WindowPrompt, type Precision } from "../segvol/model.js";
import { ClipTokenizer } from "../segvol/tokenizer.js";
import { releaseGpu } from "../tensor/device.js";
import { loadTunedChoices } from "../tune/cache.js";
import { examples } from "./help.js";
import { checkOutputFile } from "./outputs.js";
import { collect, parseBox, parsePoint, precisionOption } from "./parse.js";

interface ForwardOpts {
  weights: string;
  precision: Precision;
  image: string;
  text?: string;
  allowUnknownText?: boolean;
  box?: string;
  point?: string[];
  out: string;
}

export function registerForward(program: Command): void {
  program
    .command("forward")
    .description("run the network on one model window (float32 .npy [D,H,W] or [1,1,D,H,W]) and write its logits")
    .requiredOption("--weights <dir>", "weights folder (written by `segvol convert`, or weights/demo)")
    .addOption(precisionOption())
    .requiredOption("--image <window.npy>", "float32 window equal to the config's spatial_size")
    .option("--text <name>", "category name (one of the folder's categories, `segvol info`), put into the config's template")
    .option("--allow-unknown-text", "let --text name things outside the folder's categories (open vocabulary)")
    .option("--box <d0,h0,w0,d1,h1,w1>", "box prompt: inclusive corners in voxel indices (d, h, w) of the window array, first axis first")
    .option("--point <d,h,w[,label]>", "point prompt in voxel indices (d, h, w) of the window array; label 1 positive (default), 0 negative; repeatable", collect)
    .requiredOption("--out <logits.npy>", "output float32 [1,1,D,H,W] logits")
    .addHelpText(
      "after",
      examples([
        "segvol forward --weights weights/demo --image window.npy --text liver --out logits.npy",
        "segvol forward --weights weights/demo --image window.npy --box 4,10,12,20,40,44 --point 12,25,28 --out logits.npy",
      ]),
    )
    .action(async (o: ForwardOpts) => {
      const prompt: WindowPrompt = {};
      if (o.box) prompt.box = parseBox("--box", o.box);
      if (o.point?.length) {
        const pts = o.point.map((p) => parsePoint("--point", p));
        prompt.points = { coords: pts.map((p) => p.at), labels: pts.map((p) => p.label) };
      }
      // Prompt, window and output are checked before any GPU work.
      const config = loadConfig(join(o.weights, "config.json"));
      if (o.text !== undefined) prompt.text = o.text;
      validateWindowPrompt(config, prompt);
      if (o.text !== undefined) {
        prompt.text = resolveText(o.text, { categories: readCategories(o.weights), allowUnknown: o.allowUnknownText, source: o.weights, allowHint: "--allow-unknown-text" });
      }
      checkOutputFile(o.out, { flag: "--out", extensions: [".npy"], inputs: [o.image] });
      const npy = readNpy(o.image);
      const [D, H, W] = config.spatial_size;
      const okShape =
        (npy.shape.length === 3 && npy.shape.join() === [D, H, W].join()) ||
        (npy.shape.length === 5 && npy.shape.join() === [1, 1, D, H, W].join());
      if (!okShape) throw new Error(`${o.image}: shape [${npy.shape.join(", ")}] is not the window [${D}, ${H}, ${W}] (or [1, 1, ${D}, ${H}, ${W}])`);
      if (npy.dtype !== "f32") throw new Error(`${o.image}: dtype ${npy.dtype}, expected float32`);
      const model = await SegVol.fromWeights(o.weights, { precision: o.precision });
      await loadTunedChoices(); // winners of an earlier `segvol tune`, if any
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
    .argument("<text...>", "texts to tokenize, each as given")
    .addHelpText("after", examples(['segvol tokenize --weights weights/demo "A computerized tomography of a liver." spleen']))
    .action((texts: string[], o: { weights: string }) => {
      const tok = ClipTokenizer.fromDir(o.weights);
      for (const t of texts) process.stdout.write(JSON.stringify(tok.encode(t)) + "\n");
    });
}
