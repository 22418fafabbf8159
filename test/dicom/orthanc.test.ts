// A real PACS: Orthanc with its DICOMweb plugin, started here on 127.0.0.1
// (test/helpers/orthanc.ts), loaded through its REST API with the phantom as
// a CT series. `segvol segment --dicomweb … --store` pulls the series over
// WADO-RS, segments it and stores the DICOM-SEG with STOW-RS; the SEG is
// fetched back through Orthanc's REST API (not our client) and checked:
// its segment, its references to the series' instances, and Dice ≥ 0.999
// against the same phantom segmented from NIfTI.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writePhantom, type Phantom } from "../../src/demo/phantom.js";
import { DicomWebClient } from "../../src/dicom/dicomweb.js";
import { readNifti } from "../../src/io/nifti.js";
import { runSegvolAsync } from "../helpers/cli_async.js";
import { dice, readSeg } from "../helpers/dicom_seg.js";
import { buildSeries, specFromRas, TS } from "../helpers/dicom_series.js";
import { orthancAvailable, startOrthanc, type Orthanc } from "../helpers/orthanc.js";

const DEMO = join(__dirname, "..", "..", "weights", "demo");
let dir: string;
let orthanc: Orthanc | undefined;
let phantom: Phantom;
let built: ReturnType<typeof buildSeries>;

beforeAll(async () => {
  if (!orthancAvailable()) throw new Error("Orthanc and its DICOMweb plugin are not installed: run scripts/setup.sh (apt-get install orthanc orthanc-dicomweb)");
  dir = mkdtempSync(join(tmpdir(), "segvol-pacs-"));
  orthanc = await startOrthanc();
  phantom = writePhantom(join(dir, "nifti"), 4242).phantom;
  built = buildSeries({ ...specFromRas(phantom.dims, phantom.image, phantom.affine), transferSyntax: TS.implicit });
  for (const s of built.slices) {
    const r = await orthanc.rest("/instances", { method: "POST", body: s.bytes, headers: { "Content-Type": "application/dicom" } });
    expect(r.status, await r.clone().text()).toBe(200);
  }
}, 300_000);

afterAll(async () => {
  await orthanc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("segvol segment --dicomweb against Orthanc", () => {
  it("pulls the series, segments it, stores the DICOM-SEG and prints its UIDs; the stored SEG matches the NIfTI result", async () => {
    const o = orthanc!;
    const ref = await runSegvolAsync(dir, ["segment", "nifti/imagesTr/phantom_4242.nii.gz", "--weights", DEMO, "--text", "liver", "--out", "ref.nii.gz", "--no-progress"]);
    expect(ref.code, ref.stderr).toBe(0);
    const r = await runSegvolAsync(dir, ["segment", "--dicomweb", o.dicomweb, "--study", built.studyUid, "--user", o.user, "--password", o.password, "--weights", DEMO, "--text", "liver", "--store", "--json", "--no-progress"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.series).toBe(built.seriesUid);
    const { sopInstanceUid, seriesInstanceUid, studyInstanceUid } = summary.seg;
    expect(studyInstanceUid).toBe(built.studyUid);

    // Back from Orthanc's own API: find the instance by its SOP UID, download the file.
    const lookup = (await (await o.rest("/tools/lookup", { method: "POST", body: sopInstanceUid })).json()) as { ID: string; Type: string }[];
    expect(lookup.map((l) => l.Type)).toEqual(["Instance"]);
    const file = new Uint8Array(await (await o.rest(`/instances/${lookup[0]!.ID}/file`)).arrayBuffer());
    const seg = readSeg(file, phantom.dims, built.slices.map((s) => s.sopInstanceUid));
    expect(seg.dataset.SeriesInstanceUID).toBe(seriesInstanceUid);
    expect(seg.dataset.StudyInstanceUID).toBe(built.studyUid);
    expect(seg.dataset.FrameOfReferenceUID).toBe(built.frameOfReferenceUid);
    expect([...seg.descriptions]).toEqual([["liver", "liver"]]);
    const refSeries = ([] as any[]).concat(seg.dataset.ReferencedSeriesSequence)[0];
    expect(refSeries.SeriesInstanceUID).toBe(built.seriesUid);
    expect(new Set(([] as any[]).concat(refSeries.ReferencedInstanceSequence).map((x) => x.ReferencedSOPInstanceUID))).toEqual(new Set(built.slices.map((s) => s.sopInstanceUid)));
    const want = readNifti(join(dir, "ref.nii.gz")).data;
    const liver = seg.masks.get("liver")!;
    expect(liver.reduce((a, b) => a + b, 0)).toBeGreaterThan(1000);
    expect(dice(liver, want)).toBeGreaterThanOrEqual(0.999);

    // The study now lists the SEG beside the CT (QIDO-RS through our client).
    const client = new DicomWebClient(o.dicomweb, { user: o.user, password: o.password });
    const series = await client.searchSeries(built.studyUid);
    expect(series.map((s) => s.modality).sort()).toEqual(["CT", "SEG"]);
  }, 300_000);

  it("refuses wrong credentials and an unknown study with one line, before any segmentation", async () => {
    const o = orthanc!;
    const bad = await runSegvolAsync(dir, ["segment", "--dicomweb", o.dicomweb, "--study", built.studyUid, "--user", o.user, "--password", "wrong", "--weights", DEMO, "--text", "liver", "--store"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^segvol: http:\/\/127\.0\.0\.1:\d+\/dicom-web\/studies\/[\d.]+\/series: GET: HTTP 401 .*\(check --user\/--password or --token\)/);
    const none = await runSegvolAsync(dir, ["segment", "--dicomweb", o.dicomweb, "--study", "2.25.1", "--user", o.user, "--password", o.password, "--weights", DEMO, "--text", "liver", "--out", "none.dcm"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/study 2\.25\.1 holds 0 image series/);
  }, 120_000);
});
