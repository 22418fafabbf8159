// atomic.ts where the other atomic tests do not reach: the pid table tag in
// temp names (host and pid namespace), a symlink that looks like a dead
// writer's temp file, a destination name too long for its temp name,
// replaceDir when the new folder cannot be moved in, and two files on
// different file systems that share an inode number.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assertNotInput, OutputPathError, pidTableTag, removeStaleTemps, replaceDir, tempPathFor, writeFileAtomic } from "../../src/io/atomic.js";

const tmp = mkdtempSync(join(tmpdir(), "atomic-limits-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("temp file names", () => {
  it("tag this host and pid namespace: the first 8 hex digits of SHA-256 of host name, NUL, the namespace link", () => {
    let ns = "";
    try {
      ns = readlinkSync("/proc/self/ns/pid");
    } catch {
      // no /proc: the host name alone
    }
    const tag = createHash("sha256").update(`${hostname()}\0${ns}`).digest("hex").slice(0, 8);
    expect(pidTableTag()).toBe(tag);
    const name = basename(tempPathFor(join(tmp, "mask.nii.gz"), 4321));
    expect(name).toMatch(new RegExp(`^\\.mask\\.nii\\.gz\\.4321\\.${tag}-[0-9a-f]{8}\\.tmp$`));
  });

  it("a dead writer's name on a symlink is left alone; only regular files are removed", () => {
    const dir = join(tmp, "links");
    mkdirSync(dir);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!; // exited: its pid is free
    const file = tempPathFor(join(dir, "a.nii"), dead);
    const link = tempPathFor(join(dir, "b.nii"), dead);
    writeFileSync(file, "partial");
    writeFileSync(join(dir, "target"), "kept");
    symlinkSync(join(dir, "target"), link);
    removeStaleTemps(dir);
    expect(existsSync(file)).toBe(false);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, "target"), "latin1")).toBe("kept");
  });

  it("writes a destination named near the 255-byte limit: its temp name keeps a whole-character prefix of the name", () => {
    const dir = join(tmp, "long");
    mkdirSync(dir);
    for (const name of [`${"m".repeat(240)}.nii`, `x${"é".repeat(124)}.nii`]) {
      // 244 and 253 bytes: valid names whose full temp names (name + 36 bytes) would not be; the second one's 200-byte cut falls inside an é.
      const out = join(dir, name);
      const temp = basename(tempPathFor(out));
      expect(Buffer.byteLength(temp)).toBeLessThanOrEqual(255);
      const kept = temp.slice(1, temp.lastIndexOf(".", temp.lastIndexOf(".", temp.lastIndexOf("-")) - 1));
      expect(name.startsWith(kept) && kept.length > 0).toBe(true);
      expect(kept.includes("\uFFFD")).toBe(false);
      writeFileAtomic(out, Buffer.from("mask"), { what: "writeNifti" });
      expect(readFileSync(out, "latin1")).toBe("mask");
    }
    expect(readdirSync(dir).sort()).toEqual([`${"m".repeat(240)}.nii`, `x${"é".repeat(124)}.nii`].sort());
  });
});

describe("replaceDir when the move fails", () => {
  it("puts the old folder back, so the destination is never missing", () => {
    const out = join(tmp, "weights");
    mkdirSync(out);
    writeFileSync(join(out, "old.bin"), "old");
    const missing = join(tmp, "weights.tmp"); // the new folder is not there: the move fails
    expect(() => replaceDir(missing, out)).toThrow(/ENOENT/);
    expect(readFileSync(join(out, "old.bin"), "latin1")).toBe("old");
    expect(readdirSync(tmp).filter((f) => f.startsWith("weights"))).toEqual(["weights"]);
  });
});

describe("assertNotInput across file systems", () => {
  // The roots of /proc and /sys are inode 1 of two different file systems on Linux.
  const linux = ["/proc", "/sys"].every((p) => existsSync(p) && statSync(p).ino === 1) && statSync("/proc").dev !== statSync("/sys").dev;
  it.skipIf(!linux)("does not take two paths with the same inode number on different devices for the same file", () => {
    expect(() => assertNotInput("/sys", "/proc")).not.toThrow();
    expect(() => assertNotInput("/proc", "/proc/.")).toThrow(OutputPathError);
  });
});
