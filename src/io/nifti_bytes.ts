// NIfTI from and to bytes, the same in Node and in a page: gzip through the
// platform's DecompressionStream / CompressionStream (no zlib binding), the
// header, limits and voxel decoding through nifti.ts's decodeNifti. A gzip
// stream is inflated no further than the voxels its header declares, as
// readNifti does.
import { NIFTI_HEADER_BYTES, NiftiError, decodeNifti, niftiDeclaredBytes, niftiFileBytes, type NiftiVolume, type ReadNiftiOptions } from "./nifti.js";

const isGzip = (b: Uint8Array) => b[0] === 0x1f && b[1] === 0x8b;

/**
 * Parses a .nii or .nii.gz held in memory (gzip is detected from the bytes).
 * `name` names it in errors. Volumes over `opts.maxVoxels` are refused
 * before their voxels are inflated; `bytes` is not modified.
 */
export async function parseNifti(bytes: Uint8Array | ArrayBuffer, name = "<buffer>", opts: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  const file = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (!isGzip(file)) return decodeNifti(file, name, opts);
  const inflating = new Blob([file as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
  return decodeNifti(await readInflatedBounded(inflating, name, opts), name, opts);
}

/**
 * Reads an inflating NIfTI stream whole, checking its header as soon as the
 * header has arrived (in chunks of any size: a page's DecompressionStream
 * decides them) and refusing to read more than the header declares.
 */
export async function readInflatedBounded(stream: ReadableStream<Uint8Array>, name: string, opts: ReadNiftiOptions): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let limit: number | null = null;
  for (;;) {
    let step: Awaited<ReturnType<typeof reader.read>>;
    try {
      step = await reader.read();
    } catch (e) {
      throw new NiftiError(`readNifti: ${name}: gzip data is truncated or corrupt (${(e as Error).message})`);
    }
    if (!step.done) {
      chunks.push(step.value);
      total += step.value.byteLength;
    }
    if (limit === null && (total >= NIFTI_HEADER_BYTES || step.done)) {
      // decodeNifti's header checks (size limits first) on what has arrived.
      limit = niftiDeclaredBytes(concat(chunks, total), name, opts).limit;
    }
    if (limit !== null && total > limit) {
      await reader.cancel().catch(() => {});
      throw new NiftiError(`readNifti: ${name}: the gzip stream holds more than the bytes its header declares; refusing to inflate it`);
    }
    if (step.done) return concat(chunks, total);
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  chunks.splice(0, chunks.length, out);
  return out;
}

/**
 * A NIfTI file's bytes holding `data` (i fastest, one value per voxel of
 * `like`) as uint8, int16 or float32 in `like`'s geometry; gzipped (.nii.gz)
 * unless `gzip: false`.
 */
export async function encodeNifti(
  like: NiftiVolume,
  data: ArrayLike<number>,
  datatype: "uint8" | "int16" | "float32",
  opts: { gzip?: boolean; descrip?: string } = {},
): Promise<Uint8Array> {
  const file = niftiFileBytes(like, data, datatype, { descrip: opts.descrip });
  if (opts.gzip === false) return file;
  const gz = new Blob([file as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(gz).arrayBuffer());
}
