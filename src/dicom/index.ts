// The DICOM side of the library, for the package entry (src/index.ts):
// reading a series (folder or DICOMweb), DICOM-SEG out, the DICOMweb client.
export { DicomError } from "./errors.js";
export { SUPPORTED_TRANSFER_SYNTAXES } from "./file.js";
export { listDicomSeries, readDicomSeries, type DicomDataset, type DicomInstance, type DicomSeries, type DicomSeriesSummary, type ReadDicomOptions } from "./series.js";
export { seriesAsNifti } from "./to_nifti.js";
export { encodeDicomSeg, writeDicomSeg, SEGMENTATION_STORAGE, type DicomSegIds, type DicomSegOptions, type SegSegment, type SegSource } from "./seg.js";
export { checkDicomWebUrl, DicomWebClient, readDicomWebSeries, type DicomWebOptions, type DicomWebSeries } from "./dicomweb.js";
