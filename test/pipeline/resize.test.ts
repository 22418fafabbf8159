// The host nearest resizes (src/segvol/pipeline/resize.ts) against a plain
// gather through PyTorch's own index maps (index_maps.json: F.interpolate of
// an arange, tools/fixtures/gen_pipeline.py), so the reference shares no code
// with sourceIndex. Random shapes (a fixed seed) up- and down-scale each axis
// independently, with repeated and skipped source rows, in both modes.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { arrayRows, resizeNearest, resizeNearestInto, type NearestMode } from "../../src/segvol/pipeline/resize.js";
import type { RowReader, Vec3 } from "../../src/segvol/pipeline/types.js";
import { rnd } from "../helpers/random.js";

const fixture = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "pipeline", "index_maps.json");
type TorchMap = { in: number; out: number } & Record<NearestMode, number[]>;
const torchMaps = new Map<string, TorchMap>();
for (const m of JSON.parse(readFileSync(fixture, "utf8")).maps as TorchMap[]) torchMaps.set(`${m.in}>${m.out}`, m);
const MODES: NearestMode[] = ["nearest", "nearest-exact"];
/** Sizes of the fixture small enough for many volumes: 1, 2, 3, 5, 7, 8, 13, 16, 17, 24. */
const SIZES = [...new Set([...torchMaps.values()].map((m) => m.in))].filter((n) => n <= 24);

function torchMap(inSize: number, outSize: number, mode: NearestMode): number[] {
  const m = torchMaps.get(`${inSize}>${outSize}`);
  if (!m) throw new Error(`index_maps.json has no ${inSize} → ${outSize} map`);
  return m[mode];
}

const volume = (s: Vec3) => Float32Array.from({ length: s[0] * s[1] * s[2] }, (_, x) => x + 1); // 0 = never written
const flat = (s: Vec3, d: number, h: number, w: number) => (d * s[1] + h) * s[2] + w;

/** out[d, h, w] = src[mapD[d], mapH[h], mapW[w]], voxel by voxel. */
function reference(src: Float32Array, inShape: Vec3, outShape: Vec3, mode: NearestMode): Float32Array {
  const [md, mh, mw] = [0, 1, 2].map((a) => torchMap(inShape[a]!, outShape[a]!, mode));
  const out = new Float32Array(outShape[0] * outShape[1] * outShape[2]);
  for (let d = 0; d < outShape[0]; d++) for (let h = 0; h < outShape[1]; h++) for (let w = 0; w < outShape[2]; w++) {
    out[flat(outShape, d, h, w)] = src[flat(inShape, md[d]!, mh[h]!, mw[w]!)]!;
  }
  return out;
}

/** A row reader written element by element, counting its reads. */
function countingRows(src: Float32Array, shape: Vec3): { rows: RowReader; reads: () => number } {
  let reads = 0;
  const rows: RowReader = (d, h, w0, w1, out, at) => {
    reads++;
    for (let w = w0; w < w1; w++) out[at + w - w0] = src[flat(shape, d, h, w)]!;
  };
  return { rows, reads: () => reads };
}

/** Output rows whose source row differs from the previous output row's: the reads a one-row cache needs. */
function distinctRowRuns(inShape: Vec3, outShape: Vec3, mode: NearestMode): number {
  const md = torchMap(inShape[0], outShape[0], mode), mh = torchMap(inShape[1], outShape[1], mode);
  let runs = 0, last = "";
  for (const d of md) for (const h of mh) if (`${d},${h}` !== last) (runs++, (last = `${d},${h}`));
  return runs;
}

interface Case { name: string; inShape: Vec3; outShape: Vec3; mode: NearestMode }

/** Named shapes first (what each catches), then 150 random ones. */
function cases(): Case[] {
  const named: Case[] = [
    // The first output row is source row (0, 1): a cache that starts at key 1, or keys
    // d·H − h (0·3 − 1 = −1, the empty cache's key), would hand back an unread row.
    { name: "first row from source h = 1", inShape: [1, 3, 5], outShape: [1, 1, 5], mode: "nearest-exact" },
    { name: "first row from source h = 1, several planes", inShape: [2, 5, 3], outShape: [3, 2, 2], mode: "nearest-exact" },
    // Planes 0, 2 and rows 0, 1: row (0, 1) then (2, 0), whose keys d/H + h would be equal.
    { name: "skipped planes", inShape: [5, 2, 3], outShape: [2, 2, 3], mode: "nearest" },
    { name: "identity", inShape: [3, 5, 7], outShape: [3, 5, 7], mode: "nearest" },
    { name: "single voxel up", inShape: [1, 1, 1], outShape: [3, 2, 5], mode: "nearest-exact" },
  ];
  const u = rnd(7 * 150, 2024);
  const pick = (i: number) => SIZES[Math.floor(((u[i]! + 1) / 2) * SIZES.length)]!;
  const random = Array.from({ length: 150 }, (_, c): Case => {
    const inShape: Vec3 = [pick(7 * c), pick(7 * c + 1), pick(7 * c + 2)];
    const outShape: Vec3 = [pick(7 * c + 3), pick(7 * c + 4), pick(7 * c + 5)];
    const mode = MODES[u[7 * c + 6]! < 0 ? 0 : 1]!;
    return { name: `random ${c}`, inShape, outShape, mode };
  });
  return [...named, ...random];
}

