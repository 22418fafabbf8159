// `segvol segment`'s DICOM side: the input is a NIfTI file, a folder of
// DICOM files, or a series pulled from a PACS over DICOMweb (--dicomweb URL
// --study UID [--series UID]); `--out seg.dcm` writes a DICOM-SEG and
// --store sends it back with STOW-RS. Everything here is checked before the
// input is read, and the input is read (all its refusals) before the GPU starts.
import type { Command } from "commander";
import { existsSync, statSync } from "node:fs";
import { resolve, sep } from "node:path";
import { DicomWebClient, readDicomWebSeries } from "../dicom/dicomweb.js";
import { encodeDicomSeg, type DicomSegIds, type SegSegment } from "../dicom/seg.js";
import { readDicomSeries, type DicomSeries } from "../dicom/series.js";
import { seriesAsNifti } from "../dicom/to_nifti.js";
import { writeFileAtomic } from "../io/atomic.js";
import { readNifti, type NiftiVolume } from "../io/nifti.js";
import type { SegmentResult, Target } from "../segvol/pipeline/types.js";

export interface DicomFlags {
  out?: string;
  series?: string;
  dicomweb?: string;
  study?: string;
  store?: boolean;
  user?: string;
  password?: string;
  token?: string;
  insecure?: boolean;
}

/** The DICOM options of `segment`. Passwords and tokens may also come from the environment, to keep them off the command line. */
export function addDicomOptions(cmd: Command): Command {
  return addSeriesOption(cmd)
    .option("--dicomweb <url>", "DICOMweb service to pull the series from (e.g. http://localhost:8042/dicom-web), instead of <image>")
    .option("--study <uid>", "with --dicomweb: the StudyInstanceUID")
    .option("--store", "with --dicomweb: store the DICOM-SEG in the study (STOW-RS) and print its UIDs")
    .option("--user <name>", "with --dicomweb: HTTP basic user (password: --password or $SEGVOL_DICOMWEB_PASSWORD)")
    .option("--password <password>", "with --user: HTTP basic password")
    .option("--token <token>", "with --dicomweb: bearer token (or $SEGVOL_DICOMWEB_TOKEN)")
    .option("--insecure", "with --dicomweb: allow plain http to a host other than this machine");
}

/** --series, segment's and a queued job's. */
export function addSeriesOption(cmd: Command): Command {
  return cmd.option("--series <uid>", "SeriesInstanceUID to read when the DICOM folder (or the --study) holds several");
}

/** Whether --out names a DICOM-SEG. */
export const isDicomOut = (out: string | undefined): boolean => out !== undefined && out.toLowerCase().endsWith(".dcm");

/** Whether the input names a folder (a DICOM series) rather than a NIfTI file. */
export const isFolder = (image: string | undefined): boolean => image !== undefined && existsSync(image) && statSync(image).isDirectory();

/** Checks the flags' combinations (before any reading): one input, --study/--store with --dicomweb, a .dcm --out only from DICOM. */
export function checkDicomFlags(image: string | undefined, o: DicomFlags): void {
  if (o.dicomweb !== undefined && image !== undefined) throw new Error(`give either <image> or --dicomweb, not both`);
  if (o.dicomweb === undefined && image === undefined) throw new Error(`give an input: a NIfTI file, a DICOM folder, or --dicomweb URL --study UID`);
  if (o.dicomweb === undefined) {
    for (const flag of ["study", "store", "user", "password", "token", "insecure"] as const) {
      if (o[flag] !== undefined) throw new Error(`--${flag} goes with --dicomweb`);
    }
  } else if (o.study === undefined) {
    throw new Error("--dicomweb needs --study UID");
  }
  const folder = isFolder(image);
  if (image !== undefined && !folder && o.series !== undefined) throw new Error("--series goes with a DICOM folder or --dicomweb");
  if (o.out === undefined && !o.store) throw new Error("give --out (a .nii/.nii.gz mask, or a .dcm DICOM-SEG) or --store");
  if (isDicomOut(o.out) && image !== undefined && !folder) throw new Error(`--out ${o.out}: a DICOM-SEG needs a DICOM input (a folder of DICOM files or --dicomweb)`);
  if (folder && o.out !== undefined && resolve(o.out).startsWith(resolve(image!) + sep)) {
    throw new Error(`--out ${o.out}: is inside the input folder ${image}, where it would join the series' files; write it elsewhere`);
  }
}

/** The input volume, and the DICOM series (and service) it came from, if any. */
export interface SegmentInput {
  vol: NiftiVolume;
  dicom: DicomSeries | null;
  client: DicomWebClient | null;
}

/** Reads the input: a NIfTI file, a DICOM folder or a DICOMweb series; DICOM warnings go to stderr. */
export async function readSegmentInput(image: string | undefined, o: DicomFlags, maxVoxels: number): Promise<SegmentInput> {
  const onWarning = (w: string) => console.error(`warning: ${w}`);
  const opts = { maxVoxels, onWarning, ...(o.series !== undefined ? { seriesUid: o.series } : {}) };
  if (o.dicomweb !== undefined) {
    const client = new DicomWebClient(o.dicomweb, {
      user: o.user,
      password: o.password ?? (o.user !== undefined ? process.env.SEGVOL_DICOMWEB_PASSWORD : undefined),
      token: o.token ?? (o.user === undefined ? process.env.SEGVOL_DICOMWEB_TOKEN : undefined),
      insecure: o.insecure,
    });
    const dicom = await readDicomWebSeries(client, o.study!, opts);
    return { vol: seriesAsNifti(dicom), dicom, client };
  }
  if (isFolder(image)) {
    const dicom = readDicomSeries(image!, opts);
    return { vol: seriesAsNifti(dicom), dicom, client: null };
  }
  return { vol: readNifti(image!, { maxVoxels }), dicom: null, client: null };
}

/** The prompt a segment was made from, for its description: the text, or the spatial prompt. */
function promptOf(t: Target): string {
  if (t.text !== undefined) return t.text;
  const parts: string[] = [];
  if (t.box) parts.push(`box ${t.box.join(",")}`);
  for (const p of t.points ?? []) parts.push(`point ${p.ijk.join(",")}${p.label ? "" : " (negative)"}`);
  return parts.join("; ");
}

/** Writes --out as a DICOM-SEG and/or stores it (--store); returns its UIDs, or null when neither was asked. */
export async function writeDicomOutputs(input: SegmentInput, o: DicomFlags, result: SegmentResult, targets: readonly Target[], image: string | undefined): Promise<DicomSegIds | null> {
  if (!input.dicom || (!isDicomOut(o.out) && !o.store)) return null;
  const segments: SegSegment[] = result.targets.map((t, n) => ({ label: t.name, description: promptOf(targets[n]!), mask: t.mask }));
  const { bytes, ids } = encodeDicomSeg(input.dicom, segments);
  if (isDicomOut(o.out)) writeFileAtomic(o.out!, bytes, { inputPath: image, what: "writeDicomSeg" });
  if (o.store) await input.client!.store(input.dicom.studyInstanceUid, [{ bytes, sopInstanceUid: ids.sopInstanceUid }]);
  return ids;
}
