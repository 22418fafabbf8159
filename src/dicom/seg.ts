// DICOM-SEG out: one binary segment per target, each frame a source slice
// that the segment touches, referencing that slice's SOP instance, with the
// series' frame of reference, orientation, spacing and the slice's position.
// Written with dcmjs in Explicit VR Little Endian.
import dcmjs, { type NaturalizedDataset } from "dcmjs";
import { writeFileAtomic } from "../io/atomic.js";
import { DicomError } from "./errors.js";
import { quietly } from "./file.js";
import { ANATOMICAL_STRUCTURE, segmentCodes } from "./seg_codes.js";
import type { DicomSeries } from "./series.js";
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION, newUid } from "./uid.js";

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

export const SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4";
const EXPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2.1";

/** One segment: a binary mask over the series' voxels (i fastest, as DicomSeries.data). */
export interface SegSegment {
  /** SegmentLabel (e.g. "liver"): also picks the coded property type. */
  label: string;
  /** SegmentDescription: the prompt, e.g. the text "liver" or a box. */
  description?: string;
  /** Non-zero = in the segment. */
  mask: ArrayLike<number>;
}

/** What a SEG needs of its source series (readDicomSeries returns it all). */
export type SegSource = Pick<
  DicomSeries,
  "dims" | "spacing" | "studyInstanceUid" | "seriesInstanceUid" | "frameOfReferenceUid" | "orientation" | "pixelSpacing" | "instances" | "header"
>;

export interface DicomSegOptions {
  seriesDescription?: string;
  seriesNumber?: number;
  /** Name of the algorithm in each segment (SegmentAlgorithmName). */
  algorithm?: string;
}

/** The new object's identity: what `segvol segment` prints. */
export interface DicomSegIds {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  /** Frames written (segment × slice pairs with foreground; at least one). */
  frames: number;
}

/** The patient and study attributes a derived object copies from its source (type 2: present, possibly empty). */
const COPIED = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber"];
const COPIED_IF_PRESENT = ["IssuerOfPatientID", "PatientAge", "StudyDescription", "SpecificCharacterSet"];

function now(): { date: string; time: string } {
  const iso = new Date().toISOString();
  return { date: iso.slice(0, 10).replace(/-/g, ""), time: iso.slice(11, 19).replace(/:/g, "") };
}

/** The frames: (segment number, slice k) for every slice the segment has a voxel on; one empty frame if no segment has any. */
function framesOf(src: SegSource, segments: readonly SegSegment[]): { segment: number; k: number }[] {
  const plane = src.dims[0] * src.dims[1];
  const frames: { segment: number; k: number }[] = [];
  segments.forEach((s, n) => {
    for (let k = 0; k < src.dims[2]; k++) {
      for (let p = k * plane; p < (k + 1) * plane; p++) {
        if (s.mask[p]) {
          frames.push({ segment: n + 1, k });
          break;
        }
      }
    }
  });
  return frames.length > 0 ? frames : [{ segment: 1, k: 0 }];
}

/** The frames' bits, packed without padding between frames, least significant bit first (PS3.5 8.1.1). */
function packFrames(src: SegSource, segments: readonly SegSegment[], frames: readonly { segment: number; k: number }[]): ArrayBuffer {
  const plane = src.dims[0] * src.dims[1];
  const bytes = Math.ceil((frames.length * plane) / 8);
  const out = new Uint8Array(bytes + (bytes & 1));
  let bit = 0;
  for (const { segment, k } of frames) {
    const mask = segments[segment - 1]!.mask;
    for (let p = k * plane; p < (k + 1) * plane; p++, bit++) if (mask[p]) out[bit >> 3]! |= 1 << (bit & 7);
  }
  return out.buffer;
}

function segmentItem(s: SegSegment, n: number, algorithm: string): NaturalizedDataset {
  const codes = segmentCodes(s.label);
  return {
    SegmentNumber: n + 1,
    SegmentLabel: s.label.slice(0, 64),
    ...(s.description ? { SegmentDescription: s.description.slice(0, 1024) } : {}),
    SegmentAlgorithmType: "AUTOMATIC",
    SegmentAlgorithmName: algorithm,
    SegmentedPropertyCategoryCodeSequence: [ANATOMICAL_STRUCTURE],
    SegmentedPropertyTypeCodeSequence: [{ ...codes.type, ...(codes.modifier ? { SegmentedPropertyTypeModifierCodeSequence: [codes.modifier] } : {}) }],
  };
}

function frameItem(src: SegSource, f: { segment: number; k: number }): NaturalizedDataset {
  const inst = src.instances[f.k]!;
  return {
    DerivationImageSequence: [
      {
        SourceImageSequence: [
          {
            ReferencedSOPClassUID: inst.sopClassUid,
            ReferencedSOPInstanceUID: inst.sopInstanceUid,
            PurposeOfReferenceCodeSequence: [{ CodeValue: "121322", CodingSchemeDesignator: "DCM", CodeMeaning: "Source image for image processing operation" }],
          },
        ],
        DerivationCodeSequence: [{ CodeValue: "113076", CodingSchemeDesignator: "DCM", CodeMeaning: "Segmentation" }],
      },
    ],
    FrameContentSequence: [{ DimensionIndexValues: [f.segment, f.k + 1] }],
    PlanePositionSequence: [{ ImagePositionPatient: [...inst.position] }],
    SegmentIdentificationSequence: [{ ReferencedSegmentNumber: f.segment }],
  };
}

