// `segvol phantom`: synthetic abdominal CT volumes with exact label maps, in
// the Medical Segmentation Decathlon layout that `segvol train --data` reads.
import type { Command } from "commander";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PHANTOM_LABELS, selectLabels, writePhantom, type Vec3, type WritePhantomOptions } from "../demo/phantom.js";
import { renderSlices, writePng } from "../demo/render.js";
import { examples } from "./help.js";
import { names, parseIntList } from "./parse.js";

interface PhantomFlags {
  seed: string;
  out: string;
  count: string;
  dims?: string;
  spacing?: string;
  png?: boolean;
  labels?: string[];
}

function int(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} ${v}: expected an integer in [${min}, ${max}]`);
  return n;
}

function spacingList(v: string): Vec3 {
  const parts = v.split(",").map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.length !== 3 || parts.some((s) => s === "") || !nums.every((x) => Number.isFinite(x) && x > 0)) {
    throw new Error(`--spacing ${v}: expected three positive numbers in mm, e.g. 1.2,1.2,3`);
  }
  return nums as Vec3;
}

export function registerPhantom(program: Command): void {
  program
    .command("phantom")
    .description("write synthetic abdominal CT phantoms with their label maps (DIR/imagesTr, DIR/labelsTr, DIR/dataset.json)")
    .requiredOption("--seed <n>", "seed of the first phantom (phantom_<seed>.nii.gz)")
    .requiredOption("--out <dir>", "dataset folder (created if missing)")
    .option("--count <k>", "number of phantoms, seeds seed..seed+k-1", "1")
    .option("--dims <i,j,k>", "voxels per axis (default: varies with the seed)")
    .option("--spacing <x,y,z>", "voxel size in mm (default: varies with the seed)")
    .option("--labels <name>", `organ to keep, written as label values 1..K in the order given; repeatable (or comma-separated); default: all (${PHANTOM_LABELS.slice(1).join(", ")})`, names("--labels"))
    .option("--png", "also write DIR/previews/phantom_<seed>.png (slices with the labels overlaid)")
    .addHelpText(
      "after",
      examples([
        "segvol phantom --seed 7 --out phantoms        # phantoms/imagesTr/phantom_7.nii.gz and labelsTr/phantom_7.nii.gz",
        "segvol phantom --seed 1 --count 8 --out data/phantoms --labels liver --labels spleen --png",
      ]),
    )
    .action((o: PhantomFlags) => {
      const seed = int("--seed", o.seed, 0, 0xffffffff);
      const count = int("--count", o.count, 1, 100000);
      if (seed + count - 1 > 0xffffffff) throw new Error(`--seed ${seed} --count ${count}: seeds must stay below 2^32`);
      const opts: WritePhantomOptions = {};
      if (o.dims) opts.dims = parseIntList("--dims", o.dims, 3) as Vec3;
      if (o.spacing) opts.spacing = spacingList(o.spacing);
      if (o.labels !== undefined) {
        selectLabels(new Uint8Array(0), o.labels); // checks the names before anything is written
        opts.labels = o.labels;
      }
      const kept = opts.labels ?? PHANTOM_LABELS.slice(1);
      const started = performance.now();
      const written: string[] = [];
      for (let n = 0; n < count; n++) {
        const { name, phantom: ph } = writePhantom(o.out, seed + n, opts);
        written.push(name);
        if (o.png) {
          mkdirSync(join(o.out, "previews"), { recursive: true });
          const masks = kept.map((label) => {
            const l = PHANTOM_LABELS.indexOf(label);
            return { name: label, mask: ph.labels.map((v) => (v === l ? 1 : 0)) };
          });
          writePng(join(o.out, "previews", `${name}.png`), renderSlices({ image: ph.image, dims: ph.dims, spacing: ph.spacing, masks, title: name }));
        }
      }
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      console.log(`wrote ${count} phantom${count > 1 ? "s" : ""} (${written[0]}${count > 1 ? ` .. ${written[count - 1]}` : ""}) to ${o.out} in ${secs} s`);
      console.log(`labels 1..${kept.length} (--categories for segvol train): ${kept.join(",")}`);
    });
}
