// Atomic writes: whole file or nothing, never over an input (also via links).
import { spawnSync } from "node:child_process";
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assertNotInput, tempPathFor, writeFileAtomic } from "../../src/io/atomic.js";

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

  it("removes temp files that killed writers left in the folder, and only those", () => {
    const out = join(tmp, "stale", "mask.nii.gz");
    mkdirSync(join(tmp, "stale"));
    // A process that has exited: its pid is free (ESRCH), as after kill -9.
    const child = spawnSync(process.execPath, ["-e", ""]);
    const dead = child.pid!;
    expect(child.status).toBe(0);
    const deadTemp = tempPathFor(out, dead);
    const otherOutput = tempPathFor(join(tmp, "stale", "logits.nii.gz"), dead);
    // Kept: a live writer (our parent), ourselves, another host's or container's
    // temp (pid table tag differs), and names that are not ours.
    const liveTemp = tempPathFor(out, process.ppid);
    const ownTemp = tempPathFor(out);
    const foreign = deadTemp.replace(/\.([0-9a-f]{8})-/, (_m, tag: string) => `.${tag === "00000000" ? "11111111" : "00000000"}-`);
    const notOurs = join(tmp, "stale", `.mask.nii.gz.${dead}.tmp`);
    for (const f of [deadTemp, otherOutput, liveTemp, ownTemp, foreign, notOurs]) writeFileSync(f, Buffer.alloc(4096, 1));
    writeFileAtomic(out, Buffer.from("mask"));
    expect(readFileSync(out, "latin1")).toBe("mask");
    expect(existsSync(deadTemp)).toBe(false);
    expect(existsSync(otherOutput)).toBe(false);
    const left = readdirSync(join(tmp, "stale")).sort();
    expect(left).toEqual([basename(out), ...[liveTemp, ownTemp, foreign, notOurs].map((f) => basename(f))].sort());
  });
});