/** Patient, study, series, equipment and SOP common attributes of a new SEG instance. */
function identity(src: SegSource, ids: DicomSegIds, opts: DicomSegOptions): NaturalizedDataset {
  const h = src.header;
  const { date, time } = now();
  const ds: NaturalizedDataset = {};
  for (const key of COPIED) ds[key] = h[key] ?? "";
  for (const key of COPIED_IF_PRESENT) if (h[key] !== undefined) ds[key] = h[key];
  return {
    ...ds,
    SOPClassUID: SEGMENTATION_STORAGE,
    SOPInstanceUID: ids.sopInstanceUid,
    StudyInstanceUID: ids.studyInstanceUid,
    SeriesInstanceUID: ids.seriesInstanceUid,
    Modality: "SEG",
    SeriesNumber: opts.seriesNumber ?? 999,
    SeriesDescription: (opts.seriesDescription ?? "SegVol segmentation").slice(0, 64),
    SeriesDate: date, SeriesTime: time, ContentDate: date, ContentTime: time, InstanceCreationDate: date, InstanceCreationTime: time,
    InstanceNumber: 1,
    Manufacturer: "segvol-webgpu", ManufacturerModelName: "segvol-webgpu", DeviceSerialNumber: "0", SoftwareVersions: "0.1.0",
    FrameOfReferenceUID: src.frameOfReferenceUid,
    PositionReferenceIndicator: h.PositionReferenceIndicator ?? "",
    ContentLabel: "SEGVOL",
    ContentDescription: "SegVol segmentation",
    ContentCreatorName: "segvol-webgpu",
  };
}

function checkSegments(src: SegSource, segments: readonly SegSegment[]): void {
  const voxels = src.dims[0] * src.dims[1] * src.dims[2];
  if (segments.length === 0) throw new DicomError("a DICOM-SEG needs at least one segment");
  if (src.instances.length !== src.dims[2]) throw new DicomError(`the series has ${src.instances.length} instances for ${src.dims[2]} slices`);
  for (const s of segments) {
    if (s.mask.length !== voxels) throw new DicomError(`segment ${s.label}: mask has ${s.mask.length} values, the series ${src.dims.join("×")} = ${voxels} voxels`);
  }
}

/** The DICOM-SEG dataset (keyword-keyed) for the segments over `src`. */
function segDataset(src: SegSource, segments: readonly SegSegment[], ids: DicomSegIds, frames: { segment: number; k: number }[], opts: DicomSegOptions): NaturalizedDataset {
  const dimensionOrg = newUid();
  return {
    ...identity(src, ids, opts),
    ImageType: ["DERIVED", "PRIMARY"],
    SamplesPerPixel: 1, PhotometricInterpretation: "MONOCHROME2", Rows: src.dims[1], Columns: src.dims[0],
    BitsAllocated: 1, BitsStored: 1, HighBit: 0, PixelRepresentation: 0, LossyImageCompression: "00",
    SegmentationType: "BINARY",
    NumberOfFrames: frames.length,
    SegmentSequence: segments.map((s, n) => segmentItem(s, n, opts.algorithm ?? "SegVol")),
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionOrg }],
    DimensionOrganizationType: "3D",
    DimensionIndexSequence: [
      { DimensionOrganizationUID: dimensionOrg, DimensionIndexPointer: 0x0062000b, FunctionalGroupPointer: 0x0062000a, DimensionDescriptionLabel: "ReferencedSegmentNumber" },
      { DimensionOrganizationUID: dimensionOrg, DimensionIndexPointer: 0x00200032, FunctionalGroupPointer: 0x00209113, DimensionDescriptionLabel: "ImagePositionPatient" },
    ],
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: [...src.orientation] }],
        PixelMeasuresSequence: [{ PixelSpacing: [...src.pixelSpacing], SliceThickness: src.spacing[2], SpacingBetweenSlices: src.spacing[2] }],
      },
    ],
    PerFrameFunctionalGroupsSequence: frames.map((f) => frameItem(src, f)),
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: src.seriesInstanceUid,
        ReferencedInstanceSequence: src.instances.map((i) => ({ ReferencedSOPClassUID: i.sopClassUid, ReferencedSOPInstanceUID: i.sopInstanceUid })),
      },
    ],
    PixelData: [packFrames(src, segments, frames)],
    _vrMap: { PixelData: "OB" },
  };
}

/** A DICOM-SEG (Part 10 bytes) for `segments` over the series `src`, with its new UIDs. */
export function encodeDicomSeg(src: SegSource, segments: readonly SegSegment[], opts: DicomSegOptions = {}): { bytes: Uint8Array; ids: DicomSegIds } {
  checkSegments(src, segments);
  const frames = framesOf(src, segments);
  const ids: DicomSegIds = { studyInstanceUid: src.studyInstanceUid, seriesInstanceUid: newUid(), sopInstanceUid: newUid(), frames: frames.length };
  const dataset = segDataset(src, segments, ids, frames, opts);
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: SEGMENTATION_STORAGE,
    MediaStorageSOPInstanceUID: ids.sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION,
  };
  const bytes = quietly(() => {
    const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
    dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
    return new Uint8Array(dict.write());
  });
  return { bytes, ids };
}

/** encodeDicomSeg written to `path` atomically (never over `inputPath`). */
export function writeDicomSeg(path: string, src: SegSource, segments: readonly SegSegment[], opts: DicomSegOptions & { inputPath?: string } = {}): DicomSegIds {
  const { bytes, ids } = encodeDicomSeg(src, segments, opts);
  writeFileAtomic(path, bytes, { inputPath: opts.inputPath, what: "writeDicomSeg" });
  return ids;
}
