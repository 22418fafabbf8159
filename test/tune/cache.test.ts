// The tune cache: winners round-trip through the adapter's file into a
// later profile; a document that does not parse, has another version or
// adapter, or lacks its entries list is ignored with a warning; each entry
// must name a variant among its op's current candidates and a precision
// the device runs (others are dropped with a warning, the rest kept);
// winners of f32 and f16 at one shape round-trip apart; writes merge by
// bucket and precision and leave no temp files; the folder comes from SEGVOL_CACHE_DIR, XDG_CACHE_HOME or the home.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { attentionCandidates, chooseAttentionVariant } from "../../src/kernels/attention.js";
import { gemmCandidates } from "../../src/kernels/conv_gemm.js";
import { chooseMatmulVariant, matmulCandidates } from "../../src/kernels/matmul.js";
import { deviceProfile, setDeviceProfile, tunedKey } from "../../src/kernels/profile.js";
import { gpu } from "../../src/tensor/device.js";
import {
  TUNE_CACHE_VERSION,
  adapterIdentity,
  cacheName,
  loadTunedChoices,
  parseTuneCache,
  saveTunedChoices,
  type TunedEntry,
} from "../../src/tune/cache.js";
import { tempPathFor } from "../../src/io/atomic.js";
import { cacheDir } from "../../src/tune/cache_store.node.js";
import { useGpu } from "../helpers/gpu.js";

