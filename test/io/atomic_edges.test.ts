// The edges of atomic writes and positioned reads: another existing file is
// not "the input"; errors are OutputPathErrors that name the writer;
// replaceDir swaps a whole folder in and leaves nothing of the old one; and
// readAt fills its buffer, or stops at the end of the file.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assertNotInput, OutputPathError, removeStaleTemps, replaceDir, writeFileAtomic } from "../../src/io/atomic.js";
import { readAt } from "../../src/io/read_at.js";

const tmp = mkdtempSync(join(tmpdir(), "atomic-edges-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("writeFileAtomic and assertNotInput", () => {
  it("writes over an existing file that is not the input, the input left as it was", () => {
    const input = join(tmp, "scan.nii");
    const out = join(tmp, "mask.nii");
    writeFileSync(input, "scan");
    writeFileSync(out, "old mask");
    expect(() => assertNotInput(out, input)).not.toThrow();
    writeFileAtomic(out, Buffer.from("new mask"), { inputPath: [input] });
    expect(readFileSync(out, "latin1")).toBe("new mask");
    expect(readFileSync(input, "latin1")).toBe("scan");
  });

  it("refuses as an OutputPathError naming the writer, \"write\" when none is named", () => {
    const input = join(tmp, "in.bin");
    writeFileSync(input, "x");
    let error: Error | undefined;
    try {
      writeFileAtomic(input, Buffer.from("y"), { inputPath: input });
    } catch (e) {
      error = e as Error;
    }
    expect(error?.name).toBe("OutputPathError");
    expect(error?.message).toBe(`write: refusing to write ${input}: it is the input file ${input}`);
    expect(() => assertNotInput(input, [input])).toThrow(`write: refusing to write ${input}`);
    expect(() => assertNotInput(input, undefined)).not.toThrow();
  });
});

describe("replaceDir", () => {
  it("moves the new folder in place of an existing one and removes the old one, files and all", () => {
    const out = join(tmp, "weights");
    const next = join(tmp, "weights.tmp");
    mkdirSync(join(out, "sub"), { recursive: true });
    writeFileSync(join(out, "sub", "old.bin"), "old");
    mkdirSync(next);
    writeFileSync(join(next, "new.bin"), "new");
    replaceDir(next, out);
    expect(readdirSync(out)).toEqual(["new.bin"]);
    expect(readdirSync(tmp).filter((f) => f.startsWith("weights"))).toEqual(["weights"]);
  });

  it("moves the folder when there is nothing to replace", () => {
    const out = join(tmp, "fresh");
    const next = join(tmp, "fresh.tmp");
    mkdirSync(next);
    writeFileSync(join(next, "a.bin"), "a");
    replaceDir(next, out);
    expect(readFileSync(join(out, "a.bin"), "latin1")).toBe("a");
    expect(existsSync(next)).toBe(false);
  });
});

describe("readAt", () => {
  it("reads from a position, and fewer bytes only where the file ends", () => {
    const p = join(tmp, "bytes.bin");
    writeFileSync(p, Uint8Array.from({ length: 100 }, (_, i) => i));
    const fd = openSync(p, "r");
    try {
      const into = new Uint8Array(10);
      expect(readAt(fd, into, 40)).toBe(10);
      expect([...into]).toEqual([40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
      const tail = new Uint8Array(10).fill(255);
      expect(readAt(fd, tail, 95)).toBe(5);
      expect([...tail]).toEqual([95, 96, 97, 98, 99, 255, 255, 255, 255, 255]);
      expect(readAt(fd, new Uint8Array(4), 100)).toBe(0);
    } finally {
      closeSync(fd);
    }
  });
});

describe("writeFileAtomic when the write fails", () => {
  const openFds = (): number => readdirSync("/proc/self/fd").length;
  const temps = (): string[] => readdirSync(tmp).filter((n) => n.endsWith(".tmp"));

  /** Chunks whose iteration runs `midway` after the first chunk (the write is then under way). */
  function chunksThen(midway: () => void): Uint8Array[] {
    const list = [Buffer.from("new "), Buffer.from("data")];
    list[Symbol.iterator] = function* () {
      yield list[0]!;
      midway();
      yield list[1]!;
    } as (typeof list)[typeof Symbol.iterator];
    return list;
  }

  it("keeps the old file, removes its temp file and closes it when an error comes mid-write", () => {
    const out = join(tmp, "midway.bin");
    writeFileSync(out, "old");
    const fds = openFds();
    let err: unknown;
    try {
      writeFileAtomic(
        out,
        chunksThen(() => {
          throw new Error("disk full");
        }),
        { what: "writeNifti" },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutputPathError);
    expect((err as Error).message).toBe(`writeNifti: writing ${out} failed: disk full`);
    expect(readFileSync(out, "latin1")).toBe("old");
    expect(temps()).toEqual([]);
    expect(openFds()).toBe(fds);
  });

  it("removes its temp file when the final rename fails (a folder appeared at the destination)", () => {
    const out = join(tmp, "became_dir");
    const fds = openFds();
    let err: unknown;
    try {
      writeFileAtomic(out, chunksThen(() => mkdirSync(join(out, "inner"), { recursive: true })));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutputPathError);
    expect((err as Error).message).toMatch(new RegExp(`^write: writing ${out} failed: E(ISDIR|NOTEMPTY|EXIST)`));
    expect(temps()).toEqual([]);
    expect(readdirSync(out)).toEqual(["inner"]);
    expect(openFds()).toBe(fds);
  });

  it("refuses a destination named as an input even when that input does not exist yet", () => {
    const input = join(tmp, "not_yet.nii");
    expect(() => writeFileAtomic(join(tmp, ".", "not_yet.nii"), Buffer.from("x"), { inputPath: input })).toThrow(`write: refusing to write ${join(tmp, ".", "not_yet.nii")}: it is the input file ${input}`);
    expect(existsSync(input)).toBe(false);
  });

  it("sweeps nothing, and throws nothing, in a folder it cannot read", () => {
    expect(() => removeStaleTemps(join(tmp, "no_such_folder"))).not.toThrow();
    const file = join(tmp, "plain_file");
    writeFileSync(file, "x");
    expect(() => removeStaleTemps(file)).not.toThrow();
    expect(readFileSync(file, "latin1")).toBe("x");
  });
});
