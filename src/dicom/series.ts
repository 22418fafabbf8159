// A DICOM series → the Volume the pipeline takes (voxels i fastest: i the
// column, j the row, k the slice along the normal) with its affine, and the
// metadata a DICOM-SEG needs to reference it. Two passes: every file's
// header first (grouping, the choice of series, the geometry checks, the
// size bound), then the chosen slices' pixels, one file at a time, straight
// into the volume. Nothing is allocated for voxels before the headers pass.
import { DEFAULT_MAX_VOXELS, type VoxelArray } from "../io/nifti.js";
import { DicomError, shown } from "./errors.js";
import { DEFAULT_MAX_FILE_BYTES, parseDicom } from "./file.js";
import { planStack, rasAffine, type SliceGeometry, type Vec3 } from "./geometry.js";
import { pixelFormat, VolumeBuilder, type PixelFormat } from "./pixels.js";
import { folderSources, type DicomSource } from "./sources.js";

const BIG_ENDIAN = "1.2.840.10008.1.2.2";

/** A dataset keyed by DICOM keyword (PatientID, SeriesDescription, …), as dcmjs "naturalizes" it. */
export type DicomDataset = Record<string, unknown>;

export interface ReadDicomOptions {
  /** Which series to read when the files hold several (SeriesInstanceUID). */
  seriesUid?: string;
  /** Refuse series of more voxels (default DEFAULT_MAX_VOXELS, as readNifti). */
  maxVoxels?: number;
  /** Refuse files larger than this unread (default 64 MiB). */
  maxFileBytes?: number;
  /** Called with each warning (a modality other than CT); they are also returned. */
  onWarning?: (message: string) => void;
}

/** One source image of the series, in volume order (k). */
export interface DicomInstance {
  sopClassUid: string;
  sopInstanceUid: string;
  /** ImagePositionPatient, LPS mm. */
  position: Vec3;
}

/** A series read as a volume, with what a DICOM-SEG needs to reference it. */
export interface DicomSeries {
  /** Voxels along i (columns), j (rows), k (slices). */
  dims: Vec3;
  /** Rescaled values (HU for CT), i fastest: int16 when they all fit, else float32. */
  data: VoxelArray;
  /** Voxel size along i, j, k, mm. */
  spacing: Vec3;
  /** Voxel (i, j, k) → DICOM patient coordinates (LPS mm), 4×4. */
  affineLps: number[][];
  /** Voxel → RAS mm, 4×4: the NIfTI affine of the same grid. */
  affine: number[][];
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  modality: string;
  /** ImageOrientationPatient and PixelSpacing (rows, columns) shared by the slices. */
  orientation: [number, number, number, number, number, number];
  pixelSpacing: [number, number];
  /** The source images, k = 0, 1, …. */
  instances: DicomInstance[];
  /** The first slice's header (patient, study and equipment attributes, for a derived object). */
  header: DicomDataset;
  warnings: string[];
}

/** A series found among the files, as `listDicomSeries` reports it. */
export interface DicomSeriesSummary {
  seriesInstanceUid: string;
  modality: string;
  description: string;
  files: number;
}

interface Slice extends SliceGeometry {
  source: DicomSource;
  /** The file's size (its dataset inflated): what its Pixel Data can hold at most. */
  byteLength: number;
  header: DicomDataset;
  sopClassUid: string;
  sopInstanceUid: string;
}

interface Scanned {
  source: DicomSource;
  header: DicomDataset;
  hasPixelData: boolean;
  byteLength: number;
}

const str = (v: unknown): string => String((Array.isArray(v) ? v[0] : v) ?? "").trim();

/** Every file's header, grouped by SeriesInstanceUID (first-seen order). Unreadable files are refused, naming them. */
function scan(sources: readonly DicomSource[], maxBytes: number): Map<string, Scanned[]> {
  const bySeries = new Map<string, Scanned[]>();
  for (const source of sources) {
    const parsed = parseDicom(source.bytes(), source.name, { maxBytes });
    // A DICOMDIR (a folder's index, not part of any series) is skipped.
    if (parsed.dataset.DirectoryRecordSequence !== undefined && !parsed.hasPixelData) continue;
    const uid = str(parsed.dataset.SeriesInstanceUID);
    if (!uid) throw new DicomError("no SeriesInstanceUID", source.name);
    const list = bySeries.get(uid) ?? [];
    list.push({ source, header: parsed.dataset, hasPixelData: parsed.hasPixelData, byteLength: parsed.byteLength });
    bySeries.set(uid, list);
  }
  return bySeries;
}

