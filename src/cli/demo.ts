// `segvol demo [--out DIR] [--json] [--weights DIR] [--seed N] [--precision f16]`: the
// embedded demo model segments an unseen phantom by text, box and point
// prompts (src/demo/demo.ts) and reports each target's Dice and time. With
// --json only the summary goes to stdout; progress always goes to stderr.
import type { Command } from "commander";
import type { Precision } from "../segvol/model.js";
import { examples } from "./help.js";
import { precisionOption } from "./parse.js";
import { checkDemoWeights, DEMO_SEED, runDemo, type DemoResult } from "../demo/demo.js";
import { demoWeightsDir } from "../node/package_files.js";

interface DemoFlags {
  out: string;
  json?: boolean;
  weights?: string;
  seed: string;
  precision: Precision;
}

/** The human-readable report: a header, one `name  prompt  dice  seconds` line per target, the total. */
export function demoTable(r: DemoResult, out: string): string[] {
  const w = Math.max(4, ...r.targets.map((t) => t.name.length));
  return [
    `${"name".padEnd(w)}  prompt  dice   seconds`,
    ...r.targets.map((t) => `${t.name.padEnd(w)}  ${t.prompt.padEnd(6)}  ${t.dice.toFixed(3)}  ${t.seconds.toFixed(2)}`),
    `total ${r.seconds.toFixed(1)} s; wrote ${r.files.length} files to ${out}`,
  ];
}

function seedFlag(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`--seed ${v}: expected an integer in [0, 2^32)`);
  return n;
}

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("segment an unseen synthetic CT phantom with the embedded demo model by text, box and point prompts; prints Dice per target")
    .option("--out <dir>", "output folder (replaced only if empty or a previous demo output)", "segvol-demo")
    .option("--json", 'print only {"targets": [{name, prompt, dice, seconds}], "seconds"} on stdout')
    .option("--weights <dir>", "weights folder (default: the package's weights/demo)")
    .option("--seed <n>", "phantom seed (the model's training seeds, recipe.json trainSeeds, are refused)", String(DEMO_SEED))
    .addOption(precisionOption())
    .addHelpText("after", examples(["segvol demo", "segvol demo --seed 5001 --out demo-5001 --json"]))
    .action(async (o: DemoFlags) => {
      const seed = seedFlag(o.seed);
      const weights = o.weights ?? demoWeightsDir();
      checkDemoWeights(weights);
      const r = await runDemo({ weights, out: o.out, seed, precision: o.precision, onProgress: (line) => console.error(line) });
      if (o.json) {
        process.stdout.write(JSON.stringify({ targets: r.targets, seconds: r.seconds }) + "\n");
        return;
      }
      for (const line of demoTable(r, o.out)) console.log(line);
    });
}
