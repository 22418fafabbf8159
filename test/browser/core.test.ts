// The platform-neutral core, checked in Node: the browser bundle holds no
// Node built-in and no Dawn addon; NIfTI from and to bytes through the
// platform's (De)CompressionStream, bounded like readNifti; weights from
// files and URLs with the same checks as a folder; safetensors from bytes
// refused exactly as from a path.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { decodeNifti, NiftiError, niftiFromArray, readNifti, writeNifti } from "../../src/io/nifti.js";
import { encodeNifti, parseNifti } from "../../src/io/nifti_bytes.js";
import { openWeights, openWeightsFolder } from "../../src/segvol/load.js";
import { pickedFiles, urlFiles, type WeightsFiles } from "../../src/segvol/weights_source.js";
import { SafetensorsError, SafetensorsFile, SafetensorsReader } from "../../src/weights/safetensors.js";
// @ts-expect-error: a plain .mjs module without declarations
import { browserOptions } from "../../scripts/browser-plugin.mjs";
import { REPO, serveStatic } from "./harness.js";

const tmp = mkdtempSync(join(tmpdir(), "segvol-core-"));
const DEMO = join(REPO, "weights/demo");

/** The demo folder as WeightsFiles, with `edit` changing or removing files. */
function demoFiles(edit: Record<string, Uint8Array | null> = {}): WeightsFiles {
  return {
    name: "demo-files",
    async read(f) {
      if (f in edit) return edit[f]!;
      try {
        return new Uint8Array(readFileSync(join(DEMO, f)));
      } catch {
        return null;
      }
    },
  };
}

