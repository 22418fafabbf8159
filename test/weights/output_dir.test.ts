// The output-folder guards (src/weights/output_dir.ts) and the quoting of file
// content in messages (src/weights/quote.ts), case by case (issue 24,
// mutation testing). Each refusal leaves the folders as they were.
import { linkSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assertSparesInputs, OutputReplacesInputError, previousOutput } from "../../src/weights/output_dir.js";
import { dims, excerpt, QUOTE_MAX, quoted } from "../../src/weights/quote.js";
import { writeSafetensors } from "../../src/weights/safetensors.js";
import { tempDir, thrown } from "./util.js";

const root = tempDir("outdir");
let n = 0;
const fresh = (): string => {
  const d = join(root, `case${n++}`);
  mkdirSync(d);
  return d;
};

describe("assertSparesInputs", () => {
  it("refuses an input inside the output folder (through a symlink too), naming the real path only when it differs", () => {
    const base = fresh();
    const out = join(base, "out");
    mkdirSync(join(out, "sub"), { recursive: true });
    writeFileSync(join(out, "sub", "w.bin"), "w");
    symlinkSync(out, join(base, "link"));
    const listing = readdirSync(out);
    const e = thrown(() => assertSparesInputs(out, [join(out, "sub", "w.bin")], "convert"));
    expect(e).toBeInstanceOf(OutputReplacesInputError);
    expect(e.name).toBe("OutputReplacesInputError");
    expect(e.message).toBe(`convert: refusing to write ${out}: it would replace or delete ${join(out, "sub", "w.bin")}, which this command reads; choose another --out`);
    const viaLink = join(base, "link", "sub", "w.bin");
    expect(thrown(() => assertSparesInputs(out, [viaLink], "convert")).message).toBe(
      `convert: refusing to write ${out}: it would replace or delete ${viaLink} (${join(out, "sub", "w.bin")}), which this command reads; choose another --out`,
    );
    expect(thrown(() => assertSparesInputs(out, [out], "init"))).toBeInstanceOf(OutputReplacesInputError);
    expect(readdirSync(out)).toEqual(listing);
  });

  it("spares a sibling whose name merely starts with the output folder's, and skips inputs that do not exist", () => {
    const base = fresh();
    const out = join(base, "out");
    mkdirSync(out);
    mkdirSync(join(base, "out2"));
    writeFileSync(join(base, "out2", "w.bin"), "w");
    writeFileSync(join(base, "outfile"), "w");
    expect(() => assertSparesInputs(out, [join(base, "out2", "w.bin"), join(base, "outfile"), join(base, "missing.bin"), join(out, "missing.bin")], "convert")).not.toThrow();
    expect(() => assertSparesInputs(join(base, "nothing-here"), [join(base, "outfile")], "convert")).not.toThrow();
  });

  it("sees a hard link of a file in the output folder, and only of a file", () => {
    const base = fresh();
    const out = join(base, "out");
    mkdirSync(join(out, "inner"), { recursive: true });
    writeFileSync(join(out, "w.bin"), "w");
    linkSync(join(out, "w.bin"), join(base, "hard.bin"));
    expect(thrown(() => assertSparesInputs(out, [join(base, "hard.bin")], "grow"))).toBeInstanceOf(OutputReplacesInputError);
    writeFileSync(join(base, "other.bin"), "w");
    expect(() => assertSparesInputs(out, [join(base, "other.bin"), base], "grow")).not.toThrow();
  });
});

describe("previousOutput", () => {
  const FILES = new Set(["model.safetensors", "config.json"]);
  const folder = (producer: string | null, extra: string[] = []): string => {
    const d = fresh();
    if (producer !== null) writeSafetensors(join(d, "model.safetensors"), [{ name: "w", dtype: "F32", shape: [1], data: new Float32Array([1]) }], { producer });
    for (const f of extra) writeFileSync(join(d, f), "{}");
    return d;
  };

  it("is ours only with our files alone and a model.safetensors our producer wrote", () => {
    expect(previousOutput(folder("segvol convert", ["config.json"]), FILES, "segvol convert")).toEqual({ ours: true, foreign: [] });
    expect(previousOutput(folder("segvol init"), FILES, "segvol convert")).toEqual({ ours: false, foreign: [] });
    expect(previousOutput(folder("segvol convert", ["notes.txt"]), FILES, "segvol convert")).toEqual({ ours: false, foreign: ["notes.txt"] });
    expect(previousOutput(folder(null, ["config.json"]), FILES, "segvol convert")).toEqual({ ours: false, foreign: [] });
    const broken = folder(null);
    writeFileSync(join(broken, "model.safetensors"), "not safetensors");
    expect(previousOutput(broken, FILES, "segvol convert")).toEqual({ ours: false, foreign: [] });
  });
});

describe("quoting", () => {
  it("quotes up to QUOTE_MAX characters whole, and cuts one more with its length", () => {
    const at = "x".repeat(QUOTE_MAX);
    expect(excerpt(at)).toBe(at);
    expect(quoted(at)).toBe(JSON.stringify(at));
    expect(excerpt(`${at}y`)).toBe(`${at}... (${QUOTE_MAX + 1} characters)`);
    expect(quoted(`${at}y`)).toBe(`${JSON.stringify(at)}... (${QUOTE_MAX + 1} characters)`);
    expect(quoted('a"\nb')).toBe('"a\\"\\nb"');
    expect(dims([2, 3])).toBe("[2, 3]");
  });
});