const describeCase = (c: Case) => `${c.name}: [${c.inShape.join(", ")}] → [${c.outShape.join(", ")}] ${c.mode}`;

describe("resizeNearest", () => {
  it("matches a gather through PyTorch's index maps, from an array and from a row reader", () => {
    for (const c of cases()) {
      const src = volume(c.inShape);
      const want = reference(src, c.inShape, c.outShape, c.mode);
      expect(resizeNearest(src, c.inShape, c.outShape, c.mode), describeCase(c)).toEqual(want);
      const counted = countingRows(src, c.inShape);
      expect(resizeNearest(counted.rows, c.inShape, c.outShape, c.mode), describeCase(c)).toEqual(want);
      // Each source row is read once per run of output rows that repeat it (the pipeline's reader normalises as it reads).
      expect(counted.reads(), describeCase(c)).toBe(distinctRowRuns(c.inShape, c.outShape, c.mode));
    }
  });

  it("refuses a source array whose length does not fill its shape", () => {
    for (const n of [23, 25, 0]) {
      expect(() => resizeNearest(new Float32Array(n), [2, 3, 4], [2, 2, 2], "nearest")).toThrow(
        `resizeNearest: ${n} source values do not fill [2, 3, 4] (24 needed)`,
      );
    }
  });
});

describe("resizeNearestInto", () => {
  it("writes the same resize into a box of a larger volume and leaves the rest alone", () => {
    const u = rnd(3 * 160, 77);
    cases().forEach((c, i) => {
      const offset = [0, 1, 2].map((a) => Math.floor(((u[3 * i + a]! + 1) / 2) * 3)) as Vec3; // 0..2
      const dstShape = c.outShape.map((n, a) => offset[a]! + n + ((i + a) % 3)) as Vec3; // 0..2 after the box
      // The destination holds other values already, each different, so a write outside the box shows.
      const dst = Float32Array.from({ length: dstShape[0] * dstShape[1] * dstShape[2] }, (_, x) => -1 - x);
      const want = dst.slice();
      const src = volume(c.inShape);
      resizeNearestInto(src, c.inShape, c.outShape, c.mode, dst, dstShape, offset);
      const small = reference(src, c.inShape, c.outShape, c.mode);
      for (let d = 0; d < c.outShape[0]; d++) for (let h = 0; h < c.outShape[1]; h++) for (let w = 0; w < c.outShape[2]; w++) {
        want[flat(dstShape, offset[0] + d, offset[1] + h, offset[2] + w)] = small[flat(c.outShape, d, h, w)]!;
      }
      expect(dst, `${describeCase(c)} at [${offset.join(", ")}] in [${dstShape.join(", ")}]`).toEqual(want);
    });
  });

  it("refuses arrays that do not fill their shapes and a box outside the destination", () => {
    const src = volume([2, 3, 4]), dst = new Float32Array(5 * 6 * 7);
    const into = (s: Float32Array, d: Float32Array, offset: Vec3) => () => resizeNearestInto(s, [2, 3, 4], [3, 3, 3], "nearest", d, [5, 6, 7], offset);
    expect(into(src, dst, [2, 3, 4])).not.toThrow(); // the box touches the far corner
    expect(into(src.subarray(1), dst, [0, 0, 0])).toThrow("resizeNearestInto: 23 source values do not fill [2, 3, 4] (24 needed)");
    expect(into(src, dst.subarray(1), [0, 0, 0])).toThrow("resizeNearestInto: 209 destination values do not fill [5, 6, 7] (210 needed)");
    for (const offset of [[3, 0, 0], [0, 4, 0], [0, 0, 5], [-1, 0, 0], [0, -1, 0], [0, 0, -1]] as Vec3[]) {
      expect(into(src, dst, offset), `[${offset.join(", ")}]`).toThrow(
        `resizeNearestInto: a [3, 3, 3] box at [${offset.join(", ")}] does not fit in [5, 6, 7]`,
      );
    }
  });
});

describe("arrayRows", () => {
  it("reads any part of any row, from any start column, to any position of the output", () => {
    const u = rnd(6 * 100, 31);
    const at01 = (i: number) => (u[i]! + 1) / 2; // [0, 1)
    for (let c = 0; c < 100; c++) {
      const shape: Vec3 = [1 + Math.floor(at01(6 * c) * 4), 1 + Math.floor(at01(6 * c + 1) * 5), 1 + Math.floor(at01(6 * c + 2) * 9)];
      const src = volume(shape);
      const d = c % shape[0], h = (c >> 2) % shape[1];
      const w0 = Math.floor(at01(6 * c + 3) * (shape[2] + 1));
      const w1 = w0 + Math.floor(at01(6 * c + 4) * (shape[2] - w0 + 1));
      const at = Math.floor(at01(6 * c + 5) * 3);
      const out = new Float32Array(at + (w1 - w0) + 2).fill(-1);
      arrayRows(src, shape)(d, h, w0, w1, out, at);
      const want = new Float32Array(out.length).fill(-1);
      for (let w = w0; w < w1; w++) want[at + w - w0] = src[flat(shape, d, h, w)]!;
      expect(out, `[${shape.join(", ")}] row (${d}, ${h}) columns ${w0}..${w1} at ${at}`).toEqual(want);
    }
  });
});
