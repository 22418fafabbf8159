// `segvol segment`: a CT volume (NIfTI, a DICOM folder, or a series over
// DICOMweb: segment_dicom.ts) and prompts in, masks in the volume's own
// geometry out (NIfTI, or a DICOM-SEG). Prompt coordinates are voxel indices
// (i, j, k) of the input's array, as a viewer shows them.
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { checkFinite, DEFAULT_MAX_VOXELS, writeNifti, type NiftiVolume } from "../io/nifti.js";
import { readCategories, resolveText } from "../segvol/categories.js";
import { loadConfig } from "../segvol/config.js";
import { SegVol, type Precision } from "../segvol/model.js";
import type { SegmentOptions, SegmentResult, Target, Vec3 } from "../segvol/pipeline/types.js";
import { releaseGpu } from "../tensor/device.js";
import { loadTunedChoices } from "../tune/cache.js";
import { examples } from "./help.js";
import { checkOutputFile, NIFTI_EXTENSIONS } from "./outputs.js";
import { collect, names, parseBox, parsePoint, parsePositiveInt, precisionOption } from "./parse.js";
import { progressStream } from "./quiet_stderr.js";
import { addDicomOptions, checkDicomFlags, isDicomOut, isFolder, readSegmentInput, writeDicomOutputs, type DicomFlags, type SegmentInput } from "./segment_dicom.js";

export interface SegmentOpts extends DicomFlags {
  weights: string;
  precision?: Precision;
  text?: string[];
  box?: string;
  point?: string[];
  out?: string;
  logits?: string;
  json?: boolean;
  allowUnknownText?: boolean;
  zoomIn: boolean;
  overlap: string;
  maxVoxels: string;
  progress: boolean;
}

