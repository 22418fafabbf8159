// Coded concepts for DICOM-SEG segments (SNOMED CT, as in DICOM's CID 7150
// "Segmentation Property Categories" and CID 7166 "Common Anatomic Regions"):
// the official SegVol categories get their organ's code; anything else is
// coded as an anatomical structure and named by its label.

export interface Code {
  CodeValue: string;
  CodingSchemeDesignator: string;
  CodeMeaning: string;
}

const sct = (CodeValue: string, CodeMeaning: string): Code => ({ CodeValue, CodingSchemeDesignator: "SCT", CodeMeaning });

export const ANATOMICAL_STRUCTURE = sct("123037004", "Anatomical Structure");
const RIGHT = sct("24028007", "Right");
const LEFT = sct("7771000", "Left");

const ORGANS: Record<string, { type: Code; modifier?: Code }> = {
  liver: { type: sct("10200004", "Liver") },
  spleen: { type: sct("78961009", "Spleen") },
  kidney: { type: sct("64033007", "Kidney") },
  "right kidney": { type: sct("9846003", "Right kidney") },
  "left kidney": { type: sct("18639004", "Left kidney") },
  pancreas: { type: sct("15776009", "Pancreas") },
  aorta: { type: sct("15825003", "Aorta") },
  "inferior vena cava": { type: sct("64131007", "Inferior vena cava") },
  gallbladder: { type: sct("28231008", "Gallbladder") },
  esophagus: { type: sct("32849002", "Esophagus") },
  stomach: { type: sct("69695003", "Stomach") },
  duodenum: { type: sct("38848004", "Duodenum") },
  "right adrenal gland": { type: sct("23451007", "Adrenal gland"), modifier: RIGHT },
  "left adrenal gland": { type: sct("23451007", "Adrenal gland"), modifier: LEFT },
};

/** The segment's property type (and laterality modifier) for a label: case and spacing do not matter. */
export function segmentCodes(label: string): { type: Code; modifier?: Code } {
  return ORGANS[label.trim().toLowerCase().replace(/\s+/g, " ")] ?? { type: ANATOMICAL_STRUCTURE };
}
