// One slice's stored pixels → rescaled values in the volume. The output
// starts as int16 when every slice's RescaleSlope and RescaleIntercept are
// integers (CT's usual 1 and −1024: half float32's memory) and becomes
// float32 the first time a value does not fit.
import type { NaturalizedDataset } from "dcmjs";
import type { VoxelArray } from "../io/nifti.js";
import { DicomError, shown } from "./errors.js";

/** How one slice stores its pixels, read from its header and checked. */
export interface PixelFormat {
  bitsAllocated: 8 | 16;
  bitsStored: number;
  signed: boolean;
  slope: number;
  intercept: number;
}

const num = (v: unknown): number | undefined => {
  const x = Array.isArray(v) ? v[0] : v;
  return x === undefined || x === null || x === "" ? undefined : Number(x);
};

/** The pixel format of a slice, refusing what this reader does not decode (colour, multi-frame, odd bit depths). */
export function pixelFormat(ds: NaturalizedDataset, name: string): PixelFormat {
  const spp = num(ds.SamplesPerPixel) ?? 1;
  const photometric = String(ds.PhotometricInterpretation ?? "MONOCHROME2").trim();
  if (spp !== 1 || !/^MONOCHROME[12]$/.test(photometric)) {
    throw new DicomError(`colour image (SamplesPerPixel ${spp}, ${shown(photometric, 32)}): a CT slice is greyscale (MONOCHROME2)`, name);
  }
  const frames = num(ds.NumberOfFrames) ?? 1;
  if (frames !== 1) throw new DicomError(`multi-frame image (${frames} frames): only single-frame slices are read`, name);
  const bitsAllocated = num(ds.BitsAllocated);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw new DicomError(`BitsAllocated ${String(bitsAllocated)} is not supported (8 or 16)`, name);
  const bitsStored = num(ds.BitsStored) ?? bitsAllocated;
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > bitsAllocated) {
    throw new DicomError(`BitsStored ${bitsStored} does not fit BitsAllocated ${bitsAllocated}`, name);
  }
  const highBit = num(ds.HighBit) ?? bitsStored - 1;
  if (highBit !== bitsStored - 1) throw new DicomError(`HighBit ${highBit} with BitsStored ${bitsStored} is not supported (pixels must sit in the low bits)`, name);
  const rep = num(ds.PixelRepresentation) ?? 0;
  if (rep !== 0 && rep !== 1) throw new DicomError(`PixelRepresentation ${rep} must be 0 or 1`, name);
  const slope = num(ds.RescaleSlope) ?? 1;
  const intercept = num(ds.RescaleIntercept) ?? 0;
  if (!Number.isFinite(slope) || slope === 0 || !Number.isFinite(intercept)) {
    throw new DicomError(`RescaleSlope ${shown(ds.RescaleSlope, 32)} / RescaleIntercept ${shown(ds.RescaleIntercept, 32)} are not finite numbers (slope ≠ 0)`, name);
  }
  return { bitsAllocated, bitsStored, signed: rep === 1, slope, intercept };
}

/** The Pixel Data element's bytes (dcmjs gives one ArrayBuffer, or several chunks). */
function pixelBytes(ds: NaturalizedDataset, name: string): Uint8Array {
  const v = ds.PixelData;
  const parts = (Array.isArray(v) ? v : [v]).filter((p): p is ArrayBuffer | ArrayBufferView => p instanceof ArrayBuffer || ArrayBuffer.isView(p));
  if (parts.length === 0) throw new DicomError("no Pixel Data", name);
  const views = parts.map((p) => (p instanceof ArrayBuffer ? new Uint8Array(p) : new Uint8Array(p.buffer, p.byteOffset, p.byteLength)));
  if (views.length === 1) return views[0]!;
  const out = new Uint8Array(views.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of views) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The stored integers of one slice (`count` pixels), masked to BitsStored and
 * sign-extended. dcmjs hands over 16-bit pixel data as the file's bytes, also
 * in Explicit VR Big Endian (it swaps other binary values, not OW): `bigEndian`
 * reads those.
 */
function storedValues(bytes: Uint8Array, f: PixelFormat, count: number, bigEndian: boolean): Int32Array {
  const out = new Int32Array(count);
  const wide = f.bitsAllocated === 16;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const mask = (1 << f.bitsStored) - 1;
  const sign = 1 << (f.bitsStored - 1);
  for (let n = 0; n < count; n++) {
    let v = (wide ? view.getUint16(2 * n, !bigEndian) : bytes[n]!) & mask;
    if (f.signed && v & sign) v -= 2 * sign;
    out[n] = v;
  }
  return out;
}

/** The volume being filled: int16 until a value needs float32. */
export class VolumeBuilder {
  data: VoxelArray;
  constructor(size: number, integerScaling: boolean) {
    this.data = integerScaling ? new Int16Array(size) : new Float32Array(size);
  }

  /** Writes one slice's rescaled values from voxel `at`; refuses pixel data shorter than Rows × Columns. */
  putSlice(ds: NaturalizedDataset, f: PixelFormat, slice: { count: number; at: number; bigEndian: boolean }, name: string): void {
    const { count, at } = slice;
    const bytes = pixelBytes(ds, name);
    const need = (count * f.bitsAllocated) / 8;
    if (bytes.length < need) {
      throw new DicomError(`corrupt pixel data: ${bytes.length} bytes, Rows × Columns × BitsAllocated needs ${need}`, name);
    }
    const stored = storedValues(bytes, f, count, slice.bigEndian);
    if (this.data instanceof Int16Array && !this.fitsInt16(stored, f)) this.data = Float32Array.from(this.data);
    const out = this.data;
    for (let n = 0; n < count; n++) out[at + n] = stored[n]! * f.slope + f.intercept;
  }

  private fitsInt16(stored: Int32Array, f: PixelFormat): boolean {
    if (!Number.isInteger(f.slope) || !Number.isInteger(f.intercept)) return false;
    for (let n = 0; n < stored.length; n++) {
      const v = stored[n]! * f.slope + f.intercept;
      if (v < -32768 || v > 32767) return false;
    }
    return true;
  }
}