function summary(uid: string, files: Scanned[]): DicomSeriesSummary {
  const h = files[0]!.header;
  return { seriesInstanceUid: uid, modality: str(h.Modality), description: str(h.SeriesDescription), files: files.length };
}

/** The series in a folder of DICOM files (searched recursively; DICOMDIR and dot-files skipped). */
export function listDicomSeries(dir: string, opts: Pick<ReadDicomOptions, "maxFileBytes"> = {}): DicomSeriesSummary[] {
  const maxBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  return [...scan(folderSources(dir, maxBytes), maxBytes)].map(([uid, files]) => summary(uid, files));
}

/** The series asked for, or the only one; several without a choice are listed. */
function chooseSeries(bySeries: Map<string, Scanned[]>, where: string, seriesUid: string | undefined): [string, Scanned[]] {
  if (seriesUid !== undefined) {
    const files = bySeries.get(seriesUid);
    if (files) return [seriesUid, files];
  } else if (bySeries.size === 1) {
    return [...bySeries][0]!;
  }
  const list = [...bySeries].map(([uid, files]) => {
    const s = summary(uid, files);
    const more = files.length > 1 ? ` and ${files.length - 1} more` : "";
    return `  ${shown(uid)}  ${shown(s.modality, 16) || "?"}  ${s.files} file(s)${s.description ? `  "${shown(s.description)}"` : ""}: ${files[0]!.source.name}${more}`;
  });
  const head = seriesUid === undefined ? `${where} holds ${bySeries.size} series; choose one with --series UID (library: seriesUid)` : `${where} has no series ${seriesUid}`;
  throw new DicomError(`${head}:\n${list.join("\n")}`);
}

/** A number list attribute (DS/IS, multi-valued) of `n` finite values, or a refusal naming the file. */
function numbers(h: DicomDataset, key: string, n: number, name: string, what: string): number[] {
  const v = h[key];
  const list = (Array.isArray(v) ? v : v === undefined ? [] : [v]).map(Number);
  if (list.length !== n || list.some((x) => !Number.isFinite(x))) {
    throw new DicomError(`${what}: ${key} ${v === undefined ? "is missing" : `is ${shown(v)}, not ${n} numbers`}`, name);
  }
  return list;
}

/** A slice's geometry and identity, refusing an object that is not a cross-sectional image. */
function toSlice(f: Scanned): Slice {
  const h = f.header, name = f.source.name;
  const sopClassUid = str(h.SOPClassUID);
  const kind = `not an image slice (SOP class ${shown(sopClassUid) || "?"}, modality ${shown(str(h.Modality), 16) || "?"})`;
  if (!f.hasPixelData) throw new DicomError(`${kind}: it has no Pixel Data; a series to segment holds image slices only`, name);
  const [rows, columns] = numbers(h, "Rows", 1, name, kind).concat(numbers(h, "Columns", 1, name, kind));
  if (![rows!, columns!].every((d) => Number.isInteger(d) && d >= 1 && d <= 65535)) throw new DicomError(`bad image size: Rows ${rows}, Columns ${columns} (1 to 65535 each)`, name);
  return {
    name,
    source: f.source,
    byteLength: f.byteLength,
    header: h,
    sopClassUid,
    sopInstanceUid: str(h.SOPInstanceUID),
    rows: rows!,
    columns: columns!,
    position: numbers(h, "ImagePositionPatient", 3, name, kind) as Vec3,
    orientation: numbers(h, "ImageOrientationPatient", 6, name, kind) as Slice["orientation"],
    pixelSpacing: numbers(h, "PixelSpacing", 2, name, kind) as [number, number],
    frameOfReferenceUid: str(h.FrameOfReferenceUID),
  };
}

