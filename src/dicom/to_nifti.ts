// A DICOM series as a NiftiVolume, for writeNifti: outputs keep the series'
// grid, with its affine in NIfTI's RAS world (DICOM's LPS with x and y negated).
import { niftiFromArray, type NiftiVolume } from "../io/nifti.js";
import type { DicomSeries } from "./series.js";

/** The series as NIfTI sees it: same voxels (not copied), RAS affine as the sform. */
export function seriesAsNifti(series: Pick<DicomSeries, "dims" | "data" | "affine">): NiftiVolume {
  const datatype = series.data instanceof Int16Array ? "int16" : "float32";
  // niftiFromArray reads only the data's length and keeps it as the volume's
  // data; it is typed Float32Array for its usual callers.
  return niftiFromArray(series.dims, series.data as unknown as Float32Array, { affine: series.affine, datatype });
}
