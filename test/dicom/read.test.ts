// Reading a DICOM series as a volume: slices sorted by position along the
// normal (never by file name or InstanceNumber), the LPS affine against an
// independent computation and its RAS form, oblique and flipped stacks,
// rescale slope/intercept, transfer syntaxes. Series are built with dcmjs
// (test/helpers/dicom_series.ts).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readDicomSeries } from "../../src/dicom/series.js";
import { DicomError } from "../../src/dicom/errors.js";
import { TS, writeSeries, type SeriesSpec, type Vec3 } from "../helpers/dicom_series.js";

const root = mkdtempSync(join(tmpdir(), "segvol-dicom-read-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const folder = () => join(root, `s${n++}`);

/** Distinct HU per voxel, so any misplaced slice or pixel shows. */
function ramp(dims: Vec3): Int16Array {
  const [I, J, K] = dims;
  const v = new Int16Array(I * J * K);
  for (let k = 0, x = 0; k < K; k++) for (let j = 0; j < J; j++) for (let i = 0; i < I; i++, x++) v[x] = -1000 + 97 * k + 13 * j + i;
  return v;
}

const DIMS: Vec3 = [7, 5, 9];
const axial = (extra: Partial<SeriesSpec> = {}): SeriesSpec => ({
  dims: DIMS,
  hu: ramp(DIMS),
  origin: [-120.5, 80.25, -300],
  rowDir: [1, 0, 0],
  colDir: [0, 1, 0],
  pixelSpacing: [0.7, 0.9],
  sliceStep: [0, 0, 2.5],
  ...extra,
});

/** The LPS affine worked out from the spec by hand: columns i, j, k and the origin. */
function expectedLps(spec: SeriesSpec): number[][] {
  const [a, b] = spec.pixelSpacing;
  return [0, 1, 2].map((r) => [spec.rowDir[r]! * a, spec.colDir[r]! * b, spec.sliceStep[r]!, spec.origin[r]!]).concat([[0, 0, 0, 1]]);
}

function closeMatrix(got: number[][], want: number[][]): void {
  got.forEach((row, r) => row.forEach((x, c) => expect(x, `[${r}][${c}]`).toBeCloseTo(want[r]![c]!, 6)));
}

describe("readDicomSeries geometry", () => {
  it("sorts by position along the normal, not by file name or InstanceNumber; keeps the voxels exactly (int16)", () => {
    const spec = axial();
    const dir = folder();
    const built = writeSeries(dir, spec);
    // The names and InstanceNumbers really are out of order.
    expect(built.slices.map((s) => s.name)).not.toEqual([...built.slices.map((s) => s.name)].sort());
    const s = readDicomSeries(dir);
    expect(s.dims).toEqual(DIMS);
    expect(s.data).toBeInstanceOf(Int16Array);
    expect(Array.from(s.data)).toEqual(Array.from(spec.hu));
    expect(s.instances.map((i) => i.sopInstanceUid)).toEqual(built.slices.map((b) => b.sopInstanceUid));
    closeMatrix(s.affineLps, expectedLps(spec));
    expect(s.spacing.map((x) => Math.round(x * 1e6) / 1e6)).toEqual([0.7, 0.9, 2.5]);
    expect(s.seriesInstanceUid).toBe(built.seriesUid);
    expect(s.studyInstanceUid).toBe(built.studyUid);
    expect(s.frameOfReferenceUid).toBe(built.frameOfReferenceUid);
    expect(s.warnings).toEqual([]);
  });

  it("RAS affine: x and y negated, checked voxel by voxel against DICOM's own pixel position formula", () => {
    const spec = axial();
    const dir = folder();
    writeSeries(dir, spec);
    const s = readDicomSeries(dir);
    for (const [i, j, k] of [[0, 0, 0], [6, 0, 0], [0, 4, 0], [3, 2, 8]] as Vec3[]) {
      // PS3.3 C.7.6.2.1.1: P = S + i·Δi·X + j·Δj·Y, with S the slice's ImagePositionPatient.
      const lps = [0, 1, 2].map((r) => spec.origin[r]! + k * spec.sliceStep[r]! + i * spec.pixelSpacing[0] * spec.rowDir[r]! + j * spec.pixelSpacing[1] * spec.colDir[r]!);
      const ras = [-lps[0]!, -lps[1]!, lps[2]!];
      const got = [0, 1, 2].map((r) => s.affine[r]![0]! * i + s.affine[r]![1]! * j + s.affine[r]![2]! * k + s.affine[r]![3]!);
      got.forEach((x, r) => expect(x).toBeCloseTo(ras[r]!, 6));
    }
  });

  it("a stack stored against its normal is reversed: k follows the normal, the affine's k column points back", () => {
    const spec = axial({ sliceStep: [0, 0, -2.5] });
    const dir = folder();
    writeSeries(dir, spec);
    const s = readDicomSeries(dir);
    const [I, J, K] = DIMS;
    for (let k = 0; k < K; k++) {
      expect(Array.from(s.data.subarray(k * I * J, (k + 1) * I * J))).toEqual(Array.from(spec.hu as Int16Array).slice((K - 1 - k) * I * J, (K - k) * I * J));
    }
    closeMatrix(s.affineLps, [
      [0.7, 0, 0, -120.5],
      [0, 0.9, 0, 80.25],
      [0, 0, 2.5, -300 - 2.5 * (K - 1)],
      [0, 0, 0, 1],
    ]);
  });

  it("oblique and flipped orientations (rows along −x, columns tilted in y-z)", () => {
    const c = Math.cos(0.3), si = Math.sin(0.3);
    const rowDir: Vec3 = [-1, 0, 0];
    const colDir: Vec3 = [0, c, si];
    // The normal is rowDir × colDir = (0, si, −c); the slices step along it.
    const spec = axial({ rowDir, colDir, sliceStep: [0, 3 * si, -3 * c] });
    const dir = folder();
    writeSeries(dir, spec);
    const s = readDicomSeries(dir);
    expect(Array.from(s.data)).toEqual(Array.from(spec.hu));
    closeMatrix(s.affineLps, expectedLps(spec));
    closeMatrix(s.affine, expectedLps(spec).map((row, r) => (r < 2 ? row.map((x) => -x) : row)));
  });

  it("applies RescaleSlope and RescaleIntercept: int16 while values fit, float32 otherwise", () => {
    const hu = ramp(DIMS);
    const integer = readDicomSeries(writeAndDir(axial({ slope: 2, intercept: -2000, hu: Int16Array.from(hu, (v) => 2 * Math.round(v / 2)) })));
    expect(integer.data).toBeInstanceOf(Int16Array);
    expect(Array.from(integer.data)).toEqual(Array.from(hu, (v) => 2 * Math.round(v / 2)));
    const half = Float32Array.from(hu, (v) => v / 2);
    const fractional = readDicomSeries(writeAndDir(axial({ slope: 0.5, intercept: 0, hu: half })));
    expect(fractional.data).toBeInstanceOf(Float32Array);
    expect(Array.from(fractional.data)).toEqual(Array.from(half));
    // Unsigned storage with a slope of 4: values beyond int16 need float32.
    const big = Float32Array.from(hu, (v) => 4 * (v + 1024) - 1024 + 60000);
    const wide = readDicomSeries(writeAndDir(axial({ slope: 4, intercept: 60000 - 1024, unsigned: true, hu: big })));
    expect(wide.data).toBeInstanceOf(Float32Array);
    expect(Array.from(wide.data)).toEqual(Array.from(big));
  });

  it("reads implicit, explicit and deflated little endian and explicit big endian to the same voxels", () => {
    for (const ts of [TS.implicit, TS.explicit, TS.deflated, TS.bigEndian]) {
      const spec = axial({ transferSyntax: ts });
      const s = readDicomSeries(writeAndDir(spec));
      expect(Array.from(s.data), ts).toEqual(Array.from(spec.hu));
      closeMatrix(s.affineLps, expectedLps(spec));
    }
  });

  it("refuses a compressed transfer syntax, naming it and the file", () => {
    const dir = writeAndDir(axial({ transferSyntax: TS.jpegLossless }));
    expect(() => readDicomSeries(dir)).toThrow(DicomError);
    expect(() => readDicomSeries(dir)).toThrow(/IM\d+\.dcm: compressed transfer syntax JPEG Lossless SV1 \(1\.2\.840\.10008\.1\.2\.4\.70\) is not supported/);
  });

  it("warns on a modality other than CT", () => {
    const warned: string[] = [];
    const s = readDicomSeries(writeAndDir(axial({ modality: "MR" })), { onWarning: (w) => warned.push(w) });
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/modality MR, not CT/);
    expect(s.warnings).toEqual(warned);
  });

  it("several series: listed without --series, read with it", () => {
    const dir = folder();
    const a = writeSeries(join(dir, "a"), axial());
    const b = writeSeries(join(dir, "b"), axial({ modality: "MR", studyUid: a.studyUid }));
    expect(() => readDicomSeries(dir)).toThrow(new RegExp(`holds 2 series; choose one with --series UID[^]*${a.seriesUid}  CT  9 file\\(s\\)[^]*${b.seriesUid}  MR`));
    expect(readDicomSeries(dir, { seriesUid: b.seriesUid }).seriesInstanceUid).toBe(b.seriesUid);
    expect(() => readDicomSeries(dir, { seriesUid: "1.2.3" })).toThrow(/has no series 1\.2\.3/);
  });

  it("refuses more voxels than maxVoxels before reading any pixels", () => {
    const dir = writeAndDir(axial());
    expect(() => readDicomSeries(dir, { maxVoxels: 7 * 5 * 9 - 1 })).toThrow(/7×5×9 = 315 voxels is more than the 314 allowed/);
    writeFileSync(join(dir, "zz.dcm"), "x"); // not even read: the bound comes first? no: headers come first
  });
});

function writeAndDir(spec: SeriesSpec): string {
  const dir = folder();
  writeSeries(dir, spec);
  return dir;
}