useGpu();
const root = mkdtempSync(join(tmpdir(), "segvol-tune-cache-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `c${n++}`);

const initial = { tuned: {} };
afterEach(() => {
  setDeviceProfile(initial);
});

/** Valid entries on this device: a matmul candidate other than the heuristic's, the last attention and GEMM candidates. */
function validEntries(): TunedEntry[] {
  const p = deviceProfile();
  return [
    { op: "matmul", precision: "f32", dims: [300, 200, 100], variant: matmulCandidates(300, 200, 100, p).at(-1)! },
    { op: "attention", precision: "f32", dims: [64, 64, 32, 32], variant: attentionCandidates(p).at(-1)! },
    { op: "gemm", precision: "f32", dims: [96, 4096, 48], variant: gemmCandidates(p).at(-1)! },
  ];
}

describe("tune cache", () => {
  it("round-trips: a later profile takes the cached winners", async () => {
    const dir = freshDir();
    const entries = validEntries();
    const path = await saveTunedChoices(entries, { location: { dir } });
    expect(path).toBe(join(dir, cacheName(adapterIdentity(gpu().adapter))));
    setDeviceProfile({ tuned: {} });
    const warnings: string[] = [];
    expect(await loadTunedChoices({ location: { dir }, warn: (w) => warnings.push(w) })).toBe(3);
    expect(warnings).toEqual([]);
    const p = deviceProfile();
    expect(chooseMatmulVariant(300, 200, 100, {}, p)).toEqual(entries[0]!.variant);
    expect(chooseAttentionVariant(p, { Nq: 64, Nk: 64, dk: 32, dv: 32 })).toEqual(entries[1]!.variant);
    expect(p.tuned[tunedKey("gemm", [96, 4096, 48], "f32")]).toEqual(entries[2]!.variant);
    const doc = JSON.parse(readFileSync(path, "utf8"));
    expect(doc.version).toBe(TUNE_CACHE_VERSION);
    expect(doc.adapter).toEqual(adapterIdentity(gpu().adapter));
  });

  it("round-trips winners of both precisions at one shape: each call takes its own precision's", async (ctx) => {
    ctx.skip(!deviceProfile().f16, "the adapter lacks shader-f16");
    const dir = freshDir();
    const p = deviceProfile();
    const [mm32, mm16] = [matmulCandidates(300, 200, 100, p).at(-1)!, matmulCandidates(300, 200, 100, p).at(-2)!];
    const [att32, att16] = [attentionCandidates(p).at(-1)!, attentionCandidates(p)[0]!];
    expect(mm32).not.toEqual(mm16);
    const entries: TunedEntry[] = [
      { op: "matmul", precision: "f32", dims: [300, 200, 100], variant: mm32 },
      { op: "matmul", precision: "f16", dims: [300, 200, 100], variant: mm16 },
      { op: "attention", precision: "f32", dims: [64, 64, 32, 32], variant: att32 },
      { op: "attention", precision: "f16", dims: [64, 64, 32, 32], variant: att16 },
    ];
    const path = await saveTunedChoices(entries, { location: { dir } });
    expect((JSON.parse(readFileSync(path, "utf8")) as { entries: TunedEntry[] }).entries).toEqual(entries);
    setDeviceProfile({ tuned: {} });
    expect(await loadTunedChoices({ location: { dir } })).toBe(4);
    const q = deviceProfile();
    expect(chooseMatmulVariant(300, 200, 100, {}, q, "f32")).toEqual(mm32);
    expect(chooseMatmulVariant(300, 200, 100, {}, q, "f16")).toEqual(mm16);
    const dims = { Nq: 64, Nk: 64, dk: 32, dv: 32 };
    expect(chooseAttentionVariant(q, dims, "f32")).toEqual(att32);
    expect(chooseAttentionVariant(q, dims, "f16")).toEqual(att16);
    // A later save of one precision's winner keeps the other precision's.
    await saveTunedChoices([{ ...entries[0]!, variant: mm16 }], { location: { dir } });
    const kept = (JSON.parse(readFileSync(path, "utf8")) as { entries: TunedEntry[] }).entries;
    expect(kept).toEqual([{ ...entries[0]!, variant: mm16 }, ...entries.slice(1)]);
  });

  it("finds nothing where there is no cache", async () => {
    expect(await loadTunedChoices({ location: { dir: freshDir() } })).toBe(0);
    expect(deviceProfile().tuned).toEqual({});
  });

  it("merges by bucket: a new winner replaces its bucket's, others stay; written atomically, no temp files left", async () => {
    const dir = freshDir();
    const [mm, att] = validEntries() as [TunedEntry, TunedEntry];
    const first = await saveTunedChoices([mm, att], { location: { dir } });
    // A writer killed mid-write left its temp file: the atomic writer (src/io/atomic.ts) clears it on the next write.
    writeFileSync(tempPathFor(first, 9_999_999), "{ half a docu");
    const other = attentionCandidates(deviceProfile()).find((v) => JSON.stringify(v) !== JSON.stringify(att.variant))!;
    const path = await saveTunedChoices([{ op: "attention", precision: "f32", dims: [60, 50, 30, 31], variant: other }], { location: { dir } });
    expect(readdirSync(dir)).toEqual([cacheName(adapterIdentity(gpu().adapter))]);
    const doc = JSON.parse(readFileSync(path, "utf8")) as { entries: TunedEntry[] };
    expect(doc.entries).toEqual([mm, { op: "attention", precision: "f32", dims: [60, 50, 30, 31], variant: other }]);
  });

  describe("nothing read back is trusted", () => {
    const id = () => adapterIdentity(gpu().adapter);
    const doc = (changes: object) => JSON.stringify({ version: TUNE_CACHE_VERSION, adapter: id(), entries: validEntries(), ...changes });
    const parse = (text: string) => {
      const warnings: string[] = [];
      const entries = parseTuneCache(text, id(), deviceProfile(), (w) => warnings.push(w));
      return { entries, warnings };
    };

    it("keeps a valid document whole", () => {
      expect(parse(doc({}))).toEqual({ entries: validEntries(), warnings: [] });
    });

    it("ignores a document that is corrupt, of another version or adapter, or without entries, saying why", () => {
      const cases: [string, RegExp][] = [
        [doc({}).slice(0, 40), /not JSON/],
        ["[1, 2]", /version undefined/],
        ["null", /not a JSON object/],
        [doc({ version: TUNE_CACHE_VERSION + 1 }), new RegExp(`version ${TUNE_CACHE_VERSION + 1}, this build reads ${TUNE_CACHE_VERSION}`)],
        [doc({ adapter: { ...id(), device: "another GPU" } }), /written for another adapter .*another GPU/],
        [doc({ entries: { 0: validEntries()[0] } }), /no entries list/],
      ];
      for (const [text, why] of cases) {
        const r = parse(text);
        expect(r.entries, text).toEqual([]);
        expect(r.warnings, text).toEqual([expect.stringMatching(why)]);
      }
    });

    it("drops each invalid entry with a warning and keeps the others", () => {
      const good = validEntries();
      const bad: [unknown, RegExp][] = [
        [null, /not an object/],
        [{ op: "softmax", precision: "f32", dims: [1, 2, 3], variant: {} }, /unknown op "softmax"/],
        [{ op: "matmul", dims: [300, 200, 100], variant: good[0]!.variant }, /matmul: precision must be "f32" or "f16", got undefined/],
        [{ ...good[0], precision: "f64" }, /matmul: precision must be "f32" or "f16", got "f64"/],
        [{ op: "matmul", precision: "f32", dims: [1, 2], variant: good[0]!.variant }, /matmul: dims must be 3 positive integers/],
        [{ op: "gemm", precision: "f32", dims: [1, 0, 2], variant: good[2]!.variant }, /gemm: dims must be 3 positive integers/],
        [{ op: "attention", precision: "f32", dims: [8, 8, 8, 8], variant: [8] }, /variant is not an object/],
        [{ op: "attention", precision: "f32", dims: [8, 8, 8, 8], variant: { lanes: 3 } }, /\{"lanes":3\} is not among this device's candidates/],
        [{ op: "matmul", precision: "f32", dims: [300, 200, 100], variant: { ...good[0]!.variant, R: 12 } }, /not among this device's candidates/],
        [{ op: "gemm", precision: "f32", dims: [9, 9, 9], variant: { ...good[2]!.variant, extra: 1 } }, /not among this device's candidates/],
      ];
      const r = parse(doc({ entries: [good[0], ...bad.map(([e]) => e), good[1], good[2]] }));
      expect(r.entries).toEqual(good);
      expect(r.warnings).toHaveLength(bad.length);
      bad.forEach(([, why], i) => expect(r.warnings[i]).toMatch(why));
    });

    it("drops an f16 winner on a device without shader-f16, and keeps it where the device has it", () => {
      const [mm] = validEntries() as [TunedEntry];
      const half = { ...mm, precision: "f16" };
      const warnings: string[] = [];
      expect(parseTuneCache(doc({ entries: [mm, half] }), id(), { ...deviceProfile(), f16: false }, (w) => warnings.push(w))).toEqual([mm]);
      expect(warnings).toEqual([expect.stringMatching(/matmul: an f16 winner, and this device has no shader-f16/)]);
      expect(parseTuneCache(doc({ entries: [mm, half] }), id(), { ...deviceProfile(), f16: true }, (w) => warnings.push(w))).toEqual([mm, half]);
      expect(warnings).toHaveLength(1);
    });

    it("accepts a variant whose fields are in another order, and keeps them in the kernel's order (its pipeline key)", () => {
      const [mm] = validEntries() as [TunedEntry];
      const reordered = Object.fromEntries(Object.entries(mm.variant).reverse());
      const [entry] = parse(doc({ entries: [{ ...mm, variant: reordered }] })).entries;
      expect(JSON.stringify(entry!.variant)).toBe(JSON.stringify(mm.variant));
    });

    it("a corrupt file on disk loads nothing, with a warning", async () => {
      const dir = freshDir();
      await saveTunedChoices(validEntries(), { location: { dir } });
      const path = join(dir, cacheName(id()));
      writeFileSync(path, readFileSync(path, "utf8").slice(0, 100));
      const warnings: string[] = [];
      expect(await loadTunedChoices({ location: { dir }, warn: (w) => warnings.push(w) })).toBe(0);
      expect(warnings).toEqual([expect.stringMatching(/not JSON/)]);
      expect(deviceProfile().tuned).toEqual({});
    });
  });

  it("names the file after the adapter: file-name safe, and different for identities that differ late", () => {
    const base = { vendor: "ACME Corp.", architecture: "gen/9", device: "X", description: "A".repeat(200) };
    const name = cacheName(base);
    expect(name).toMatch(/^tuned-acme-corp-gen-9-x-a+-[0-9a-f]{8}\.json$/);
    expect(cacheName({ ...base, description: "A".repeat(199) + "B" })).not.toBe(name);
  });

  it("lives in SEGVOL_CACHE_DIR, else XDG_CACHE_HOME/segvol-webgpu, else ~/.cache/segvol-webgpu", () => {
    expect(cacheDir({ SEGVOL_CACHE_DIR: "/a", XDG_CACHE_HOME: "/b" })).toBe("/a");
    expect(cacheDir({ XDG_CACHE_HOME: "/b" })).toBe("/b/segvol-webgpu");
    expect(cacheDir({ XDG_CACHE_HOME: "" })).toBe(join(homedir(), ".cache", "segvol-webgpu"));
  });
});
