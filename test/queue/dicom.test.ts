// DICOM input through the queue, against a real redis-server and a `segvol
// worker` process (the built CLI, the demo model): a job on a folder that
// holds two CT series (the phantom and another, so that --series matters)
// writes the DICOM-SEG and the NIfTI mask that `segvol segment` writes for
// the same folder and flags, and a job on a broken series fails once, with
// the DicomError message segment prints.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writePhantom } from "../../src/demo/phantom.js";
import { naturalize, readSeg } from "../helpers/dicom_seg.js";
import { buildSeries, specFromRas, writeSeries } from "../helpers/dicom_series.js";
import { waitFor } from "../helpers/redis.js";
import { tempFolderWith } from "../helpers/temp.js";
import { DEMO, PHANTOM_DIMS, requireBuild, segvol, useQueue, useRedis, useWorkers, type QueueView } from "./harness.js";

/* eslint-disable @typescript-eslint/no-explicit-any */
const list = (x: any): any[] => ([] as any[]).concat(x);

/** Submits one job (segment's arguments) and waits for its end; returns the BullMQ job. */
async function runJob(q: QueueView, redis: string, dir: string, args: string[]) {
  const r = segvol(["submit", "--redis", redis, ...args, "--json"], dir);
  expect(r.code, r.stderr).toBe(0);
  const id = JSON.parse(r.stdout).jobs[0].id as string;
  return waitFor(`job ${id} ended`, async () => {
    const j = await q.job(id);
    const state = await j.getState();
    return state === "completed" || state === "failed" ? j : undefined;
  }, 180_000, 200);
}

/** What a SEG says apart from its fresh UIDs: its segments, and each frame's segment, source slice and bits. */
function segContent(bytes: Uint8Array) {
  const ds = naturalize(bytes);
  return {
    study: ds.StudyInstanceUID,
    frames: ds.NumberOfFrames,
    segments: list(ds.SegmentSequence).map((s) => [s.SegmentNumber, s.SegmentLabel, s.SegmentDescription]),
    perFrame: list(ds.PerFrameFunctionalGroupsSequence).map((f) => [
      list(f.SegmentIdentificationSequence)[0].ReferencedSegmentNumber,
      list(list(f.DerivationImageSequence)[0].SourceImageSequence)[0].ReferencedSOPInstanceUID,
    ]),
    pixels: Buffer.from(list(ds.PixelData)[0]),
  };
}

describe("DICOM folders through the queue (BullMQ on a real redis-server)", { timeout: 400_000 }, () => {
  const dir = tempFolderWith("segvol-queue-dicom", {});
  const redis = useRedis();
  const q = useQueue(redis);
  const startWorker = useWorkers();
  let series: ReturnType<typeof writeSeries>;
  const out = join(dir, "out");

  beforeAll(async () => {
    requireBuild();
    // The phantom as a CT series, and a second phantom's series in the same folder (its files renamed apart).
    const a = writePhantom(join(dir, "nifti"), 601, { dims: PHANTOM_DIMS }).phantom;
    series = writeSeries(join(dir, "ct"), specFromRas(a.dims, a.image, a.affine));
    const b = writePhantom(join(dir, "nifti"), 602, { dims: PHANTOM_DIMS }).phantom;
    for (const s of buildSeries(specFromRas(b.dims, b.image, b.affine)).slices) writeFileSync(join(dir, "ct", `B${s.name}`), s.bytes);
    // A broken copy of the phantom's series: one slice cut short.
    mkdirSync(join(dir, "bad"));
    for (const s of series.slices) copyFileSync(join(dir, "ct", s.name), join(dir, "bad", s.name));
    const cut = join(dir, "bad", series.slices[5]!.name);
    writeFileSync(cut, readFileSync(cut).subarray(0, 600));
    mkdirSync(join(dir, "ref"));
    mkdirSync(out);
    await startWorker(redis.url, "D");
  }, 300_000);

  it("a DICOM-SEG and a NIfTI mask from a folder's series, as `segvol segment` writes them", async () => {
    const seg = ["ct", "--series", series.seriesUid, "--text", "liver", "--text", "spleen"];
    const mask = ["ct", "--series", series.seriesUid, "--text", "liver"];
    for (const [args, file] of [[seg, "seg.dcm"], [mask, "liver.nii.gz"]] as const) {
      const r = segvol(["segment", ...args, "--out", `ref/${file}`, "--weights", DEMO, "--no-progress"], dir);
      expect(r.code, r.stderr).toBe(0);
    }
    const segJob = await runJob(q, redis.url, dir, [...seg, "--out", "out/seg.dcm"]);
    expect(segJob.failedReason).toBeUndefined();
    const maskJob = await runJob(q, redis.url, dir, [...mask, "--out", "out/liver.nii.gz"]);
    expect(maskJob.failedReason).toBeUndefined();
    // Only the final files: the writers are atomic.
    expect(readdirSync(out).sort()).toEqual(["liver.nii.gz", "seg.dcm"]);
    expect(readFileSync(join(out, "liver.nii.gz")).equals(readFileSync(join(dir, "ref", "liver.nii.gz")))).toBe(true);
    const got = readFileSync(join(out, "seg.dcm"));
    const want = segContent(readFileSync(join(dir, "ref", "seg.dcm")));
    expect(segContent(got)).toEqual(want);
    expect(want.study).toBe(series.studyUid);
    expect(want.segments.map((s) => s[1])).toEqual(["liver", "spleen"]);
    // The frames cover the phantom's series only, and the liver is there.
    const masks = readSeg(got, PHANTOM_DIMS, series.slices.map((s) => s.sopInstanceUid)).masks;
    expect(masks.get("liver")!.reduce((x, y) => x + y, 0)).toBeGreaterThan(50);
    // The result is segment's --json summary: the source series, the new SEG's UIDs.
    const result = segJob.returnvalue as { series: string; seg: { seriesInstanceUid: string; sopInstanceUid: string } };
    expect(result.series).toBe(series.seriesUid);
    expect(naturalize(got).SOPInstanceUID).toBe(result.seg.sopInstanceUid);
  });

  it("a broken series fails once, with the DicomError message segment prints, and writes nothing", async () => {
    // The folder's absolute path, as the job carries it: the message names the file under it.
    const args = [join(dir, "bad"), "--text", "liver", "--out", "out/bad.dcm"];
    const r = segvol(["segment", ...args.map((a) => a.replace(/^out\//, "ref/")), "--weights", DEMO, "--no-progress"], dir);
    expect(r.code).toBe(1);
    const message = r.stderr.trim().replace(/^segvol: /, "");
    expect(message).toMatch(/bad\/IM\d+\.dcm: corrupt or unreadable DICOM file/);
    const job = await runJob(q, redis.url, dir, args);
    expect(job.failedReason).toBe(message);
    expect(job.attemptsMade).toBe(1);
    expect(readdirSync(out).filter((f) => f.startsWith("bad"))).toEqual([]);
  });
});
