// DICOM CT series built in TypeScript with dcmjs (no Python), for the DICOM
// tests and bench/dicom_read.ts: a volume (i fastest) and an LPS geometry
// become one Part 10 file per slice, in a chosen transfer syntax, with file
// names and InstanceNumbers that do not follow the slice order. `edit`
// crafts broken series (moved, duplicated or tilted slices, …).
import dcmjs from "dcmjs";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { quietly } from "../../src/dicom/file.js";

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

export type Vec3 = [number, number, number];

export const TS = {
  implicit: "1.2.840.10008.1.2",
  explicit: "1.2.840.10008.1.2.1",
  deflated: "1.2.840.10008.1.2.1.99",
  bigEndian: "1.2.840.10008.1.2.2",
  jpegLossless: "1.2.840.10008.1.2.4.70",
} as const;

export const CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2";

export interface SeriesSpec {
  /** Voxels along i (columns), j (rows), k (slices). */
  dims: Vec3;
  /** Rescaled values (HU), i fastest. */
  hu: ArrayLike<number>;
  /** LPS position of voxel (0, 0, 0). */
  origin: Vec3;
  /** Unit direction of growing i (the row direction) and of growing j (the column direction), LPS. */
  rowDir: Vec3;
  colDir: Vec3;
  /** Column spacing (along i), row spacing (along j), mm. */
  pixelSpacing: [number, number];
  /** LPS offset from one slice to the next (k grows). */
  sliceStep: Vec3;
  transferSyntax?: string;
  modality?: string;
  slope?: number;
  intercept?: number;
  /** Unsigned 16-bit stored values (PixelRepresentation 0) instead of signed. */
  unsigned?: boolean;
  studyUid?: string;
  seriesUid?: string;
  frameOfReferenceUid?: string;
  /** Changes slice k's dataset (keyword-keyed) before it is written. */
  edit?: (k: number, ds: Record<string, unknown>) => void;
}

let counter = 0;
/** A fresh UID under 2.25 (tests only). */
export function testUid(): string {
  counter++;
  return `2.25.${BigInt("0x" + [...crypto.getRandomValues(new Uint8Array(15))].map((b) => b.toString(16).padStart(2, "0")).join(""))}${counter % 10}`;
}

export interface BuiltSlice {
  /** A file name that does not sort in slice order. */
  name: string;
  bytes: Uint8Array;
  sopInstanceUid: string;
  k: number;
}

function sliceDataset(spec: SeriesSpec, k: number, uids: { study: string; series: string; frame: string }, sop: string): Record<string, unknown> {
  const [I, J, K] = spec.dims;
  const slope = spec.slope ?? 1, intercept = spec.intercept ?? -1024;
  const stored = spec.unsigned ? new Uint16Array(I * J) : new Int16Array(I * J);
  for (let n = 0; n < I * J; n++) stored[n] = Math.round((Number(spec.hu[k * I * J + n]) - intercept) / slope);
  const pos = spec.origin.map((o, a) => o + k * spec.sliceStep[a]!);
  return {
    SpecificCharacterSet: "ISO_IR 100",
    ImageType: ["ORIGINAL", "PRIMARY", "AXIAL"],
    SOPClassUID: CT_IMAGE_STORAGE,
    SOPInstanceUID: sop,
    StudyDate: "20240102", StudyTime: "101500", AccessionNumber: "A123", Modality: spec.modality ?? "CT",
    Manufacturer: "segvol-tests", ReferringPhysicianName: "", PatientName: "Phantom^Test", PatientID: "PH-1",
    PatientBirthDate: "19700101", PatientSex: "O", StudyInstanceUID: uids.study, SeriesInstanceUID: uids.series,
    StudyID: "1", SeriesNumber: 3, SeriesDescription: "phantom CT",
    // InstanceNumber runs backwards and then wraps: sorting by it is wrong.
    InstanceNumber: ((K - k + 3) % K) + 1,
    ImagePositionPatient: pos,
    ImageOrientationPatient: [...spec.rowDir, ...spec.colDir],
    FrameOfReferenceUID: uids.frame, PositionReferenceIndicator: "",
    SliceThickness: Math.hypot(...spec.sliceStep),
    SamplesPerPixel: 1, PhotometricInterpretation: "MONOCHROME2", Rows: J, Columns: I,
    PixelSpacing: [spec.pixelSpacing[1], spec.pixelSpacing[0]],
    BitsAllocated: 16, BitsStored: 16, HighBit: 15, PixelRepresentation: spec.unsigned ? 0 : 1,
    RescaleIntercept: intercept, RescaleSlope: slope, RescaleType: "HU",
    PixelData: [stored.buffer],
    _vrMap: { PixelData: "OW" },
  };
}

