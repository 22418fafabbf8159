// `segvol segment` on a DICOM folder, end to end (tsx on the sources, the
// demo weights): the phantom as a CT series segments exactly as its NIfTI
// does, the DICOM-SEG's frames land on the right slices, NIfTI written from
// DICOM keeps the DICOM geometry (the phantom's RAS affine), every refusal
// fails with one line and writes nothing, several series are listed, and a
// non-CT series is warned about.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writePhantom, type Phantom } from "../../src/demo/phantom.js";
import { readNifti } from "../../src/io/nifti.js";
import { runSegvolAsync } from "../helpers/cli_async.js";
import { dice, readSeg } from "../helpers/dicom_seg.js";
import { part10, specFromRas, TS, writeSeries, type SeriesSpec } from "../helpers/dicom_series.js";

const REPO = join(__dirname, "..", "..");
const DEMO = join(REPO, "weights", "demo");
let dir: string;
let phantom: Phantom;
let built: ReturnType<typeof writeSeries>;
const segvol = (...args: string[]) => runSegvolAsync(dir, args);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "segvol-dicom-cli-"));
  phantom = writePhantom(join(dir, "nifti"), 4242).phantom;
  built = writeSeries(join(dir, "ct"), specFromRas(phantom.dims, phantom.image, phantom.affine));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Several minute-long segmentations per test on a loaded 2-core machine.
