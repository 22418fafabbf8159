// The package as a user installs it: `npm pack` (which runs the `prepare`
// build, as installing from git does), unpacked into a fresh consumer
// project's node_modules. Checks what the tarball holds, that the CLI and the
// library entry run from it, and that a strict TypeScript consumer gets real
// types: one script that must type-check, and one with a deliberate type
// error that must fail (with `any` types it would pass, and with no
// declarations both fail with TS7016).
//
// The consumer's other dependencies are links to this repo's node_modules, so
// the test needs no registry: what is checked is this package, not npm.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO = join(__dirname, "..");
let tmp: string;
let consumer: string;
let files: string[];
let tarball: string;

function run(cmd: string, args: string[], cwd: string): { code: number; out: string; stdout: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_loglevel: "error" } });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "segvol-pack-"));
  const pack = run("npm", ["pack", "--json", "--pack-destination", tmp], REPO);
  expect(pack.code, pack.out).toBe(0);
  const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
  files = info[0]!.files.map((f) => f.path);
  tarball = join(tmp, info[0]!.filename);

  consumer = join(tmp, "consumer");
  const modules = join(consumer, "node_modules");
  const pkg = join(modules, "segvol-webgpu");
  mkdirSync(pkg, { recursive: true });
  const untar = run("tar", ["-xzf", tarball, "-C", pkg, "--strip-components=1"], tmp);
  expect(untar.code, untar.out).toBe(0);
  for (const name of readdirSync(join(REPO, "node_modules"))) {
    if (name.startsWith(".") || name === "segvol-webgpu") continue;
    symlinkSync(join(REPO, "node_modules", name), join(modules, name));
  }
  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  // Strict, in Node's module mode. skipLibCheck as `tsc --init` sets it:
  // @webgpu/types, which the GPU types come from, assumes the DOM library.
  const compilerOptions = {
    strict: true,
    noEmit: true,
    module: "NodeNext",
    moduleResolution: "NodeNext",
    target: "ES2022",
    lib: ["ES2022"],
    types: ["node"],
    skipLibCheck: true,
  };
  for (const name of ["good", "bad"]) {
    writeFileSync(join(consumer, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files: [`${name}.ts`] }));
  }
  writeFileSync(
    join(consumer, "good.ts"),
    [
      'import { SegVol, readNifti, ShapeError, type NiftiVolume, type SegmentResult, type Target } from "segvol-webgpu";',
      'import { ops, Tensor } from "segvol-webgpu/engine";',
      'import { TrainableSegVol } from "segvol-webgpu/train";',
      'import { generatePhantom } from "segvol-webgpu/demo";',
      "export function product(a: Tensor, b: Tensor): Tensor {",
      "  return ops.matmul(a, b, { transB: true });",
      "}",
      "export const phantomDims: [number, number, number] = generatePhantom(1, { dims: [32, 32, 16] }).dims;",
      "export const isShapeError = (e: unknown): boolean => e instanceof ShapeError;",
      "export type Trainable = TrainableSegVol;",
      "export async function liver(weights: string, ct: string): Promise<number> {",
      "  const model: SegVol = await SegVol.fromWeights(weights);",
      "  const nii: NiftiVolume = readNifti(ct);",
      '  const targets: Target[] = [{ name: "liver", text: "liver" }, { name: "box", box: [1, 2, 3, 4, 5, 6] }];',
      "  const result: SegmentResult = await model.segment({ dims: nii.dims, data: new Float32Array(nii.dims[0] * nii.dims[1] * nii.dims[2]) }, targets);",
      "  model.dispose();",
      "  return result.targets[0]!.voxels;",
      "}",
      "// With `any` types this line would not be an error, and the directive would be.",
      "// @ts-expect-error fromWeights takes a folder, not a number",
      "void SegVol.fromWeights(42);",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(consumer, "bad.ts"),
    [
      'import { SegVol } from "segvol-webgpu";',
      "// A deliberate mistake: fromWeights returns a Promise<SegVol>, not a SegVol.",
      'export const model: SegVol = SegVol.fromWeights("weights/demo");',
      "",
    ].join("\n"),
  );
}, 300_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("npm pack", () => {
  it("ships the bundles, declarations, CLI, demo model and licences, and nothing of the repo's development", () => {
    for (const need of ["bin/segvol.js", "dist/index.js", "dist/cli.js", "dist/engine.js", "dist/train.js", "dist/demo.js", "dist/queue.js", "dist/types/src/index.d.ts", "dist/types/src/exports/engine.d.ts", "weights/demo/model.safetensors", "weights/demo/categories.json", "LICENSE", "README.md", "weights/clip-tokenizer/LICENSE"]) {
      expect(files, need).toContain(need);
    }
    const unwanted = files.filter((f) => /^(test|bench|tools|scripts|docs|src|segvol-demo)\/|\.map$|\.py$|\.pth$|\.tgz$/.test(f));
    expect(unwanted).toEqual([]);
    // The entries share their modules through chunks (one Tensor class, one device).
    expect(files.some((f) => /^dist\/chunks\/chunk-[A-Z0-9]+\.js$/.test(f))).toBe(true);
    // The demo model is 8.2 MB of nearly incompressible floats; the rest is small.
    expect(statSync(tarball).size).toBeLessThan(10_000_000);
  });

  it("runs the CLI and imports the library entry from the installed package", () => {
    const help = run(process.execPath, [join("node_modules", "segvol-webgpu", "bin", "segvol.js"), "--help"], consumer);
    expect(help.code, help.out).toBe(0);
    expect(help.out).toContain("segment");
    const imp = run(process.execPath, ["--input-type=module", "-e", 'const m = await import("segvol-webgpu"); console.log(typeof m.SegVol, typeof m.readNifti);'], consumer);
    expect(imp.code, imp.out).toBe(0);
    expect(imp.out.trim()).toBe("function function");
    // Each subpath resolves; a class reached through two entries is one class.
    const sub = run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'const [r, e, t, d] = await Promise.all(["segvol-webgpu", "segvol-webgpu/engine", "segvol-webgpu/train", "segvol-webgpu/demo"].map((m) => import(m))); console.log(typeof e.ops.matmul, typeof t.train, typeof d.generatePhantom, e.ShapeError === r.ShapeError, "ops" in r);',
      ],
      consumer,
    );
    expect(sub.code, sub.out).toBe(0);
    expect(sub.out.trim()).toBe("function function function true false");
  });

  it("gives a web developer's bundler (esbuild, platform browser) dist/browser.js, with no Node built-in to polyfill", async () => {
    expect(files).toContain("dist/browser.js");
    expect(files).toContain("dist/types/src/browser.d.ts");
    writeFileSync(join(consumer, "web.js"), 'import { SegVol, parseNifti, encodeNifti } from "segvol-webgpu";\nconsole.log(SegVol, parseNifti, encodeNifti);\n');
    const { build } = await import("esbuild");
    const r = await build({ absWorkingDir: consumer, entryPoints: ["web.js"], bundle: true, platform: "browser", format: "esm", write: false, metafile: true, logLevel: "silent" });
    expect(Object.keys(r.metafile.inputs).sort()).toEqual(["node_modules/segvol-webgpu/dist/browser.js", "web.js"]);
  });

  it("gives a strict TypeScript consumer real types: a correct script type-checks", () => {
    const tsc = join(consumer, "node_modules", "typescript", "bin", "tsc");
    const good = run(process.execPath, [tsc, "-p", "tsconfig.good.json"], consumer);
    expect(good.out).toBe("");
    expect(good.code).toBe(0);
  });

  it("and a script with a type error fails, on that line, for that reason", () => {
    const tsc = join(consumer, "node_modules", "typescript", "bin", "tsc");
    const bad = run(process.execPath, [tsc, "-p", "tsconfig.bad.json"], consumer);
    expect(bad.code).not.toBe(0);
    const errors = bad.out.split("\n").filter((l) => l.includes("error TS"));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^bad\.ts\(3,14\): error TS2740: Type 'Promise<SegVol>' is missing the following properties from type 'SegVol'/);
  });
});
