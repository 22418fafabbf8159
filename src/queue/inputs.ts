// Reading a job's input in a long-lived worker. A worker reads thousands of
// files, some of them bad, and must not grow with each bad one: Node 20's
// zlib.gunzipSync leaks its output buffer when a gzip stream is corrupt or
// truncated (the volume's whole declared size, every time), and readNifti
// inflates with gunzipSync. So a .nii.gz is first inflated as a stream, in
// 64 KiB pieces that are thrown away (which frees everything, valid or not,
// and lets the event loop renew the job's lock meanwhile); only a stream that
// inflates cleanly goes to readNifti. A corrupt one fails the job with
// readNifti's own message.
//
// A DICOM folder is read by the worker through segment's own DICOM path
// (src/cli/segment_dicom.ts: readSegmentInput), which the queue may not
// import; readJobInput reads the NIfTI kind.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { checkFinite, readNifti, type NiftiVolume } from "../io/nifti.js";
import { JobInputError, type JobInput } from "./job.js";

/** Inflated bytes beyond which the stream pass stops: the most any accepted volume can hold (16-byte voxels, 64 MiB of extensions, slack). */
function inflateCap(maxVoxels: number): number {
  return maxVoxels * 16 + 66 * 2 ** 20;
}

async function isGzipFile(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const magic = new Uint8Array(2);
    const { bytesRead } = await fh.read(magic, 0, 2, 0);
    return bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/**
 * Inflates `path` as a stream, keeping nothing; resolves when the stream is
 * whole (or holds more than `cap` bytes: readNifti refuses those itself, and
 * without the leak), rejects with zlib's error when it is corrupt or truncated.
 */
export function checkGzipStream(path: string, cap: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const source = createReadStream(path);
    const gunzip = createGunzip();
    let bytes = 0;
    const stop = () => {
      source.destroy();
      gunzip.destroy();
      resolve();
    };
    source.on("error", reject);
    gunzip.on("error", reject);
    gunzip.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > cap) stop();
    });
    gunzip.on("end", () => resolve());
    source.pipe(gunzip);
  });
}

/** A NIfTI file as segment reads it (readNifti, then checkFinite), with a corrupt .nii.gz refused before it can leak. */
export async function readNiftiInput(path: string, maxVoxels: number): Promise<NiftiVolume> {
  try {
    if (await isGzipFile(path)) await checkGzipStream(path, inflateCap(maxVoxels));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (code.startsWith("Z_")) throw new JobInputError(`readNifti: ${path}: gzip data is truncated or corrupt (${(e as Error).message})`);
    throw new JobInputError(`readNifti: cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const vol = readNifti(path, { maxVoxels });
    checkFinite(vol);
    return vol;
  } catch (e) {
    throw new JobInputError((e as Error).message);
  }
}

/** The job's image, read and checked; a bad input throws JobInputError (the job fails, and is not retried). */
export async function readJobInput(input: Extract<JobInput, { kind: "nifti" }>, maxVoxels: number): Promise<NiftiVolume> {
  switch (input.kind) {
    case "nifti":
      return readNiftiInput(input.path, maxVoxels);
  }
}
