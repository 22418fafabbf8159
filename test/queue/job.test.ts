// The job's schema and submit's parsing, without Redis: submit takes
// segment's flags and refuses what segment refuses, with segment's messages;
// a manifest is all or nothing; the worker re-checks a job's data.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { jobFromArgs, readManifest } from "../../src/cli/submit.js";
import { segmentOptsOf } from "../../src/cli/worker.js";
import { JobInputError, parseJob } from "../../src/queue/job.js";
import { checkGzipStream, readNiftiInput } from "../../src/queue/inputs.js";
import { runSegvol } from "../helpers/cli.js";
import { tempFolderWith } from "../helpers/temp.js";
import { writePhantoms } from "./harness.js";

const dir = tempFolderWith("segvol-queue-job", {});
const [image] = writePhantoms(join(dir, "ph"), [7]);

describe("a job: one segment call", () => {
  it("is segment's flags with absolute paths, and the worker reads them back as segment's options", () => {
    const job = jobFromArgs(["ph/imagesTr/phantom_7.nii.gz", "--text", "liver,spleen", "--box", "1,2,3,20,20,10", "--point", "5,5,5,0", "--out", "m.nii.gz", "--no-zoom-in", "--overlap", "0.25"], dir);
    expect(job).toEqual({
      v: 1,
      input: { kind: "nifti", path: image },
      prompts: { text: ["liver", "spleen"], box: "1,2,3,20,20,10", point: ["5,5,5,0"] },
      outputs: { out: join(dir, "m.nii.gz") },
      options: { zoomIn: false, overlap: "0.25", maxVoxels: String(512 * 512 * 2048) },
    });
    expect(parseJob(JSON.parse(JSON.stringify(job)))).toEqual(job);
    expect(segmentOptsOf(job, "W")).toEqual({ weights: "W", text: ["liver", "spleen"], box: "1,2,3,20,20,10", point: ["5,5,5,0"], out: join(dir, "m.nii.gz"), zoomIn: false, overlap: "0.25", maxVoxels: String(512 * 512 * 2048), progress: false });
  });

  it("refuses at submit what segment refuses, in segment's words", () => {
    const cases: [string[], RegExp][] = [
      [["ph/imagesTr/phantom_7.nii.gz", "--out", "m.nii.gz"], /^segment: give at least one prompt/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "m.nii.gz", "--overlap", "1"], /^--overlap 1: must be in \[0, 1\)/],
      [["ph/imagesTr/phantom_7.nii.gz", "--box", "1,2,3", "--out", "m.nii.gz"], /^--box 1,2,3: expected 6 comma-separated integers/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "m.png"], /^--out .*m\.png: the name must end in \.nii\.gz or \.nii/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "nowhere/m.nii.gz"], /^--out .*: folder .*nowhere does not exist/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--text", "spleen", "--logits", "l.nii.gz", "--out", "m.nii.gz"], /^--logits writes one target's logits/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "ph/imagesTr/phantom_7.nii.gz"], /refusing to write .* it is the input file/],
      [["missing.nii.gz", "--text", "liver", "--out", "m.nii.gz"], /^missing\.nii\.gz: no such file/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver"], /^give --out: a queued job writes a NIfTI mask/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "seg.dcm"], /^--out .*seg\.dcm: a DICOM-SEG needs a DICOM input/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--series", "1.2.3", "--out", "m.nii.gz"], /^--series goes with a DICOM folder/],
      [["ph", "--text", "liver", "--out", "ph/seg.dcm"], /^--out .*seg\.dcm: is inside the input folder/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "m.nii.gz", "--dicomweb", "http://127.0.0.1:1"], /^--dicomweb: a DICOMweb study is not queued: .*credentials would travel with it/],
      [["--dicomweb", "http://127.0.0.1:1", "ph/imagesTr/phantom_7.nii.gz", "--study", "1.2", "--text", "liver", "--out", "m.nii.gz"], /unknown option '--study'/],
      [["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "m.nii.gz", "--weights", "w"], /unknown option '--weights'/],
    ];
    for (const [args, message] of cases) expect(() => jobFromArgs(args, dir), args.join(" ")).toThrow(message);
    // A folder is a DICOM job (the worker reads the series), with its --series and a .dcm --out.
    const dicom = jobFromArgs(["ph", "--series", "1.2.3", "--text", "liver", "--out", "seg.dcm"], dir);
    expect(dicom.input).toEqual({ kind: "dicom", path: join(dir, "ph"), series: "1.2.3" });
    expect(parseJob(JSON.parse(JSON.stringify(dicom)))).toEqual(dicom);
    expect(segmentOptsOf(dicom, "W").series).toBe("1.2.3");
    // The same flags, the same words as `segvol segment` (which also needs --weights).
    const seg = runSegvol(dir, ["segment", "ph/imagesTr/phantom_7.nii.gz", "--weights", "w", "--box", "1,2,3", "--out", "m.nii.gz"]);
    expect(seg.stderr.trim()).toBe("segvol: --box 1,2,3: expected 6 comma-separated integers");
  });

  it("a manifest is one segment call per line, paths relative to it; one bad line refuses it all", () => {
    writeFileSync(join(dir, "ok.jsonl"), ['["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "a.nii.gz"]', "", '["ph/imagesTr/phantom_7.nii.gz", "--box", "1,1,1,9,9,9", "--out", "b.nii.gz"]', ""].join("\n"));
    expect(readManifest(join(dir, "ok.jsonl")).map((j) => j.outputs.out)).toEqual([join(dir, "a.nii.gz"), join(dir, "b.nii.gz")]);
    writeFileSync(join(dir, "bad.jsonl"), '["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "a.nii.gz"]\n{"image": "x"}\n');
    expect(() => readManifest(join(dir, "bad.jsonl"))).toThrow(/bad\.jsonl line 2: expected a JSON array of strings/);
    writeFileSync(join(dir, "bad2.jsonl"), '["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "a.nii.gz", "--overlap", "-1"]\n');
    expect(() => readManifest(join(dir, "bad2.jsonl"))).toThrow(/bad2\.jsonl line 1: --overlap -1: must be in \[0, 1\)/);
  });

  it("the worker refuses malformed job data as bad input (not retried)", () => {
    const good = jobFromArgs(["ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "m.nii.gz"], dir);
    const cases: [unknown, RegExp][] = [
      [null, /the job must be an object/],
      [{ ...good, v: 2 }, /schema version 2: this worker reads version 1/],
      [{ ...good, input: { kind: "dicomweb", study: "1.2" } }, /input\.kind "dicomweb": this worker reads "nifti" \(.*\), "dicom" \(a folder of DICOM files/],
      [{ ...good, input: { kind: "dicom", folder: "/x" } }, /input has unknown field folder/],
      [{ ...good, input: { kind: "nifti", path: "/x.nii.gz", series: "1.2" } }, /input has unknown field series/],
      [{ ...good, input: { kind: "dicom", path: "/x", series: 3 } }, /input\.series must be a non-empty string/],
      [{ ...good, input: { kind: "nifti", path: "rel.nii.gz" } }, /input\.path rel\.nii\.gz: must be an absolute path/],
      [{ ...good, outputs: { out: "/a.nii.gz", mask: "/b" } }, /outputs has unknown field mask/],
      [{ ...good, prompts: { text: "liver" } }, /prompts\.text must be a list of non-empty strings/],
      [{ ...good, options: { ...good.options, zoomIn: "yes" } }, /options\.zoomIn must be true or false/],
      [{ ...good, extra: 1 }, /the job has unknown field extra/],
    ];
    for (const [data, message] of cases) {
      expect(() => parseJob(data)).toThrow(message);
      expect(() => parseJob(data)).toThrow(JobInputError);
    }
  });
});

describe("reading a job's input in a long-lived worker", () => {
  it("a corrupt or truncated .nii.gz is found by the stream pass, with readNifti's message", async () => {
    const whole = readFileSync(image!);
    const corrupt = Buffer.from(whole);
    corrupt.fill(0x55, whole.length >> 1, (whole.length >> 1) + 32);
    writeFileSync(join(dir, "corrupt.nii.gz"), corrupt);
    writeFileSync(join(dir, "short.nii.gz"), whole.subarray(0, whole.length - 20));
    for (const name of ["corrupt.nii.gz", "short.nii.gz"]) {
      await expect(checkGzipStream(join(dir, name), 1 << 30)).rejects.toThrow();
      await expect(readNiftiInput(join(dir, name), 1 << 20)).rejects.toThrow(new RegExp(`readNifti: .*${name}: gzip data is truncated or corrupt`));
    }
    await expect(readNiftiInput(join(dir, "none.nii.gz"), 1 << 20)).rejects.toThrow(/readNifti: cannot read .*none\.nii\.gz/);
    const vol = await readNiftiInput(image!, 1 << 20);
    expect(vol.dims).toEqual([32, 32, 16]);
  });

  it("a worker that reads many corrupt .nii.gz does not grow", () => {
    // 40 corrupt files declaring 32 MiB each: gunzipSync alone would leak ~1.3 GB.
    const script = `
      import { randomFillSync } from "node:crypto";
      import { readFileSync, writeFileSync } from "node:fs";
      import { gzipSync } from "node:zlib";
      import { niftiFromArray, writeNifti } from "${join(__dirname, "../../src/io/nifti.ts")}";
      import { readNiftiInput } from "${join(__dirname, "../../src/queue/inputs.ts")}";
      const dims = [256, 256, 128], n = dims[0] * dims[1] * dims[2];
      writeNifti("${join(dir, "big.nii")}", niftiFromArray(dims, new Float32Array(n), { datatype: "int16" }), randomFillSync(new Int16Array(n)), "int16");
      const gz = gzipSync(readFileSync("${join(dir, "big.nii")}"));
      gz.fill(0x55, gz.length >> 1, (gz.length >> 1) + 64);
      writeFileSync("${join(dir, "big_corrupt.nii.gz")}", gz);
      const rss0 = process.memoryUsage().rss;
      for (let n = 0; n < 40; n++) await readNiftiInput("${join(dir, "big_corrupt.nii.gz")}", 2 ** 29).then(() => { throw new Error("read"); }, (e) => { if (!/corrupt/.test(e.message)) throw e; });
      globalThis.gc();
      console.log(JSON.stringify({ grownMiB: (process.memoryUsage().rss - rss0) / 2 ** 20 }));
    `;
    writeFileSync(join(dir, "leak.mts"), script);
    const r = spawnSync(process.execPath, [join(__dirname, "../../node_modules/tsx/dist/cli.mjs"), join(dir, "leak.mts")], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "--expose-gc" } });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).grownMiB).toBeLessThan(200);
  });
});

describe("the queue commands without a Redis", () => {
  it("say which Redis they cannot reach and why, the password hidden; refuse a URL that is not redis://", () => {
    const down = runSegvol(dir, ["status", "--redis", "redis://:secret@127.0.0.1:1"]);
    expect(down.code).toBe(1);
    expect(down.stderr.trim()).toBe("segvol: cannot reach Redis at redis://:***@127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1");
    const submit = runSegvol(dir, ["submit", "--redis", "http://127.0.0.1:1", "ph/imagesTr/phantom_7.nii.gz", "--text", "liver", "--out", "m.nii.gz"]);
    expect(submit.stderr.trim()).toBe("segvol: --redis http://127.0.0.1:1: expected a redis:// or rediss:// URL");
  });
});