/**
 * Refuses a stack larger than the bound, or a slice whose file is too small
 * to hold the pixels its header declares, before any voxel is allocated (a
 * 300-byte file may claim 16384 × 16384 pixels).
 */
function checkSize(dims: Vec3, maxVoxels: number, slices: readonly Slice[], formats: readonly PixelFormat[], series: string): void {
  const voxels = dims[0] * dims[1] * dims[2];
  if (voxels > maxVoxels) {
    throw new DicomError(`series ${series} (${slices[0]!.name}, …): ${dims.join("×")} = ${voxels} voxels is more than the ${maxVoxels} allowed (maxVoxels, --max-voxels)`);
  }
  slices.forEach((sl, k) => {
    const need = (dims[0] * dims[1] * formats[k]!.bitsAllocated) / 8;
    if (sl.byteLength < need) {
      throw new DicomError(`corrupt pixel data: the file is ${sl.byteLength} bytes, Rows × Columns × BitsAllocated needs ${need} for its Pixel Data`, sl.name);
    }
  });
}

/**
 * Reads one series from `sources` (a folder's files, or DICOMweb parts):
 * `where` names them in messages. See readDicomSeries.
 */
export function readSeriesFrom(sources: readonly DicomSource[], where: string, opts: ReadDicomOptions = {}): DicomSeries {
  const [uid, files] = chooseSeries(scan(sources, opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES), where, opts.seriesUid);
  const stack = planStack(files.map(toSlice), shown(uid));
  const first = stack.slices[0]!;
  const dims: Vec3 = [first.columns, first.rows, stack.slices.length];
  const formats = stack.slices.map((sl) => pixelFormat(sl.header, sl.name));
  checkSize(dims, opts.maxVoxels ?? DEFAULT_MAX_VOXELS, stack.slices, formats, shown(uid));
  const builder = new VolumeBuilder(dims[0] * dims[1] * dims[2], formats.every((f) => Number.isInteger(f.slope) && Number.isInteger(f.intercept)));
  const plane = dims[0] * dims[1];
  stack.slices.forEach((sl, k) => {
    const parsed = parseDicom(sl.source.bytes(), sl.name, { pixels: true, maxBytes: opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES });
    if (str(parsed.dataset.SOPInstanceUID) !== sl.sopInstanceUid) throw new DicomError("the file changed while the series was read", sl.name);
    builder.putSlice(parsed.dataset, formats[k]!, { count: plane, at: k * plane, bigEndian: parsed.transferSyntax === BIG_ENDIAN }, sl.name);
  });
  const header = first.header;
  const modality = str(header.Modality);
  const warnings: string[] = [];
  if (modality !== "CT") warnings.push(`series ${shown(uid)} has modality ${shown(modality, 16) || "(none)"}, not CT: SegVol is trained on CT in Hounsfield units, so expect poor masks`);
  for (const w of warnings) opts.onWarning?.(w);
  return {
    dims,
    data: builder.data,
    spacing: stack.spacing,
    affineLps: stack.affineLps,
    affine: rasAffine(stack.affineLps),
    studyInstanceUid: str(header.StudyInstanceUID),
    seriesInstanceUid: uid,
    frameOfReferenceUid: first.frameOfReferenceUid,
    modality,
    orientation: first.orientation,
    pixelSpacing: first.pixelSpacing,
    instances: stack.slices.map((sl) => ({ sopClassUid: sl.sopClassUid, sopInstanceUid: sl.sopInstanceUid, position: sl.position })),
    header,
    warnings,
  };
}

/**
 * Reads the series in folder `dir` (searched recursively) as a volume.
 * Refused with a DicomError naming the file, before anything is written: a
 * corrupt or non-DICOM file, an unsupported transfer syntax, a non-image
 * object in the series, mixed orientations, sizes or pixel spacings, a gap,
 * duplicate positions, irregular spacing, a gantry tilt, several series
 * without `seriesUid` (they are listed), more than `maxVoxels` voxels.
 * Warns (onWarning, and `warnings`) on a modality other than CT.
 */
export function readDicomSeries(dir: string, opts: ReadDicomOptions = {}): DicomSeries {
  return readSeriesFrom(folderSources(dir, opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES), dir, opts);
}