/** Targets from the flags: one per --text (each also given the box/points), or one spatial target. */
export function targetsFromFlags(o: Pick<SegmentOpts, "text" | "box" | "point">): Target[] {
  const box = o.box ? parseBox("--box", o.box) : undefined;
  const points = o.point?.map((p) => {
    const { at, label } = parsePoint("--point", p);
    return { ijk: at, label };
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

/** Voxels of each label 1..count in a label map: what a user measures from the written file. */
export function labelCounts(map: Int16Array, count: number): number[] {
  const counts = new Array<number>(count + 1).fill(0);
  for (let v = 0; v < map.length; v++) counts[map[v]!]!++;
  return counts.slice(1);
}

function voxelMl(vol: NiftiVolume): number {
  return (vol.spacing[0] * vol.spacing[1] * vol.spacing[2]) / 1000;
}

/** The label map's JSON sidecar: label.nii.gz → label.json. */
export function sidecarPath(out: string): string {
  return out.replace(/(\.nii)?(\.gz)?$/i, "") + ".json";
}

export function registerSegment(program: Command): void {
  const cmd = program
    .command("segment")
    .description("segment a CT volume (.nii/.nii.gz, a DICOM folder, or a series over DICOMweb) by text, box and point prompts; writes masks in the input's geometry (NIfTI or DICOM-SEG)")
    .argument("[image]", "input CT: a NIfTI volume (.nii or .nii.gz) or a folder of DICOM files");
  addDicomOptions(addSegmentOptions(cmd, "segment"))
    .addHelpText(
      "after",
      examples([
        "segvol phantom --seed 7 --out phantoms        # a CT phantom to try: phantoms/imagesTr/phantom_7.nii.gz",
        "segvol segment phantoms/imagesTr/phantom_7.nii.gz --weights weights/demo --text liver --out liver.nii.gz",
        "segvol segment ct.nii.gz --weights weights/segvol --text liver --text spleen --out labels.nii.gz --json",
        "segvol segment ct.nii.gz --weights weights/segvol --box 120,200,40,260,330,90 --point 190,260,65 --out organ.nii.gz",
        "segvol segment dicom/ct-series --weights weights/segvol --text liver --out liver-seg.dcm",
        "segvol segment --dicomweb http://localhost:8042/dicom-web --study 1.2.3 --weights weights/segvol --text liver --store",
      ]),
    )
    .action((image: string | undefined, o: SegmentOpts) => runSegment(image, o));
}

/**
 * segment's options (less the DICOM ones: addDicomOptions), in its order.
 * `"job"` leaves out those of the run rather than of the request (--weights,
 * --json, --no-progress): the options of one queued segmentation, which
 * `segvol submit` takes as segment does.
 */
export function addSegmentOptions(cmd: Command, which: "segment" | "job"): Command {
  const run = which === "segment";
  if (run) cmd.requiredOption("--weights <dir>", "weights folder (written by `segvol convert`, or weights/demo)").addOption(precisionOption());
  cmd
    .option("--text <name>", "category to segment (e.g. liver), one of the folder's categories (`segvol info`); repeatable: several give a label map", names("--text"))
    .option("--allow-unknown-text", "let --text name things outside the folder's categories (open vocabulary; the model may answer with another structure)")
    .option("--box <i0,j0,k0,i1,j1,k1>", "box prompt: inclusive corners in voxel indices (i, j, k) of the input file's array")
    .option("--point <i,j,k[,label]>", "point prompt in voxel indices (i, j, k) of the input; label 1 positive (default), 0 negative; repeatable", collect)
    .option("--out <mask.nii.gz>", "output mask (uint8), or int16 label map (1, 2, … in --text order) plus a .json sidecar with several --text; .dcm: a DICOM-SEG, one segment per target (DICOM input)")
    .option("--logits <logits.nii.gz>", "also write the float32 logits (one target only)");
  if (run) cmd.option("--json", "print a machine-readable summary on stdout");
  cmd
    .option("--no-zoom-in", "zoom-out stage only (faster, coarser)")
    .option("--overlap <fraction>", "sliding-window overlap of the zoom-in stage, in [0, 1)", "0.5")
    .option("--max-voxels <n>", "refuse input volumes with more voxels (512×512×2048 by default: a bound on what a file can make segment allocate)", String(DEFAULT_MAX_VOXELS));
  if (run) cmd.option("--no-progress", "no progress bar on stderr");
  return cmd;
}

/** A checked request: its targets and the options in their parsed form. */
export interface SegmentRequest {
  targets: Target[];
  overlap: number;
  maxVoxels: number;
  /** Several targets and a NIfTI --out: an int16 label map with a JSON sidecar. */
  labelMapOut: boolean;
}

async function runSegment(image: string | undefined, o: SegmentOpts): Promise<void> {
  const started = performance.now();
  const req = checkRequest(image, o);
  const input = await readSegmentInput(image, o, req.maxVoxels);
  const vol = input.vol;
  checkFinite(vol);
  const result = await segmentWithProgress(vol, req, o);
  const voxels = writeMasks(image, o, vol, result, req);
  const seg = await writeDicomOutputs(input, o, result, req.targets, image);
  const summary = { ...summarize(image ?? `${o.dicomweb} study ${o.study}`, o, vol, result, voxels, started), ...dicomSummary(input, seg) };
  writeSidecar(image, o, req, summary);
  if (o.json) {
    process.stdout.write(JSON.stringify(summary) + "\n");
  } else {
    for (const t of summary.targets) {
      console.log(`${t.label}: ${t.name}: ${t.voxels} voxels, ${t.ml} mL, ${t.windows} windows, ${t.seconds} s`);
    }
    if (seg) console.log(`DICOM-SEG${o.store ? " stored" : ""}: SeriesInstanceUID ${seg.seriesInstanceUid} SOPInstanceUID ${seg.sopInstanceUid} (study ${seg.studyInstanceUid})`);
    console.log(`${o.out ? `wrote ${o.out}` : "done"} in ${summary.seconds} s (${result.stats.encodes} window encodes)`);
  }
}

/** A label map's JSON sidecar (label, name, voxels, mL per label), written atomically; nothing for other outputs. */
export function writeSidecar(image: string | undefined, o: Pick<SegmentOpts, "out">, req: SegmentRequest, summary: SegmentSummary): void {
  if (!req.labelMapOut) return;
  const labels = summary.targets.map(({ label, name, voxels: v, ml: m }) => ({ label, name, voxels: v, ml: m }));
  writeFileAtomic(sidecarPath(o.out!), new TextEncoder().encode(JSON.stringify({ labels }, null, 1) + "\n"), { inputPath: image });
}

/** The DICOM source series and the new SEG's UIDs, for the summary (segment's and a queued job's). */
export function dicomSummary(input: SegmentInput, seg: Awaited<ReturnType<typeof writeDicomOutputs>>) {
  if (!input.dicom) return {};
  return { series: input.dicom.seriesInstanceUid, ...(seg ? { seg } : {}) };
}

/** Everything about the request is checked before the volume is read or the GPU started. */
export function checkRequest(image: string | undefined, o: SegmentOpts): SegmentRequest {
  checkDicomFlags(image, o);
  const { targets, overlap, maxVoxels } = checkPromptFlags(o);
  const config = loadConfig(join(o.weights, "config.json"));
  if (targets.some((t) => t.text !== undefined)) {
    if (!config.text) throw new Error(`--text: the model in ${o.weights} has no text tower; use --box or --point`);
    const check = { categories: readCategories(o.weights), allowUnknown: o.allowUnknownText, source: o.weights, allowHint: "--allow-unknown-text" };
    for (const t of targets) if (t.text !== undefined) t.text = resolveText(t.text, check);
  }
  const labelMapOut = checkOutputFlags(image, o, targets);
  return { targets, overlap, maxVoxels, labelMapOut };
}

/** The checks of the prompt and number flags alone (no files, no weights): targets, --overlap, --max-voxels. */
export function checkPromptFlags(o: Pick<SegmentOpts, "text" | "box" | "point" | "overlap" | "maxVoxels">): { targets: Target[]; overlap: number; maxVoxels: number } {
  const targets = targetsFromFlags(o);
  const overlap = Number(o.overlap);
  if (o.overlap.trim() === "" || !(overlap >= 0 && overlap < 1)) throw new Error(`--overlap ${o.overlap}: must be in [0, 1)`);
  const maxVoxels = parsePositiveInt("--max-voxels", o.maxVoxels);
  return { targets, overlap, maxVoxels };
}

/**
 * The checks of --out (and its sidecar) and --logits: names, folders that
 * can be written, never the input. Returns whether --out is a label map.
 */
export function checkOutputFlags(image: string | undefined, o: Pick<SegmentOpts, "out" | "logits" | "dicomweb">, targets: readonly Target[]): boolean {
  const inputs = image === undefined ? [] : [image];
  const labelMapOut = targets.length > 1 && o.out !== undefined && !isDicomOut(o.out);
  const outExtensions = o.dicomweb !== undefined || isFolder(image) ? [...NIFTI_EXTENSIONS, ".dcm"] : NIFTI_EXTENSIONS;
  if (o.out !== undefined) checkOutputFile(o.out, { flag: "--out", extensions: outExtensions, inputs });
  if (labelMapOut) checkOutputFile(sidecarPath(o.out!), { flag: "--out's sidecar", extensions: [".json"], inputs });
  if (o.logits) {
    checkOutputFile(o.logits, { flag: "--logits", extensions: NIFTI_EXTENSIONS, inputs });
    if (o.out !== undefined && resolve(o.logits) === resolve(o.out)) throw new Error("--logits and --out name the same file");
    if (labelMapOut) throw new Error("--logits writes one target's logits; give a single --text (or only spatial prompts)");
  }
  return labelMapOut;
}

/** The pipeline's options that the request sets (SegVol.segment's, less onProgress). */
export function pipelineOptions(req: SegmentRequest, o: Pick<SegmentOpts, "zoomIn" | "allowUnknownText">): Omit<SegmentOptions, "onProgress"> {
  return { zoomIn: o.zoomIn, overlap: req.overlap, allowUnknownText: o.allowUnknownText };
}

/** Loads the model and segments, with a progress bar on stderr unless --no-progress; the model and the GPU are released whatever happens. */
async function segmentWithProgress(vol: NiftiVolume, req: SegmentRequest, o: SegmentOpts): Promise<SegmentResult> {
  const model = await SegVol.fromWeights(o.weights, { precision: o.precision });
  await loadTunedChoices(); // winners of an earlier `segvol tune`, if any
  const stream = o.progress ? progressStream() : null;
  const bar = stream ? new SingleBar({ format: "{stage} [{bar}] {value}/{total} windows", hideCursor: true, stream }) : null;
  let result: SegmentResult;
  try {
    let barStarted = false;
    result = await model.segment({ dims: vol.dims as Vec3, data: vol.data }, req.targets, {
      ...pipelineOptions(req, o),
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
  return result;
}

/**
 * Writes --out (a mask, or a label map for several targets) and --logits;
 * returns each target's voxel count in the written file: in a label map, a
 * voxel claimed by several targets counts for the one it was given.
 */
export function writeMasks(image: string | undefined, o: SegmentOpts, vol: NiftiVolume, result: SegmentResult, req: SegmentRequest): number[] {
  let voxels: number[];
  if (req.labelMapOut) {
    const map = labelMap(result, vol.data.length);
    writeNifti(o.out!, vol, map, "int16", { inputPath: image });
    voxels = labelCounts(map, req.targets.length);
  } else if (o.out === undefined || isDicomOut(o.out)) {
    // A DICOM-SEG (written by writeDicomOutputs) keeps each target's whole mask: segments may overlap.
    voxels = result.targets.map((t) => t.voxels);
  } else {
    writeNifti(o.out, vol, result.targets[0]!.mask, "uint8", { inputPath: image });
    voxels = [result.targets[0]!.voxels];
  }
  if (o.logits) writeNifti(o.logits, vol, result.targets[0]!.logits, "float32", { inputPath: image });
  return voxels;
}

/** What `segment --json` prints (and a queued job leaves as its result), less the DICOM fields. */
export type SegmentSummary = ReturnType<typeof summarize>;

/** The run's summary (--json prints it): per target its label, voxels, mL, time and windows; the pipeline's stats. */
export function summarize(image: string, o: SegmentOpts, vol: NiftiVolume, result: SegmentResult, voxels: number[], started: number) {
  const ml = voxelMl(vol);
  return {
    image,
    out: o.out,
    targets: result.targets.map((t, n) => ({
      label: n + 1,
      name: t.name,
      voxels: voxels[n]!,
      ml: Math.round(voxels[n]! * ml * 1000) / 1000,
      seconds: Math.round(t.seconds * 1000) / 1000,
      windows: t.windows,
    })),
    stats: {
      ...result.stats,
      seconds: Object.fromEntries(Object.entries(result.stats.seconds).map(([k, v]) => [k, Math.round(v * 1000) / 1000])),
    },
    seconds: Math.round(performance.now() - started) / 1000,
  };
}
