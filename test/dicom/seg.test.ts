// DICOM-SEG out, read back with dcmjs: the segments (labels, prompt text,
// codes), the references to every source instance and the frame of
// reference, and each frame on the right source slice: its referenced
// instance, its plane position and its bits against the mask, worked out
// from the series as it was built (not from what the reader made of it).
import dcmjs from "dcmjs";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeDicomSeg, SEGMENTATION_STORAGE, writeDicomSeg } from "../../src/dicom/seg.js";
import { readDicomSeries } from "../../src/dicom/series.js";
import { writeSeries, type SeriesSpec, type Vec3 } from "../helpers/dicom_series.js";

const root = mkdtempSync(join(tmpdir(), "segvol-dicom-seg-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const DIMS: Vec3 = [8, 6, 7];
const [I, J, K] = DIMS;
// Stored against the normal (slice step −z): the reader's k runs opposite
// the built order, so a frame put on "slice k" of the wrong order shows.
const SPEC: SeriesSpec = {
  dims: DIMS,
  hu: new Int16Array(I * J * K).fill(40),
  origin: [-50, 30, 100],
  rowDir: [1, 0, 0],
  colDir: [0, 1, 0],
  pixelSpacing: [0.75, 0.8],
  sliceStep: [0, 0, -3],
};

/** Masks in the built order (b = the built slice index): liver on i + j < b, kidney a block on built slices 2-4. */
function builtMasks(): { liver: Uint8Array; kidney: Uint8Array } {
  const liver = new Uint8Array(I * J * K), kidney = new Uint8Array(I * J * K);
  for (let b = 0; b < K; b++)
    for (let j = 0; j < J; j++)
      for (let i = 0; i < I; i++) {
        const x = b * I * J + j * I + i;
        liver[x] = i + j < b ? 1 : 0;
        kidney[x] = b >= 2 && b <= 4 && i >= 5 && j <= 1 ? 1 : 0;
      }
  return { liver, kidney };
}

/** The built-order mask in the reader's order (k = K − 1 − b). */
function toReadOrder(m: Uint8Array): Uint8Array {
  const out = new Uint8Array(m.length);
  for (let b = 0; b < K; b++) out.set(m.subarray(b * I * J, (b + 1) * I * J), (K - 1 - b) * I * J);
  return out;
}

function bit(bytes: Uint8Array, n: number): number {
  return (bytes[n >> 3]! >> (n & 7)) & 1;
}

describe("DICOM-SEG", () => {
  const dir = join(root, "ct");
  const built = writeSeries(dir, SPEC);
  const series = readDicomSeries(dir);
  const masks = builtMasks();

  it("writes binary segments that read back on the right source slices", () => {
    const out = join(root, "seg.dcm");
    const ids = writeDicomSeg(out, series, [
      { label: "liver", description: "liver", mask: toReadOrder(masks.liver) },
      { label: "left kidney", description: "left kidney", mask: toReadOrder(masks.kidney) },
    ]);
    const file = readFileSync(out);
    const dict = dcmjs.data.DicomMessage.readFile(file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer);
    const seg = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict) as Record<string, any>;
    expect(seg.SOPClassUID).toBe(SEGMENTATION_STORAGE);
    expect(seg.SOPInstanceUID).toBe(ids.sopInstanceUid);
    expect(seg.SeriesInstanceUID).toBe(ids.seriesInstanceUid);
    expect(seg.SeriesInstanceUID).not.toBe(built.seriesUid);
    expect(seg.StudyInstanceUID).toBe(built.studyUid);
    expect(seg.FrameOfReferenceUID).toBe(built.frameOfReferenceUid);
    expect(seg.Modality).toBe("SEG");
    expect(seg.SegmentationType).toBe("BINARY");
    expect(seg.PatientID).toBe("PH-1");
    expect([seg.Rows, seg.Columns]).toEqual([J, I]);

    expect(seg.SegmentSequence.map((s: any) => [s.SegmentNumber, s.SegmentLabel, s.SegmentDescription, s.SegmentedPropertyTypeCodeSequence.CodeValue ?? s.SegmentedPropertyTypeCodeSequence[0].CodeValue])).toEqual([
      [1, "liver", "liver", "10200004"],
      [2, "left kidney", "left kidney", "18639004"],
    ]);
    const refs = seg.ReferencedSeriesSequence.ReferencedInstanceSequence ?? seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence;
    expect(new Set(refs.map((r: any) => r.ReferencedSOPInstanceUID))).toEqual(new Set(built.slices.map((s) => s.sopInstanceUid)));

    // Each frame: which built slice its reference names, its position, its bits.
    const bySop = new Map(built.slices.map((s) => [s.sopInstanceUid, s.k]));
    const frames = seg.PerFrameFunctionalGroupsSequence as any[];
    expect(frames.length).toBe(seg.NumberOfFrames);
    const pixels = new Uint8Array(seg.PixelData[0]);
    const seen = new Set<string>();
    frames.forEach((f, n) => {
      const one = (x: any) => (Array.isArray(x) ? x[0] : x);
      const segment = one(f.SegmentIdentificationSequence).ReferencedSegmentNumber;
      const sop = one(one(f.DerivationImageSequence).SourceImageSequence).ReferencedSOPInstanceUID;
      const b = bySop.get(sop)!;
      expect(b, `frame ${n} references an instance of the series`).toBeDefined();
      const position = one(f.PlanePositionSequence).ImagePositionPatient.map(Number);
      expect(position).toEqual([-50, 30, 100 - 3 * b]);
      const mask = segment === 1 ? masks.liver : masks.kidney;
      for (let p = 0; p < I * J; p++) expect(bit(pixels, n * I * J + p), `frame ${n} pixel ${p}`).toBe(mask[b * I * J + p]);
      seen.add(`${segment}:${b}`);
    });
    // Every non-empty (segment, slice) has its frame: liver on built slices 1-6, kidney on 2-4.
    expect([...seen].sort()).toEqual(["1:1", "1:2", "1:3", "1:4", "1:5", "1:6", "2:2", "2:3", "2:4"]);
  });

  it("an empty result still writes one (empty) frame; refuses masks of the wrong size and folders as output", () => {
    const { bytes, ids } = encodeDicomSeg(series, [{ label: "spleen", mask: new Uint8Array(I * J * K) }]);
    expect(ids.frames).toBe(1);
    expect(bytes.length).toBeGreaterThan(0);
    expect(() => encodeDicomSeg(series, [{ label: "spleen", mask: new Uint8Array(5) }])).toThrow(/mask has 5 values, the series 8×6×7 = 336 voxels/);
    expect(() => writeDicomSeg(join(root, "nowhere", "seg.dcm"), series, [{ label: "liver", mask: masks.liver }])).toThrow(/does not exist/);
    expect(existsSync(join(root, "nowhere"))).toBe(false);
  });
});
