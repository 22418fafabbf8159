// The truncated-download report (src/weights/torch_truncated.ts), cut by cut
// (issue 24, mutation testing): torch.save's layout built by hand (data.pkl
// with a data descriptor, then one entry per storage) and cut inside each part
// of it; the report must say where the file ends in the reader's words, never
// throw, and leave no file descriptor open.
import { closeSync, openSync, readdirSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StorageRef, TensorRef } from "../../src/weights/torch_pickle.js";
import { describeTruncation, tensorsOf } from "../../src/weights/torch_truncated.js";
import { PyTuple } from "../../src/weights/unpickle.js";
import { buildZip, f32Bytes, P, stateDictPickle, type CraftTensor, type ZipEntrySpec } from "./craft.js";
import { tempDir } from "./util.js";

const dir = tempDir("truncated");
let n = 0;
const openFds = (): number => readdirSync("/proc/self/fd").length;

/** describeTruncation of `bytes` written to a file; checks that it leaves no descriptor open. */
function report(bytes: Uint8Array): string | null {
  const p = join(dir, `t${n++}.pth`);
  writeFileSync(p, bytes);
  const fds = openFds();
  const r = describeTruncation(p);
  expect(openFds()).toBe(fds);
  return r;
}

const w = (name: string, storage: string): CraftTensor => ({ name, storage, numel: 4, shape: [4] });

/** torch.save's layout: "a/data.pkl" then storages "a/data/<key>", each followed by a data descriptor. */
function saved(pkl: Buffer, keys: string[], more: ZipEntrySpec[] = []): ReturnType<typeof buildZip> {
  return buildZip([{ name: "a/data.pkl", data: pkl, descriptor: true }, ...keys.map((k) => ({ name: `a/data/${k}`, data: f32Bytes([1, 2, 3, 4]), descriptor: true })), ...more]);
}

