// Training throughput (`npx tsx bench/segvol_train.ts [small|demo|official] [--steps N] [--shared-sets] [--weights DIR] [--profile P]`):
//  - small: SegVol config A (test/fixtures/model, converted to a temp folder),
//    all parameters trainable, on three synthetic MSD cases;
//  - demo: the shipped demo model (weights/demo, or --weights DIR: another
//    configuration for the same organs, e.g. from segvol init) on six phantoms with the
//    recipe's step (every organ of the window, three prompt sets each, drawn
//    per organ or with --shared-sets once per step; organ-centred crops);
//  - official: the official configuration with random weights from
//    $SEGVOL_BENCH_DIR (default /tmp/segvol-official, written by
//    bench/segvol_model.ts), image encoder and text tower frozen, on two
//    synthetic 260×260×36 cases (six prompt sets per step).
// Reports steady-state steps/s and windows/s (one window per step; the first
// step, which compiles the shaders, is left out), GPU dispatches per step,
// and the peak bytes of live GPU tensors during training (weights,
// optimiser state and the tape). With --profile P the last P steps (and
// the final checkpoint write) are timed per kernel on the GPU (timestamp
// queries, one pass per dispatch: slower steps, so steps/s is then not
// reported) and the families and the longest launches are printed per step.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { niftiFromArray, writeNifti } from "../src/io/nifti.js";
import { writePhantom } from "../src/demo/phantom.js";
import { gpu, releaseGpu } from "../src/tensor/device.js";
import { train, type TrainOptions } from "../src/train/trainer.js";
import { convertCheckpoint } from "../src/segvol/convert.js";
import { launchRows, launchTable, profileRows, profileTable, type KernelLaunchRow, type KernelProfileRow } from "./kernel_profile.js";

const args = process.argv.slice(2);
const which = args.find((a) => a === "small" || a === "demo" || a === "official") ?? "small";
const si = args.indexOf("--steps");
const pi = args.indexOf("--profile");
const profileSteps = pi >= 0 ? Number(args[pi + 1]) : 0;
if (!Number.isInteger(profileSteps) || profileSteps < 0) throw new Error(`--profile ${args[pi + 1]}: expected a whole number of steps`);
const log = (s: string) => process.stderr.write(s + "\n");

/** An MSD folder of `count` cases (NIfTI dims I×J×K): a body box with a blob labelled 1. */
function writeData(dir: string, [I, J, K]: [number, number, number], count: number): void {
  mkdirSync(join(dir, "imagesTr"), { recursive: true });
  mkdirSync(join(dir, "labelsTr"), { recursive: true });
  for (let s = 0; s < count; s++) {
    const image = new Float32Array(I * J * K);
    const label = new Float32Array(I * J * K);
    const c = [K / 2, J / 2 + 3 * s, I / 2 - 2 * s];
    for (let k = 0; k < K; k++) {
      for (let j = 0; j < J; j++) {
        for (let i = 0; i < I; i++) {
          const x = i + I * (j + J * k);
          const body = k >= 1 && k < K - 1 && j >= 2 && j < J - 2 && i >= 2 && i < I - 2;
          const blob = Math.hypot((k - c[0]!) / (K / 4), (j - c[1]!) / (J / 5), (i - c[2]!) / (I / 5)) < 1;
          image[x] = body ? (blob ? 220 : 120) + 10 * Math.sin(i * 0.9 + j * 0.4 + k + s) : 0;
          label[x] = blob ? 1 : 0;
        }
      }
    }
    writeNifti(join(dir, "imagesTr", `c${s}.nii.gz`), niftiFromArray([I, J, K], image), image, "float32");
    writeNifti(join(dir, "labelsTr", `c${s}.nii.gz`), niftiFromArray([I, J, K], label), label, "uint8");
  }
}