function swap16(b: ArrayBuffer): ArrayBuffer {
  const out = new Uint8Array(b.slice(0));
  for (let n = 0; n + 1 < out.length; n += 2) [out[n], out[n + 1]] = [out[n + 1]!, out[n]!];
  return out.buffer;
}

/** Part 10 bytes of `ds` in transfer syntax `ts` (deflate done here: dcmjs writes no deflated files). */
export function part10(ds: Record<string, unknown>, ts: string): Uint8Array {
  const metaFor = (syntax: string) =>
    DicomMetaDictionary.denaturalizeDataset({
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
      MediaStorageSOPClassUID: ds.SOPClassUID ?? CT_IMAGE_STORAGE,
      MediaStorageSOPInstanceUID: ds.SOPInstanceUID ?? "1.2.3",
      TransferSyntaxUID: syntax,
      ImplementationClassUID: "2.25.1234",
    });
  const dict = new DicomDict(metaFor(ts === TS.deflated ? TS.explicit : ts));
  // dcmjs writes OW values as the bytes it is given, also in big endian
  // (checked against dcmtk's dcmdump): swap 16-bit pixels ourselves there.
  const px = ds.PixelData as ArrayBuffer[] | undefined;
  const swapped = ts === TS.bigEndian && px && ds.BitsAllocated === 16 ? { ...ds, PixelData: px.map(swap16) } : ds;
  dict.dict = quietly(() => DicomMetaDictionary.denaturalizeDataset(swapped));
  const bytes = new Uint8Array(quietly(() => dict.write()));
  if (ts !== TS.deflated) return bytes;
  // The dataset follows the meta group: 132 + 12 (group length element) + its value.
  const metaEnd = 144 + new DataView(bytes.buffer).getUint32(140, true);
  const head = new DicomDict(metaFor(TS.deflated));
  const headBytes = new Uint8Array(quietly(() => head.write()));
  const body = deflateRawSync(bytes.subarray(metaEnd));
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

/** One file per slice; `uids` fixed for the series unless the spec names them. */
export function buildSeries(spec: SeriesSpec): { slices: BuiltSlice[]; studyUid: string; seriesUid: string; frameOfReferenceUid: string } {
  const uids = { study: spec.studyUid ?? testUid(), series: spec.seriesUid ?? testUid(), frame: spec.frameOfReferenceUid ?? testUid() };
  const K = spec.dims[2];
  const slices: BuiltSlice[] = [];
  for (let k = 0; k < K; k++) {
    const sop = testUid();
    const ds = sliceDataset(spec, k, uids, sop);
    spec.edit?.(k, ds);
    // Names sort in an order unrelated to k (k·7 mod a prime above K).
    const name = `IM${String((k * 7919) % 10007).padStart(5, "0")}.dcm`;
    slices.push({ name, bytes: part10(ds, spec.transferSyntax ?? TS.explicit), sopInstanceUid: sop, k });
  }
  return { slices, studyUid: uids.study, seriesUid: uids.series, frameOfReferenceUid: uids.frame };
}

/** buildSeries written into `dir` (created); returns what buildSeries does. */
export function writeSeries(dir: string, spec: SeriesSpec): ReturnType<typeof buildSeries> {
  mkdirSync(dir, { recursive: true });
  const built = buildSeries(spec);
  for (const s of built.slices) writeFileSync(join(dir, s.name), s.bytes);
  return built;
}

/** A spec for a volume in a RAS-aligned NIfTI grid (affine diag(spacing) + offset), as the phantom's: the same voxels i, j, k. */
export function specFromRas(dims: Vec3, hu: ArrayLike<number>, affineRas: number[][]): SeriesSpec {
  const col = (a: number): Vec3 => [-affineRas[0]![a]!, -affineRas[1]![a]!, affineRas[2]![a]!];
  const len = (v: Vec3) => Math.hypot(...v);
  const unit = (v: Vec3): Vec3 => v.map((x) => x / len(v)) as Vec3;
  return {
    dims,
    hu,
    origin: [-affineRas[0]![3]!, -affineRas[1]![3]!, affineRas[2]![3]!],
    rowDir: unit(col(0)),
    colDir: unit(col(1)),
    pixelSpacing: [len(col(0)), len(col(1))],
    sliceStep: col(2),
  };
}
