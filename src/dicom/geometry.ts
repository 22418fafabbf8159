// A series' slices as one volume: sorted by position along the slice normal
// (never by file name or InstanceNumber), checked to form a regular stack,
// and the voxel → patient affine. DICOM's patient coordinates are LPS
// (x to the patient's left, y to the posterior, z to the head); NIfTI's
// world is RAS, the same axes with x and y negated (rasAffine).
import { DicomError, shown } from "./errors.js";

export type Vec3 = [number, number, number];

/** What the geometry needs of one slice's header. */
export interface SliceGeometry {
  /** The file, for messages. */
  name: string;
  rows: number;
  columns: number;
  /** ImagePositionPatient: the centre of the first transmitted pixel, LPS mm. */
  position: Vec3;
  /** ImageOrientationPatient: the row direction (column index grows), then the column direction (row index grows). */
  orientation: [number, number, number, number, number, number];
  /** PixelSpacing: between rows, then between columns, mm. */
  pixelSpacing: [number, number];
  frameOfReferenceUid: string;
}

export interface StackGeometry<S extends SliceGeometry> {
  /** The slices in volume order: k = 0, 1, … along the normal. */
  slices: S[];
  /** Voxel (i = column, j = row, k = slice) → LPS mm, 4×4. */
  affineLps: number[][];
  /** Voxel size along i, j, k in mm. */
  spacing: Vec3;
}

const dot = (a: Vec3, b: Vec3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a: Vec3) => Math.hypot(a[0], a[1], a[2]);
const fmt = (x: number) => String(Math.round(x * 1000) / 1000);

/** Orientations, spacings and sizes that differ by less than this count as equal (DS values are rounded decimals). */
const SAME = 1e-4;

/** Refuses slices that do not share size, orientation, pixel spacing and frame of reference. */
function checkUniform(slices: readonly SliceGeometry[], series: string): void {
  const a = slices[0]!;
  for (const b of slices) {
    if (b.rows !== a.rows || b.columns !== a.columns) {
      throw new DicomError(`series ${series}: mixed image sizes: ${a.name} is ${a.rows}×${a.columns}, ${b.name} ${b.rows}×${b.columns}`);
    }
    if (b.orientation.some((x, n) => Math.abs(x - a.orientation[n]!) > SAME)) {
      throw new DicomError(
        `series ${series}: mixed orientations: ${a.name} has ImageOrientationPatient ${a.orientation.map(fmt).join("\\")}, ` +
          `${b.name} ${b.orientation.map(fmt).join("\\")}; a volume needs one slice orientation`,
      );
    }
    if (b.pixelSpacing.some((x, n) => Math.abs(x - a.pixelSpacing[n]!) > SAME * Math.max(1, x))) {
      throw new DicomError(`series ${series}: mixed pixel spacings: ${a.name} has ${a.pixelSpacing.join("\\")}, ${b.name} ${b.pixelSpacing.join("\\")}`);
    }
    if (b.frameOfReferenceUid !== a.frameOfReferenceUid) {
      throw new DicomError(`series ${series}: mixed frames of reference: ${a.name} has ${shown(a.frameOfReferenceUid)}, ${b.name} ${shown(b.frameOfReferenceUid)}`);
    }
  }
  const r = a.orientation.slice(0, 3) as Vec3, c = a.orientation.slice(3) as Vec3;
  if (Math.abs(norm(r) - 1) > 1e-3 || Math.abs(norm(c) - 1) > 1e-3 || Math.abs(dot(r, c)) > 1e-3) {
    throw new DicomError(`ImageOrientationPatient ${a.orientation.join("\\")} is not two orthogonal unit vectors`, a.name);
  }
  if (!(a.pixelSpacing[0] > 0 && a.pixelSpacing[1] > 0)) throw new DicomError(`PixelSpacing ${a.pixelSpacing.join("\\")} must be positive`, a.name);
}

/** The unit normal of the slices (row × column direction): the direction k grows in. */
export function sliceNormal(orientation: readonly number[]): Vec3 {
  const n = cross(orientation.slice(0, 3) as Vec3, orientation.slice(3, 6) as Vec3);
  const l = norm(n);
  return [n[0] / l, n[1] / l, n[2] / l];
}

