// Every refusal of readDicomSeries on its own crafted input: a gap, a
// duplicate position, irregular spacing, a gantry tilt, mixed orientations,
// a non-image object, corrupt files. Each throws a DicomError that names
// the file(s) and says what is wrong. (test/dicom/cli.test.ts checks that
// `segvol segment` then writes nothing.)
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DicomError } from "../../src/dicom/errors.js";
import { readDicomSeries } from "../../src/dicom/series.js";
import { CT_IMAGE_STORAGE, part10, TS, writeSeries, type SeriesSpec, type Vec3 } from "../helpers/dicom_series.js";

const root = mkdtempSync(join(tmpdir(), "segvol-dicom-refuse-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const DIMS: Vec3 = [6, 5, 10];
function spec(extra: Partial<SeriesSpec> = {}): SeriesSpec {
  return {
    dims: DIMS,
    hu: new Int16Array(6 * 5 * 10).map((_, x) => (x % 50) - 20),
    origin: [10, 20, 30],
    rowDir: [1, 0, 0],
    colDir: [0, 1, 0],
    pixelSpacing: [0.8, 0.8],
    sliceStep: [0, 0, 2],
    ...extra,
  };
}

/** Writes a series (after `edit`), returns its folder and the slice file names by k. */
function series(extra: Partial<SeriesSpec> = {}): { dir: string; names: string[] } {
  const dir = join(root, `s${n++}`);
  const built = writeSeries(dir, spec(extra));
  return { dir, names: built.slices.map((s) => s.name) };
}

function refusal(dir: string): DicomError {
  try {
    readDicomSeries(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(DicomError);
    return e as DicomError;
  }
  throw new Error("readDicomSeries did not refuse the series");
}

describe("readDicomSeries refusals", () => {
  it("the valid series these inputs break is read", () => {
    expect(readDicomSeries(series().dir).dims).toEqual(DIMS);
  });

  it("a gap: a missing slice", () => {
    const { dir, names } = series();
    unlinkSync(join(dir, names[4]!));
    expect(refusal(dir).message).toMatch(new RegExp(`a gap: 1 slice\\(s\\) missing between .*${names[3]} \\(36 mm\\) and .*${names[5]} \\(40 mm\\); the other slices are 2 mm apart`));
  });

  it("a duplicate position", () => {
    const { dir, names } = series({ edit: (k, ds) => k === 6 && (ds.ImagePositionPatient = [10, 20, 30 + 2 * 5]) });
    // Slice 6 now sits where slice 5 is, and 6's own place is empty.
    expect(refusal(dir).message).toMatch(new RegExp(`duplicate slice position 40 mm along the normal: .*(${names[5]}|${names[6]}) and .*(${names[5]}|${names[6]})`));
  });

  it("irregular spacing", () => {
    const { dir, names } = series({ edit: (k, ds) => k === 3 && (ds.ImagePositionPatient = [10, 20, 30 + 2 * 3 + 0.6]) });
    expect(refusal(dir).message).toMatch(new RegExp(`irregular slice spacing: 2\\.6 mm between .*${names[2]} \\(34 mm\\) and .*${names[3]} \\(36\\.6 mm\\), 2 mm elsewhere`));
  });

  it("a gantry tilt: positions drift along y from slice to slice", () => {
    const { dir } = series({ sliceStep: [0, 0.35, 2] });
    expect(refusal(dir).message).toMatch(/gantry tilt: .* lies .* mm off the slice normal through .* \(a 9\.9\d*° tilt\)/);
  });

  it("mixed orientations", () => {
    const c = Math.cos(0.05), s = Math.sin(0.05);
    const { dir, names } = series({ edit: (k, ds) => k === 2 && (ds.ImageOrientationPatient = [c, s, 0, -s, c, 0]) });
    expect(refusal(dir).message).toMatch(new RegExp(`mixed orientations: .* has ImageOrientationPatient 1\\\\0\\\\0\\\\0\\\\1\\\\0, .*${names[2]} 0\\.999\\\\0\\.05`));
  });

  it("a non-image object in the series (a structured report without pixel data)", () => {
    const { dir } = series();
    const first = readdirSync(dir)[0]!;
    const sr = { SOPClassUID: "1.2.840.10008.5.1.4.1.1.88.22", SOPInstanceUID: "2.25.77", Modality: "SR", SeriesInstanceUID: readDicomSeries(dir).seriesInstanceUid, StudyInstanceUID: "2.25.78" };
    writeFileSync(join(dir, "report.dcm"), part10(sr, TS.explicit));
    const e = refusal(dir);
    expect(e.message).toMatch(/report\.dcm: not an image slice \(SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.88\.22, modality SR\): it has no Pixel Data/);
    expect(first).not.toBe("report.dcm");
  });

  it("an image without ImagePositionPatient (a secondary capture) is not a slice", () => {
    const { dir, names } = series({ edit: (k, ds) => k === 1 && delete ds.ImagePositionPatient });
    expect(refusal(dir).message).toMatch(new RegExp(`${names[1]}: not an image slice \\(SOP class ${CT_IMAGE_STORAGE.replace(/\./g, "\\.")}, modality CT\\): ImagePositionPatient is missing`));
  });

  it("corrupt files: truncated, not DICOM, short pixel data", () => {
    const truncated = series();
    const path = join(truncated.dir, truncated.names[7]!);
    const whole = readFileSync(path);
    writeFileSync(path, whole.subarray(0, 400));
    expect(refusal(truncated.dir).message).toMatch(new RegExp(`${truncated.names[7]}: corrupt or unreadable DICOM file \\(`));

    const text = series();
    writeFileSync(join(text.dir, "notes.txt"), "not dicom\n");
    expect(refusal(text.dir).message).toMatch(/notes\.txt: not a DICOM Part 10 file/);

    const short = series({ edit: (k, ds) => k === 8 && (ds.PixelData = [new ArrayBuffer(20)]) });
    expect(refusal(short.dir).message).toMatch(new RegExp(`${short.names[8]}: corrupt pixel data: 20 bytes, Rows × Columns × BitsAllocated needs 60`));
  });

  it("an inconsistent pixel format: 16 bits stored in 8 allocated", () => {
    const { dir, names } = series({ edit: (k, ds) => k === 0 && (ds.BitsAllocated = 8) });
    expect(refusal(dir).message).toMatch(new RegExp(`${names[0]}: BitsStored 16 does not fit BitsAllocated 8`));
  });
});