const root = mkdtempSync(join(tmpdir(), "segvol-train-bench-"));
try {
  let weights: string;
  let freeze: string[];
  let steps: number;
  let categories = ["blob"];
  let recipe: Partial<TrainOptions> = {};
  if (which === "demo") {
    const wi = args.indexOf("--weights");
    weights = wi >= 0 ? args[wi + 1]! : "weights/demo";
    categories = ["liver", "spleen", "left kidney", "right kidney"];
    for (let seed = 1000; seed < 1006; seed++) writePhantom(join(root, "msd"), seed, { labels: categories });
    freeze = [];
    steps = si >= 0 ? Number(args[si + 1]) : 30;
    recipe = {
      augment: { resizeProb: 0.3, flipProb: 0, cropCentre: "category" },
      step: { categories: "all", setsPerCategory: 3, sharedSets: args.includes("--shared-sets") },
    };
  } else if (which === "small") {
    weights = join(root, "w");
    convertCheckpoint({ checkpoint: "test/fixtures/model/config_a.bin", outDir: weights, config: "test/fixtures/model/config_a.json" });
    writeData(join(root, "msd"), [36, 52, 18], 3);
    freeze = [];
    steps = si >= 0 ? Number(args[si + 1]) : 20;
  } else {
    weights = process.env.SEGVOL_BENCH_DIR ?? "/tmp/segvol-official";
    if (!existsSync(join(weights, "model.safetensors"))) throw new Error(`${weights}: no weights; run \`npx tsx bench/segvol_model.ts\` once to write them`);
    writeData(join(root, "msd"), [260, 260, 36], 2);
    freeze = ["image_encoder.", "text_encoder."];
    steps = si >= 0 ? Number(args[si + 1]) : 3;
  }
  if (profileSteps >= steps) throw new Error(`--profile ${profileSteps}: must be fewer than the ${steps} steps (the first compiles the shaders)`);
  const stamps: number[] = [];
  const counts: number[] = [];
  const t0 = performance.now();
  const r = await train({
    ...recipe,
    data: join(root, "msd"),
    categories,
    weights,
    out: join(root, "out"),
    steps,
    lr: 1e-4,
    warmup: 1,
    weightDecay: 1e-5,
    clip: 1,
    freeze,
    saveEvery: 0,
    seed: 0,
    resume: false,
    handleSigint: false,
    log: (l) => {
      if (l.startsWith("step ")) {
        stamps.push(performance.now());
        counts.push(gpu().dispatches);
        if (profileSteps > 0 && stamps.length === steps - profileSteps) gpu().startKernelProfile();
      }
      log(l);
    },
  });
  let profile: { families: KernelProfileRow[]; launches: KernelLaunchRow[] } | undefined;
  if (profileSteps > 0) {
    const kernels = await gpu().stopKernelProfile();
    // JSON: every launch; the table: the longest 15.
    profile = { families: profileRows(kernels, profileSteps), launches: launchRows(kernels, profileSteps, Infinity) };
    log(profileTable(profile.families) + "\n\n" + launchTable(profile.launches.slice(0, 15)));
  }
  const steady = stamps.length > 1 ? ((stamps.length - 1) * 1000) / (stamps[stamps.length - 1]! - stamps[0]!) : r.stepsPerSecond;
  const out = {
    config: which,
    shared_sets: which === "demo" ? args.includes("--shared-sets") : undefined,
    steps: r.step,
    load_and_first_step_s: Math.round(stamps[0]! - t0) / 1000,
    steps_per_s: profile ? null : Number(steady.toFixed(4)),
    windows_per_s: profile ? null : Number(steady.toFixed(4)),
    dispatches_per_step: counts.length > 1 ? Math.round((counts[counts.length - 1]! - counts[0]!) / (counts.length - 1)) : null,
    peak_gpu_mib: Math.round(r.peakBytes / 2 ** 20),
    last_loss: r.losses[r.losses.length - 1],
    kernel_profile: profile,
  };
  process.stdout.write(JSON.stringify(out) + "\n");
} finally {
  releaseGpu();
  rmSync(root, { recursive: true, force: true });
}