describe("the browser bundle", () => {
  it("holds no Node built-in and no Dawn addon, and a Node-only import fails its build", async () => {
    const r = await build({ ...(browserOptions as object), entryPoints: [join(REPO, "src/browser.ts")], write: false, metafile: true, logLevel: "silent" });
    const inputs = Object.keys(r.metafile!.inputs);
    expect(inputs.filter((f) => f.includes("node_modules"))).toEqual([]);
    expect(inputs).toContain("src/node/host.browser.ts");
    expect(inputs).toContain("src/tensor/dawn.browser.ts");
    expect(inputs).toContain("src/tune/cache_store.browser.ts"); // the tune cache in IndexedDB
    expect(inputs.some((f) => f.endsWith(".node.ts"))).toBe(false);
    const js = r.outputFiles![0]!.text;
    expect(js).not.toMatch(/from\s*["'](node:|webgpu)/);
    expect(js).not.toMatch(/\brequire\(/);
    const entry = join(tmp, "bad.ts");
    for (const bad of [`import { readFileSync } from "node:fs"; console.log(readFileSync);`, `import { create } from "webgpu"; console.log(create);`]) {
      writeFileSync(entry, bad);
      await expect(build({ ...(browserOptions as object), entryPoints: [entry], write: false, logLevel: "silent" })).rejects.toThrow();
    }
  });
});

describe("NIfTI from and to bytes", () => {
  const like = niftiFromArray([7, 5, 3], new Float32Array(105), { spacing: [0.8, 0.9, 2.5] });
  const values = Int16Array.from({ length: 105 }, (_, i) => i * 3 - 100);

  it("encodes .nii.gz bytes that readNifti reads, and parses writeNifti's files as readNifti does", async () => {
    const gz = await encodeNifti(like, values, "int16");
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    const path = join(tmp, "a.nii.gz");
    writeFileSync(path, gz);
    const back = readNifti(path);
    expect(back.dims).toEqual([7, 5, 3]);
    expect(Array.from(back.data)).toEqual(Array.from(values));
    expect(back.spacing.map((s) => +s.toFixed(4))).toEqual([0.8, 0.9, 2.5]);
    const written = join(tmp, "b.nii.gz");
    writeNifti(written, like, values, "int16");
    const parsed = await parseNifti(readFileSync(written), "b.nii.gz");
    expect(Array.from(parsed.data)).toEqual(Array.from(values));
    expect(parsed.affine).toEqual(readNifti(written).affine);
    const raw = await encodeNifti(like, values, "int16", { gzip: false });
    expect(Array.from((await parseNifti(raw)).data)).toEqual(Array.from(decodeNifti(raw).data));
  });

  it("refuses corrupt gzip, and a gzip stream holding more than its header declares", async () => {
    const gz = await encodeNifti(like, values, "int16");
    await expect(parseNifti(gz.subarray(0, gz.length - 20), "cut.nii.gz")).rejects.toThrow(/cut\.nii\.gz: gzip data is truncated or corrupt/);
    const raw = await encodeNifti(like, values, "int16", { gzip: false });
    const bomb = new Uint8Array(raw.length + 4 * 2 ** 20);
    bomb.set(raw);
    await expect(parseNifti(gzipSync(bomb), "bomb.nii.gz")).rejects.toThrow(/more than the bytes its header declares/);
    await expect(parseNifti(gzipSync(raw), "big.nii.gz", { maxVoxels: 100 })).rejects.toThrow(NiftiError);
  });
});

describe("weights from bytes, files and URLs", () => {
  it("reads the demo folder's files as openWeightsFolder reads the folder", async () => {
    const a = await openWeights(demoFiles());
    const b = openWeightsFolder(DEMO);
    expect(a.config).toEqual(b.config);
    expect(a.categories).toEqual(b.categories);
    expect(a.tokenizer!.encode("liver")).toEqual(b.tokenizer!.encode("liver"));
    expect(a.file.keys()).toEqual(b.file.keys());
    const k = a.file.keys()[3]!;
    expect(a.file.readRaw(k)).toEqual(b.file.readRaw(k));
  });

  it("names a missing file, a malformed config and a weights file that contradicts the config", async () => {
    await expect(openWeights(demoFiles({ "model.safetensors": null }))).rejects.toThrow(/demo-files: missing model\.safetensors/);
    await expect(openWeights(demoFiles({ "config.json": new TextEncoder().encode("{") }))).rejects.toThrow(/config\.json: not valid JSON/);
    await expect(openWeights(demoFiles({ "vocab.json": null }))).rejects.toThrow(/no tokenizer/);
    const cfg = JSON.parse(readFileSync(join(DEMO, "config.json"), "utf8"));
    cfg.vit.num_layers += 1;
    await expect(openWeights(demoFiles({ "config.json": new TextEncoder().encode(JSON.stringify(cfg)) }))).rejects.toThrow(/contradict config\.json/);
  });

  it("refuses malformed safetensors bytes with the path reader's check", () => {
    const good = new Uint8Array(readFileSync(join(DEMO, "model.safetensors")));
    const cases: [Uint8Array, string][] = [
      [good.subarray(0, 5), "too-short"],
      [good.subarray(0, good.length - 4), "data-past-end"],
      [Uint8Array.from([...good.subarray(0, 8), 0x5b, ...good.subarray(9)]), "bad-magic"],
    ];
    for (const [bytes, code] of cases) {
      const path = join(tmp, `${code}.safetensors`);
      writeFileSync(path, bytes);
      const fromPath = (() => { try { SafetensorsFile.open(path); } catch (e) { return e as SafetensorsError; } })();
      const fromBytes = (() => { try { SafetensorsReader.fromBytes(bytes, path); } catch (e) { return e as SafetensorsError; } })();
      expect(fromBytes, code).toBeInstanceOf(SafetensorsError);
      expect(fromBytes?.code, code).toBe(code);
      expect(fromBytes?.message).toBe(fromPath?.message);
    }
  });

  it("reads the Files of a picked folder by name, and refuses two files of one name", async () => {
    const names = ["config.json", "model.safetensors", "categories.json", "vocab.json", "merges.txt", "recipe.json"];
    const files = names.map((n) => Object.assign(new File([readFileSync(join(DEMO, n))], n), { webkitRelativePath: `demo/${n}` }));
    const folder = await openWeights(pickedFiles(files));
    expect(folder.dir).toBe("picked folder demo");
    expect(folder.categories).toEqual(openWeightsFolder(DEMO).categories);
    expect(() => pickedFiles([...files, new File(["{}"], "config.json")])).toThrow(/two picked files are named config\.json/);
    await expect(openWeights(pickedFiles(files.filter((f) => f.name !== "config.json")))).rejects.toThrow(/missing config\.json/);
  });

  it("fetches a folder by URL; a file the server lacks is absent, not an error", async () => {
    const server = await serveStatic({ "/w/": DEMO });
    try {
      const files = urlFiles(`${server.url}/w`);
      expect(files.name).toBe(`${server.url}/w/`);
      expect((await files.read("config.json"))!.byteLength).toBeGreaterThan(10);
      expect(await files.read("tokenizer.json")).toBeNull();
      const folder = await openWeights(files);
      expect(folder.categories).toContain("liver");
    } finally {
      await server.close();
    }
  });
});

afterAll(() => {
  // tmp is left to the OS's temp cleaning only if a test crashed mid-write.
  import("node:fs").then((fs) => fs.rmSync(tmp, { recursive: true, force: true }));
});
