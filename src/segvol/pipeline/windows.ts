// Zoom-in planning, spec §6 steps 6-7: the ROI around the zoom-out mask and
// the sliding-window grid over it (MONAI's `dense_patch_slices` with SegVol's
// `logits2roi_coor`). Pure integer arithmetic on shapes; no voxel data.
import type { Box3, RowReader, Vec3, ZoomInPlan } from "./types.js";

/**
 * The zoom-in ROI from the zoom-out mask's bounding box (inclusive `lo`..`hi`
 * in the cropped volume of shape `shape`). Where the box is smaller than a
 * window it is widened by ⌊shortfall/2⌋ on each side, clamped to the volume.
 * Upstream clamps the inclusive end to `size` (not size−1) and then slices
 * `[min : max+1]`; Python's slicing clamps again, so the exclusive end is
 * min(max + ⌊shortfall/2⌋ + 1, size): reproduced literally below.
 */
export function roiFromBox(lo: Vec3, hi: Vec3, shape: Vec3, window: Vec3): Box3 {
  const start: Vec3 = [0, 0, 0], end: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const pad = Math.max(0, window[a]! - (hi[a]! - lo[a]! + 1));
    const half = Math.floor(pad / 2);
    start[a] = Math.max(0, lo[a]! - half);
    const maxInclusive = Math.min(shape[a]!, hi[a]! + half);
    end[a] = Math.min(maxInclusive + 1, shape[a]!);
  }
  return { start, end };
}

/** MONAI `_get_scan_interval`: a full window where the (padded) size equals it, else int(window·(1−overlap)), at least 1. */
export function scanInterval(size: number, window: number, overlap: number): number {
  if (size === window) return window;
  const iv = Math.trunc(window * (1 - overlap));
  return iv > 0 ? iv : 1;
}

/** Window starts along one axis of padded size `size` (≥ window): multiples of the interval, the last moved back flush. */
export function axisStarts(size: number, window: number, interval: number): number[] {
  const num = Math.ceil(size / interval);
  let last = 0; // MONAI: one window when no start reaches the end
  for (let d = 0; d < num; d++) {
    if (d * interval + window >= size) {
      last = d;
      break;
    }
  }
  const starts: number[] = [];
  for (let d = 0; d <= last; d++) {
    const s = d * interval;
    starts.push(s - Math.max(s + window - size, 0));
  }
  return starts;
}

/** The sliding-window plan over an ROI: symmetric zero padding up to a window, then the grid (first axis slowest). */
export function planWindows(roi: Box3, window: Vec3, overlap: number): ZoomInPlan {
  const padBefore: Vec3 = [0, 0, 0], padAfter: Vec3 = [0, 0, 0];
  const perAxis: number[][] = [];
  for (let a = 0; a < 3; a++) {
    const size = roi.end[a]! - roi.start[a]!;
    const diff = Math.max(window[a]! - size, 0);
    padBefore[a] = Math.floor(diff / 2);
    padAfter[a] = diff - padBefore[a]!;
    const padded = Math.max(size, window[a]!);
    perAxis.push(axisStarts(padded, window[a]!, scanInterval(padded, window[a]!, overlap)));
  }
  const windowStarts: Vec3[] = [];
  for (const d of perAxis[0]!) for (const h of perAxis[1]!) for (const w of perAxis[2]!) windowStarts.push([d, h, w]);
  return { roi: { start: [...roi.start], end: [...roi.end] }, padBefore, padAfter, windowStarts };
}

/**
 * For one window of a plan, the box it covers in cropped-volume coordinates
 * (`origin` .. origin+window, may reach into the padding) and the part of it
 * holding ROI data (`valid`, the rest is zero padding). Two windows with the
 * same origin and valid box have identical pixels: the cache key.
 */
export function windowGeometry(plan: ZoomInPlan, start: Vec3, window: Vec3): { origin: Vec3; valid: Box3; key: string } {
  const origin: Vec3 = [0, 0, 0];
  const valid: Box3 = { start: [0, 0, 0], end: [0, 0, 0] };
  for (let a = 0; a < 3; a++) {
    origin[a] = plan.roi.start[a]! - plan.padBefore[a]! + start[a]!;
    valid.start[a] = Math.max(origin[a]!, plan.roi.start[a]!);
    valid.end[a] = Math.min(origin[a]! + window[a]!, plan.roi.end[a]!);
  }
  const key = `${origin.join(",")}|${valid.start.join(",")}|${valid.end.join(",")}`;
  return { origin, valid, key };
}

/** Copies one window out of the cropped volume, read by rows (zeros outside `valid`). */
export function extractWindow(rows: RowReader, origin: Vec3, valid: Box3, window: Vec3): Float32Array {
  const out = new Float32Array(window[0] * window[1] * window[2]);
  for (let d = valid.start[0]; d < valid.end[0]; d++) {
    for (let h = valid.start[1]; h < valid.end[1]; h++) {
      const dst = ((d - origin[0]) * window[1] + (h - origin[1])) * window[2] - origin[2];
      rows(d, h, valid.start[2], valid.end[2], out, dst + valid.start[2]);
    }
  }
  return out;
}
