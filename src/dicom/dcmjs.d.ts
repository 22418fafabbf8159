// The part of dcmjs (0.52, plain JavaScript, no types of its own) that
// src/dicom uses. Internal: no public signature of this library names these
// types, so the package's declarations need no copy of this file.
declare module "dcmjs" {
  /** A dataset as dcmjs reads it: tag "GGGGEEEE" → element. */
  export type DenaturalizedDataset = Record<string, { vr: string; Value?: unknown[] }>;
  /** A dataset keyed by DICOM keywords (PatientID, PixelData, …). */
  export type NaturalizedDataset = Record<string, unknown>;

  export class DicomDict {
    constructor(meta: DenaturalizedDataset);
    meta: DenaturalizedDataset;
    dict: DenaturalizedDataset;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }

  export interface ReadOptions {
    ignoreErrors?: boolean;
    untilTag?: string | null;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
    forceStoreRaw?: boolean;
    stopOnGreaterTag?: boolean;
  }

  interface Logger {
    getLevel(): number;
    setLevel(level: number | string, persist?: boolean): void;
  }

  const dcmjs: {
    data: {
      DicomDict: typeof DicomDict;
      DicomMessage: { readFile(buffer: ArrayBuffer, options?: ReadOptions): DicomDict };
      DicomMetaDictionary: {
        naturalizeDataset(dataset: DenaturalizedDataset): NaturalizedDataset;
        denaturalizeDataset(dataset: NaturalizedDataset): DenaturalizedDataset;
      };
    };
    log: Logger & { getLogger(name: string): Logger };
  };
  export default dcmjs;
}
