// `segvol segment`: a CT volume (NIfTI) and prompts in, masks in the
// volume's own geometry out. Prompt coordinates are voxel indices (i, j, k)
// of the file's array, as a viewer shows them.
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { resolve } from "node:path";
import { assertNotInput, writeFileAtomic } from "../io/atomic.js";
import { checkFinite, readNifti, writeNifti, type NiftiVolume } from "../io/nifti.js";
import { SegVol } from "../segvol/model.js";
import type { SegmentResult, Target, Vec3 } from "../segvol/pipeline/types.js";
import { releaseGpu } from "../tensor/device.js";
import { collect, parseIntList } from "./parse.js";

interface SegmentOpts {
  weights: string;
  text?: string[];
  box?: string;
  point?: string[];
  out: string;
  logits?: string;
  json?: boolean;
  zoomIn: boolean;
  overlap: string;
  progress: boolean;
}

/** Targets from the flags: one per --text (each also given the box/points), or one spatial target. */
export function targetsFromFlags(o: Pick<SegmentOpts, "text" | "box" | "point">): Target[] {
  const box = o.box ? (parseIntList("--box", o.box, 6) as Target["box"]) : undefined;
  const points = o.point?.map((p) => {
    const parts = p.split(",");
    const v = parseIntList("--point", p, parts.length === 3 ? 3 : 4);
    const label = v.length === 4 ? v[3]! : 1;
    if (label !== 0 && label !== 1) throw new Error(`--point ${p}: label must be 1 (positive) or 0 (negative), got ${label}`);
    return { ijk: [v[0]!, v[1]!, v[2]!] as Vec3, label: label as 0 | 1 };
  });
  const spatial: Partial<Target> = {};
  if (box) spatial.box = box;
  if (points?.length) spatial.points = points;
  if (o.text?.length) return o.text.map((name) => ({ name, text: name, ...spatial }));
  if (!box && !points?.length) throw new Error("segment: give at least one prompt (--text, --box or --point)");
  return [{ name: box ? "box" : "points", ...spatial }];
}

/** Label map: each voxel gets the target whose positive logit is highest (1-based, in the order given). */
export function labelMap(result: SegmentResult, size: number): Int16Array {
  const out = new Int16Array(size);
  const best = new Float32Array(size).fill(-Infinity);
  result.targets.forEach((t, n) => {
    for (let v = 0; v < size; v++) {
      if (t.mask[v] && t.logits[v]! > best[v]!) {
        best[v] = t.logits[v]!;
        out[v] = n + 1;
      }
    }
  });
  return out;
}

function voxelMl(vol: NiftiVolume): number {
  return (vol.spacing[0] * vol.spacing[1] * vol.spacing[2]) / 1000;
}

export function registerSegment(program: Command): void {
  program
    .command("segment")
    .description("segment a CT volume (.nii/.nii.gz) by text, box and point prompts; writes masks in the input's geometry")
    .argument("<image>", "input CT volume (.nii or .nii.gz)")
    .requiredOption("--weights <dir>", "folder written by `segvol convert`")
    .option("--text <name>", "category to segment (e.g. liver); repeatable: several give a label map", collect)
    .option("--box <i0,j0,k0,i1,j1,k1>", "box prompt in input voxel indices (inclusive corners)")
    .option("--point <i,j,k[,label]>", "point prompt in input voxel indices (label 1 positive (default), 0 negative); repeatable", collect)
    .requiredOption("--out <mask.nii.gz>", "output mask (uint8), or int16 label map with several --text")
    .option("--logits <logits.nii.gz>", "also write the float32 logits (one target only)")
    .option("--json", "print a machine-readable summary on stdout")
    .option("--no-zoom-in", "zoom-out stage only (faster, coarser)")
    .option("--overlap <fraction>", "sliding-window overlap of the zoom-in stage", "0.5")
    .option("--no-progress", "no progress bar on stderr")
    .action(async (image: string, o: SegmentOpts) => {
      const started = performance.now();
      // Everything about the request is checked before the volume is read or the GPU started.
      const targets = targetsFromFlags(o);
      const overlap = Number(o.overlap);
      if (!(overlap >= 0 && overlap < 1)) throw new Error(`--overlap ${o.overlap}: must be in [0, 1)`);
      assertNotInput(o.out, image, "--out");
      if (o.logits) {
        assertNotInput(o.logits, image, "--logits");
        if (resolve(o.logits) === resolve(o.out)) throw new Error("--logits and --out name the same file");
        if (targets.length > 1) throw new Error("--logits writes one target's logits; give a single --text (or only spatial prompts)");
      }
      const vol = readNifti(image);
      checkFinite(vol);
      const model = await SegVol.fromWeights(o.weights);
      const bar = o.progress && process.stderr.isTTY ? new SingleBar({ format: "{stage} [{bar}] {value}/{total} windows", hideCursor: true }) : null;
      let result: SegmentResult;
      try {
        let barStarted = false;
        result = await model.segment({ dims: vol.dims as Vec3, data: vol.data }, targets, {
          zoomIn: o.zoomIn,
          overlap,
          onProgress: (done, total, stage) => {
            if (!bar) return;
            if (!barStarted) {
              bar.start(total, 0, { stage });
              barStarted = true;
            }
            bar.setTotal(total);
            bar.update(done, { stage });
          },
        });
        bar?.stop();
      } finally {
        model.dispose();
        releaseGpu();
      }
      const size = vol.data.length;
      const ml = voxelMl(vol);
      if (targets.length === 1) {
        writeNifti(o.out, vol, result.targets[0]!.mask, "uint8", { inputPath: image });
      } else {
        writeNifti(o.out, vol, labelMap(result, size), "int16", { inputPath: image });
      }
      if (o.logits) writeNifti(o.logits, vol, result.targets[0]!.logits, "float32", { inputPath: image });
      const summary = {
        image,
        out: o.out,
        targets: result.targets.map((t, n) => ({
          label: n + 1,
          name: t.name,
          voxels: t.voxels,
          ml: Math.round(t.voxels * ml * 1000) / 1000,
          seconds: Math.round(t.seconds * 1000) / 1000,
          windows: t.windows,
        })),
        stats: {
          ...result.stats,
          seconds: Object.fromEntries(Object.entries(result.stats.seconds).map(([k, v]) => [k, Math.round(v * 1000) / 1000])),
        },
        seconds: Math.round(performance.now() - started) / 1000,
      };
      if (targets.length > 1) {
        const sidecar = o.out.replace(/(\.nii)?(\.gz)?$/, "") + ".json";
        const labels = summary.targets.map(({ label, name, voxels, ml: v }) => ({ label, name, voxels, ml: v }));
        writeFileAtomic(sidecar, new TextEncoder().encode(JSON.stringify({ labels }, null, 1) + "\n"), { inputPath: image });
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(summary) + "\n");
      } else {
        for (const t of summary.targets) {
          console.log(`${t.label}: ${t.name}: ${t.voxels} voxels, ${t.ml} mL, ${t.windows} windows, ${t.seconds} s`);
        }
        console.log(`wrote ${o.out} in ${summary.seconds} s (${result.stats.encodes} window encodes)`);
      }
    });
}