describe("segvol segment on a DICOM folder", { timeout: 400_000 }, () => {
  it("segments the phantom's CT series as its NIfTI: DICOM-SEG frames on the right slices, NIfTI logits in the phantom's RAS geometry", async () => {
    const ref = await segvol("segment", "nifti/imagesTr/phantom_4242.nii.gz", "--weights", DEMO, "--text", "liver", "--out", "ref.nii.gz", "--no-progress");
    expect(ref.code, ref.stderr).toBe(0);
    const r = await segvol("segment", "ct", "--weights", DEMO, "--text", "liver", "--out", "liver.dcm", "--logits", "logits.nii.gz", "--json", "--no-progress");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.series).toBe(built.seriesUid);
    expect(summary.seg.studyInstanceUid).toBe(built.studyUid);
    const want = readNifti(join(dir, "ref.nii.gz")).data;
    // The series was built slice k = the phantom's k: its instances in k order.
    const seg = readSeg(readFileSync(join(dir, "liver.dcm")), phantom.dims, built.slices.map((s) => s.sopInstanceUid));
    expect(seg.dataset.SOPInstanceUID).toBe(summary.seg.sopInstanceUid);
    expect(seg.dataset.SeriesInstanceUID).toBe(summary.seg.seriesInstanceUid);
    expect([...seg.descriptions]).toEqual([["liver", "liver"]]);
    const liver = seg.masks.get("liver")!;
    expect(liver.reduce((a, b) => a + b, 0)).toBeGreaterThan(1000);
    expect(dice(liver, want)).toBeGreaterThanOrEqual(0.999);
    const logits = readNifti(join(dir, "logits.nii.gz"));
    expect(logits.dims).toEqual(phantom.dims);
    logits.affine.forEach((row, a) => row.forEach((x, b) => expect(x).toBeCloseTo(phantom.affine[a]![b]!, 4)));
    expect(dice(Uint8Array.from(logits.data, (x) => (x > 0 ? 1 : 0)), want)).toBeGreaterThanOrEqual(0.999);
  });

  /** A small broken copy of a series: `spec` edits, or `after` changes the folder. */
  function broken(name: string, extra: Partial<SeriesSpec>, after?: (d: string, names: string[]) => void): string {
    seriesOf.set(name, brokenSeries(name, extra, after));
    return name;
  }
  const seriesOf = new Map<string, string>();
  function brokenSeries(name: string, extra: Partial<SeriesSpec>, after?: (d: string, names: string[]) => void): string {
    const d = join(dir, name);
    const b = writeSeries(d, {
      dims: [16, 16, 8], hu: new Int16Array(16 * 16 * 8).fill(30), origin: [0, 0, 0], rowDir: [1, 0, 0], colDir: [0, 1, 0],
      pixelSpacing: [1, 1], sliceStep: [0, 0, 2], ...extra,
    });
    after?.(d, b.slices.map((s) => s.name));
    return b.seriesUid;
  }

  it("refuses broken series with one line and writes nothing", async () => {
    const cases: [string, RegExp][] = [
      [broken("gap", {}, (d, names) => unlinkSync(join(d, names[3]!))), /a gap: 1 slice\(s\) missing/],
      [broken("dup", { edit: (k, ds) => k === 5 && (ds.ImagePositionPatient = [0, 0, 8]) }), /duplicate slice position 8 mm/],
      [broken("irregular", { edit: (k, ds) => k === 5 && (ds.ImagePositionPatient = [0, 0, 10.7]) }), /irregular slice spacing/],
      [broken("tilt", { sliceStep: [0, 0.5, 2] }), /gantry tilt/],
      [broken("orient", { edit: (k, ds) => k === 2 && (ds.ImageOrientationPatient = [1, 0, 0, 0, 0.8, 0.6]) }), /mixed orientations/],
      [broken("nonimage", {}, (d) => writeFileSync(join(d, "sr.dcm"), part10({ SOPClassUID: "1.2.840.10008.5.1.4.1.1.88.22", SOPInstanceUID: "2.25.5", Modality: "SR", SeriesInstanceUID: "2.25.6" }, TS.explicit))), /holds 2 series/],
      [broken("corrupt", {}, (d, names) => writeFileSync(join(d, names[2]!), readFileSync(join(d, names[2]!)).subarray(0, 300))), /corrupt or unreadable DICOM file/],
      [broken("jpeg", { transferSyntax: TS.jpegLossless }), /compressed transfer syntax JPEG Lossless SV1/],
    ];
    for (const [name, message] of cases) {
      const r = await segvol("segment", name, "--weights", DEMO, "--text", "liver", "--out", `${name}.dcm`, "--logits", `${name}.nii.gz`);
      expect(r.code, name).toBe(1);
      expect(r.stderr, name).toMatch(message);
      expect(r.stderr.startsWith("segvol: "), name).toBe(true);
      expect(existsSync(join(dir, `${name}.dcm`)) || existsSync(join(dir, `${name}.nii.gz`)), name).toBe(false);
    }
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp") || f.endsWith(".probe"))).toEqual([]);
  });

  it("a non-image object inside the chosen series is refused, naming it", async () => {
    const name = broken("nonimage-same", {});
    // An SR in the same series as the images.
    const series = seriesOf.get(name)!;
    writeFileSync(join(dir, name, "sr.dcm"), part10({ SOPClassUID: "1.2.840.10008.5.1.4.1.1.88.22", SOPInstanceUID: "2.25.7", Modality: "SR", SeriesInstanceUID: series }, TS.explicit));
    const r = await segvol("segment", name, "--weights", DEMO, "--text", "liver", "--out", "x.dcm");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sr\.dcm: not an image slice \(SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.88\.22, modality SR\)/);
    expect(existsSync(join(dir, "x.dcm"))).toBe(false);
  });

  it("checks the DICOM flags before reading anything", async () => {
    const cases: [string[], RegExp][] = [
      [["nifti/imagesTr/phantom_4242.nii.gz", "--out", "a.dcm"], /a DICOM-SEG needs a DICOM input/],
      [["ct", "--out", "ct/inside.dcm"], /is inside the input folder/],
      [["ct", "--store", "--out", "b.dcm"], /--store goes with --dicomweb/],
      [["--dicomweb", "http://localhost:1/dicom-web", "--out", "c.dcm"], /--dicomweb needs --study UID/],
      [["--dicomweb", "http://pacs.example.org/dicom-web", "--study", "1.2", "--store"], /plain http to pacs\.example\.org would send patient data and credentials unencrypted; use https, or --insecure/],
      [["ct"], /give --out/],
    ];
    for (const [args, message] of cases) {
      const r = await segvol("segment", ...args, "--weights", DEMO, "--text", "liver");
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toMatch(message);
    }
  });

  it("warns about a series that is not CT, and segments it", async () => {
    broken("mr", { modality: "MR", dims: [32, 32, 8], hu: new Int16Array(32 * 32 * 8).map((_, x) => ((x * 7919) % 400) - 100) });
    const r = await segvol("segment", "mr", "--weights", DEMO, "--text", "liver", "--out", "mr.nii.gz", "--no-zoom-in", "--no-progress");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: series .* has modality MR, not CT/);
    expect(existsSync(join(dir, "mr.nii.gz"))).toBe(true);
  });
});
