// DICOM UIDs for the objects this library creates: 2.25 followed by a random
// 128-bit number in decimal (PS3.5 B.2, a UUID-derived UID; at most 44 characters).
import { randomBytes } from "node:crypto";

/** A fresh UID: "2.25." and 128 random bits as a decimal integer. */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomBytes(16).toString("hex")}`).toString(10)}`;
}

/** This implementation's class UID in every file it writes (Part 10 meta, 0002,0012). */
export const IMPLEMENTATION_CLASS_UID = "2.25.148718513497326155960387306203911364318";
export const IMPLEMENTATION_VERSION = "SEGVOL_WEBGPU_01";
