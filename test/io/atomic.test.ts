// Atomic writes: whole file or nothing, never over an input (also via links).
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assertNotInput, writeFileAtomic } from "../../src/io/atomic.js";

const tmp = mkdtempSync(join(tmpdir(), "atomic-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("writeFileAtomic", () => {
  it("writes chunks in order and replaces an existing file, leaving no temp file", () => {
    const p = join(tmp, "out.bin");
    writeFileSync(p, "old contents that are longer");
    writeFileAtomic(p, [Buffer.from("ab"), new Uint8Array([99, 100]), Buffer.alloc(0)]);
    expect(readFileSync(p, "latin1")).toBe("abcd");
    expect(readdirSync(tmp).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("refuses the input path, spelled differently, hard-linked or symlinked", () => {
    const input = join(tmp, "scan.nii");
    writeFileSync(input, "precious");
    const hard = join(tmp, "hard.nii");
    linkSync(input, hard);
    const soft = join(tmp, "soft.nii");
    symlinkSync(input, soft);
    for (const out of [input, join(tmp, ".", "scan.nii"), hard, soft]) {
      expect(() => writeFileAtomic(out, Buffer.from("x"), { inputPath: input, what: "seg" })).toThrow(
        /seg: refusing to write .*: it is the input file .*scan\.nii/,
      );
    }
    expect(readFileSync(input, "latin1")).toBe("precious");
    expect(() => assertNotInput(join(tmp, "other.nii"), [input, soft])).not.toThrow();
  });

  it("names a missing folder or a folder as the target", () => {
    expect(() => writeFileAtomic(join(tmp, "nope", "x.bin"), Buffer.from("x"))).toThrow(/folder .*nope does not exist/);
    mkdirSync(join(tmp, "adir"));
    expect(() => writeFileAtomic(join(tmp, "adir"), Buffer.from("x"))).toThrow(/adir: it is a folder/);
  });
});
