// NIfTI files built in memory for the tests: the header niftiFromArray gives,
// with fields changed, then the voxels' bytes.
import { encodeNiftiHeader, niftiFromArray, type NiftiHeader } from "../../src/io/nifti.js";

/** The header niftiFromArray gives a 2×2×2 float32 volume, as a base to change. */
export function baseHeader(version: 1 | 2 = 1): NiftiHeader {
  return niftiFromArray([2, 2, 2], new Float32Array(8), { version }).header;
}

/** A .nii in memory: `changes` applied to the base header, then `voxels`' bytes. */
export function niiOf(changes: Partial<NiftiHeader>, voxels: ArrayBufferView, version: 1 | 2 = 1): Uint8Array {
  const head = encodeNiftiHeader({ ...baseHeader(version), ...changes });
  const out = new Uint8Array(head.byteLength + voxels.byteLength);
  out.set(head);
  out.set(new Uint8Array(voxels.buffer, voxels.byteOffset, voxels.byteLength), head.byteLength);
  return out;
}