describe("describeTruncation", () => {
  const pkl = stateDictPickle([w("x", "0"), w("y", "1")]);
  const zip = saved(pkl, ["0", "1"]);
  const start = (i: number): number => zip.localOffsets[i]!;

  it("names the storage and tensor the file ends in", () => {
    const cut = start(2) + 30 + 8 + 3;
    expect(report(zip.bytes.subarray(0, cut))).toBe(`the file (${cut} bytes) ends inside entry "a/data/1", the storage of tensor "y"`);
  });

  it("names every tensor that shares the storage", () => {
    const tied = saved(stateDictPickle([w("x", "0"), w("x_tied", "0"), w("y", "1")]), ["0", "1"]);
    const cut = tied.localOffsets[1]! + 40;
    expect(report(tied.bytes.subarray(0, cut))).toBe(`the file (${cut} bytes) ends inside entry "a/data/0", the storage of tensors "x", "x_tied"`);
  });

  it("says when the file ends right after data.pkl, its descriptor included or not", () => {
    for (const cut of [start(1), start(1) - 16 + 16, start(1) + 5]) {
      expect(report(zip.bytes.subarray(0, cut)), `cut at ${cut}`).toBe(`the file (${cut} bytes) ends right after the tensor index (data.pkl): no tensor data survived`);
    }
  });

  it("skips a local header that the cut itself splits, or whose name it cuts", () => {
    for (const cut of [start(2) + 20, start(2) + 30 + 6]) {
      expect(report(zip.bytes.subarray(0, cut)), `cut at ${cut}`).toBe(`the file (${cut} bytes) ends inside entry "a/data/0", the storage of tensor "x"`);
    }
  });

  it("skips the local headers of another folder", () => {
    const other = saved(pkl, ["0"], [{ name: "b/extra", data: new Uint8Array(8) }]);
    const cut = other.localOffsets[2]! + 40;
    expect(report(other.bytes.subarray(0, cut))).toBe(`the file (${cut} bytes) ends inside entry "a/data/0", the storage of tensor "x"`);
  });

  it("says the file ends inside its first entry when data.pkl is not first, cut, or misnamed", () => {
    const first = (cut: number): string => `the file (${cut} bytes) ends before the end of its first entry`;
    expect(report(zip.bytes.subarray(0, 29))).toBe(first(29));
    expect(report(zip.bytes.subarray(0, 30 + 10))).toBe(first(40));
    expect(report(zip.bytes.subarray(0, start(1) - 1))).toBe(first(start(1) - 1)); // the descriptor cut short
    for (const name of ["a/b/data.pkl", "a/data.pkl.x", "data.pkl", "a/other.pkl"]) {
      const z = buildZip([{ name, data: pkl, descriptor: true }, { name: "a/data/0", data: f32Bytes([1, 2, 3, 4]), descriptor: true }]);
      const cut = z.localOffsets[1]! + 40;
      expect(report(z.bytes.subarray(0, cut)), name).toBe(first(cut));
    }
    expect(report(Buffer.from("not a zip at all, just some text"))).toBe(first(32));
  });

  it("skips a descriptor signature inside the pickle whose size field does not match", () => {
    const sig = Buffer.concat([Buffer.from([0x50, 0x4b, 0x07, 0x08]), Buffer.alloc(12, 0x11)]);
    const tricky = Buffer.concat([P.proto(2), P.sized(0x58, 4, sig), P.op(P.POP), stateDictPickle([w("x", "0")]).subarray(2)]);
    const z = saved(tricky, ["0"]);
    const cut = z.localOffsets[1]! + 40;
    expect(report(z.bytes.subarray(0, cut))).toBe(`the file (${cut} bytes) ends inside entry "a/data/0", the storage of tensor "x"`);
  });

  it("finds data.pkl's descriptor past the first MiB of a large pickle", () => {
    const big = Buffer.concat([P.proto(2), P.sized(0x58, 4, Buffer.alloc(1536 * 1024, 0x61)), P.op(P.POP), stateDictPickle([w("x", "0")]).subarray(2)]);
    const z = saved(big, ["0"]);
    const cut = z.localOffsets[1]! + 40;
    expect(report(z.bytes.subarray(0, cut))).toBe(`the file (${cut} bytes) ends inside entry "a/data/0", the storage of tensor "x"`);
  });

  it("names no tensor when the pickle cannot be read, and none for a storage no tensor uses", () => {
    const evil = saved(Buffer.concat([P.proto(2), P.global("os", "system"), P.op(P.STOP)]), ["0"]);
    const cut = evil.localOffsets[1]! + 40;
    expect(report(evil.bytes.subarray(0, cut))).toBe(`the file (${cut} bytes) ends inside entry "a/data/0"`);
    const unused = saved(pkl, ["5"]);
    const cut5 = unused.localOffsets[1]! + 40;
    expect(report(unused.bytes.subarray(0, cut5))).toBe(`the file (${cut5} bytes) ends inside entry "a/data/5"`);
  });

  it("returns null for a file it cannot open", () => {
    expect(describeTruncation(join(dir, "missing.pth"))).toBeNull();
  });

  const MiB = 1024 * 1024;
  /** A sparse file of `size` bytes holding `zip`'s bytes [0, cut) at 0 and `tail` at `tailAt`. */
  function sparse(size: number, head: Uint8Array, tail?: Uint8Array, tailAt = 0): string {
    const p = join(dir, `sparse${n++}.pth`);
    writeFileSync(p, head);
    truncateSync(p, size);
    if (tail) {
      const fd = openSync(p, "r+");
      writeSync(fd, tail, 0, tail.length, tailAt);
      closeSync(fd);
    }
    return p;
  }

  it("finds a local header that straddles two 16 MiB scan chunks", () => {
    const head = zip.bytes.subarray(0, start(1)); // data.pkl and its descriptor
    const header = zip.bytes.subarray(start(2), start(2) + 30 + 8); // the local header of "a/data/1"
    const size = 17 * MiB;
    const at = size - 16 * MiB - 10; // its first 10 bytes before the last chunk's start, 28 after
    const p = sparse(size, head, header, at);
    expect(describeTruncation(p)).toBe(`the file (${size} bytes) ends inside entry "a/data/1", the storage of tensor "y"`);
  });

  it("looks back at most 512 MiB for the last local header", () => {
    const head = zip.bytes.subarray(0, start(1));
    const size = 512 * MiB + 64 * 1024;
    // data.pkl's local header lies 512 MiB + 64 KiB before the end: never reached (a few seconds of reading zeros)
    expect(describeTruncation(sparse(size, head))).toBe(`the file (${size} bytes) lost its zip directory at the end`);
  });
});

describe("tensorsOf", () => {
  const storage = (entry: string): StorageRef => new StorageRef(entry, "F32", 4);
  const t0 = new TensorRef(storage("a/data/0"), 0, [4], [1]);
  const t1 = new TensorRef(storage("a/data/1"), 0, [4], [1]);

  it("names tensors by their dict keys and list positions, in file order, the root itself by an empty name", () => {
    const root = new Map<unknown, unknown>([
      ["layers", [t1, new PyTuple([t0, null, 3, "s"]), t0]],
      [7, t0],
      ["blob", new Uint8Array(4)],
      ["ref", storage("a/data/0")],
    ]);
    expect(tensorsOf(root, "a/data/0", 10).names).toEqual(["layers[1][0]", "layers[2]", "7"]);
    expect(tensorsOf(t0, "a/data/0").names).toEqual([""]);
  });

  it("stops at `max` names", () => {
    const root = new Map([
      ["a", t0],
      ["b", t0],
      ["c", t0],
    ]);
    expect(tensorsOf(root, "a/data/0", 1).names).toEqual(["a"]);
    expect(tensorsOf(root, "a/data/0", 2).names).toEqual(["a", "b"]);
  });
});
