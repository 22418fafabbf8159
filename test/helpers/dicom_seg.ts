// Reads a DICOM-SEG back with dcmjs, independently of src/dicom/seg.ts:
// each frame's bits (packed LSB first, across frame boundaries) are placed
// on the slice of the source instance it references.
import dcmjs from "dcmjs";

/* eslint-disable @typescript-eslint/no-explicit-any */
const one = (x: any) => (Array.isArray(x) ? x[0] : x);

export interface ReadSeg {
  dataset: Record<string, any>;
  /** Segment label → mask (i fastest) in the order of `sopOrder`. */
  masks: Map<string, Uint8Array>;
  /** Segment label → SegmentDescription. */
  descriptions: Map<string, string>;
}

/** Parses Part 10 bytes with dcmjs into a keyword-keyed dataset. */
export function naturalize(bytes: Uint8Array): Record<string, any> {
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(buf).dict) as Record<string, any>;
}

/** The SEG's segments as masks over a grid of `dims`, slice k being the instance `sopOrder[k]`. */
export function readSeg(bytes: Uint8Array, dims: [number, number, number], sopOrder: readonly string[]): ReadSeg {
  const ds = naturalize(bytes);
  const [I, J] = dims;
  if (ds.Rows !== J || ds.Columns !== I) throw new Error(`SEG is ${ds.Rows}×${ds.Columns}, the series ${J}×${I}`);
  const kOf = new Map(sopOrder.map((s, k) => [s, k]));
  const segs = ([] as any[]).concat(ds.SegmentSequence);
  const labelOf = new Map<number, string>(segs.map((s) => [s.SegmentNumber, s.SegmentLabel]));
  const masks = new Map<string, Uint8Array>(segs.map((s) => [s.SegmentLabel, new Uint8Array(dims[0] * dims[1] * dims[2])]));
  const pixels = new Uint8Array(one(ds.PixelData));
  ([] as any[]).concat(ds.PerFrameFunctionalGroupsSequence).forEach((f, n) => {
    const label = labelOf.get(one(f.SegmentIdentificationSequence).ReferencedSegmentNumber)!;
    const sop = one(one(f.DerivationImageSequence).SourceImageSequence).ReferencedSOPInstanceUID;
    const k = kOf.get(sop);
    if (k === undefined) throw new Error(`frame ${n} references ${sop}, not in the series`);
    const mask = masks.get(label)!;
    for (let p = 0; p < I * J; p++) {
      const b = n * I * J + p;
      mask[k * I * J + p] = (pixels[b >> 3]! >> (b & 7)) & 1;
    }
  });
  return { dataset: ds, masks, descriptions: new Map(segs.map((s) => [s.SegmentLabel, s.SegmentDescription])) };
}

/** Dice of two binary masks (1 when both are empty). */
export function dice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let inter = 0, sa = 0, sb = 0;
  for (let n = 0; n < a.length; n++) {
    const x = a[n] ? 1 : 0, y = b[n] ? 1 : 0;
    inter += x & y;
    sa += x;
    sb += y;
  }
  return sa + sb === 0 ? 1 : (2 * inter) / (sa + sb);
}