/** Refuses duplicate positions, gaps and irregular steps along the normal (`s` sorted ascending). */
function checkSpacing(sorted: SliceGeometry[], s: number[], series: string): number {
  const steps = s.slice(1).map((x, n) => x - s[n]!);
  // The lower median: with two steps, one twice the other reads as a gap.
  const median = [...steps].sort((x, y) => x - y)[(steps.length - 1) >> 1] ?? 0;
  for (let n = 0; n < steps.length; n++) {
    if (steps[n]! < 1e-3) {
      throw new DicomError(`series ${series}: duplicate slice position ${fmt(s[n]!)} mm along the normal: ${sorted[n]!.name} and ${sorted[n + 1]!.name}`);
    }
  }
  const tol = Math.max(0.01, 0.01 * median);
  for (let n = 0; n < steps.length; n++) {
    const step = steps[n]!;
    if (Math.abs(step - median) <= tol) continue;
    const between = `between ${sorted[n]!.name} (${fmt(s[n]!)} mm) and ${sorted[n + 1]!.name} (${fmt(s[n + 1]!)} mm)`;
    const missing = Math.round(step / median) - 1;
    if (missing >= 1 && Math.abs(step - (missing + 1) * median) <= tol * (missing + 1)) {
      throw new DicomError(`series ${series}: a gap: ${missing} slice(s) missing ${between}; the other slices are ${fmt(median)} mm apart`);
    }
    throw new DicomError(`series ${series}: irregular slice spacing: ${fmt(step)} mm ${between}, ${fmt(median)} mm elsewhere`);
  }
  return median;
}

/** Refuses slices whose positions drift within the image plane: a gantry tilt (or a sheared stack). */
function checkTilt(sorted: SliceGeometry[], normal: Vec3, series: string): void {
  const p0 = sorted[0]!.position;
  for (const sl of sorted) {
    const v = sub(sl.position, p0);
    const along = dot(v, normal);
    const off = norm(sub(v, [along * normal[0], along * normal[1], along * normal[2]]));
    if (off > Math.max(0.01, 1e-3 * Math.abs(along))) {
      const deg = (Math.atan2(off, Math.abs(along)) * 180) / Math.PI;
      throw new DicomError(
        `series ${series}: gantry tilt: ${sl.name} lies ${fmt(off)} mm off the slice normal through ${sorted[0]!.name} ` +
          `(a ${fmt(deg)}° tilt); resample the series to an orthogonal grid first (e.g. dcm2niix's tilt correction)`,
      );
    }
  }
}

/**
 * Sorts the slices along their normal and checks that they form one regular
 * stack; returns them in volume order with the voxel → LPS affine. A single
 * slice gets `singleSliceThickness` (default 1 mm) along the normal.
 */
export function planStack<S extends SliceGeometry>(slices: readonly S[], series: string, singleSliceThickness = 1): StackGeometry<S> {
  if (slices.length === 0) throw new DicomError(`series ${series}: no slices`);
  checkUniform(slices, series);
  const first = slices[0]!;
  const normal = sliceNormal(first.orientation);
  const keyed = slices.map((sl) => ({ sl, s: dot(sl.position, normal) }));
  keyed.sort((a, b) => a.s - b.s || (a.sl.name < b.sl.name ? -1 : 1));
  const sorted = keyed.map((x) => x.sl);
  const s = keyed.map((x) => x.s);
  let step: Vec3 = [normal[0] * singleSliceThickness, normal[1] * singleSliceThickness, normal[2] * singleSliceThickness];
  if (sorted.length > 1) {
    checkSpacing(sorted, s, series);
    checkTilt(sorted, normal, series);
    const span = sub(sorted[sorted.length - 1]!.position, sorted[0]!.position);
    step = [span[0] / (sorted.length - 1), span[1] / (sorted.length - 1), span[2] / (sorted.length - 1)];
  }
  const [rowSp, colSp] = first.pixelSpacing;
  const o = first.orientation;
  const p = sorted[0]!.position;
  const affineLps = [
    [o[0] * colSp, o[3] * rowSp, step[0], p[0]],
    [o[1] * colSp, o[4] * rowSp, step[1], p[1]],
    [o[2] * colSp, o[5] * rowSp, step[2], p[2]],
    [0, 0, 0, 1],
  ];
  return { slices: sorted, affineLps, spacing: [colSp, rowSp, norm(step)] };
}

/** The same affine in NIfTI's RAS world: x and y negated. */
export function rasAffine(affineLps: readonly (readonly number[])[]): number[][] {
  return affineLps.map((row, r) => (r < 2 ? row.map((x) => (x === 0 ? 0 : -x)) : [...row]));
}
