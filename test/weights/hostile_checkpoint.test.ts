// Hostile PyTorch zip checkpoints (issue 18, items 10, 11, 15, 16): zip
// bombs, a truncated file whose pickle shares objects at every level, header
// fields that point outside the file, and one storage viewed by many tensors.
// Each is refused by the check meant for it, before the work it would cause.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { CheckpointError, openCheckpoint } from "../../src/weights/checkpoint.js";
import { MAX_PICKLE_BYTES, TensorRef, TorchZipCheckpoint } from "../../src/weights/torch_pickle.js";
import { MAX_WALK_VISITS, tensorsOf } from "../../src/weights/torch_truncated.js";
import { MAX_INFLATED_BYTES, ZipArchive, ZipError } from "../../src/weights/torch_zip.js";
import { PickleError, PyTuple } from "../../src/weights/unpickle.js";
import { buildZip, f32Bytes, P, stateDictPickle, tensorPickle, type CraftTensor, type ZipEntrySpec } from "./craft.js";
import { tempDir, thrown } from "./util.js";

const dir = tempDir("hostile-ckpt");

function write(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

/** The entries of a checkpoint: "a/data.pkl" for `tensors`, then storage i as "a/data/<i>". */
function checkpoint(tensors: CraftTensor[], storages: Omit<ZipEntrySpec, "name">[]): ZipEntrySpec[] {
  return [{ name: "a/data.pkl", data: stateDictPickle(tensors) }, ...storages.map((s, i) => ({ ...s, name: `a/data/${i}` }))];
}


const MiB = 1024 * 1024;

describe("checkpoint zip bombs: each entry inflates only what it may hold", () => {
  it("refuses a deflated storage whose directory size exceeds what its pickle declares, before inflating it", () => {
    // 64 MiB of zeros deflate to ~64 kB: an honest stream, but the pickle says the storage holds 4 floats.
    const zeros = new Uint8Array(64 * MiB);
    const p = write("oversized_storage.pth", buildZip(checkpoint([{ name: "w", storage: "0", numel: 4, shape: [4] }], [{ data: zeros, deflate: true }])).bytes);
    const e = thrown(() => TorchZipCheckpoint.open(p));
    expect(e).toBeInstanceOf(PickleError);
    expect(e.message).toBe(`${p}: deflated storage "0" claims ${64 * MiB} bytes, its 4 F32 elements take 16 (corrupt or malicious file)`);
  });

  it("stops inflating a storage as soon as it passes its declared size", () => {
    // The directory and the pickle agree on 16 bytes; the deflate stream holds 512 KiB
    // (in ~500 bytes: few enough to pass the size checks on the directory's claims).
    const stream = deflateRawSync(new Uint8Array(512 * 1024));
    expect(stream.length).toBeLessThan(1024);
    const bomb = buildZip(checkpoint([{ name: "w", storage: "0", numel: 4, shape: [4] }], [{ data: f32Bytes([1, 2, 3, 4]), raw: stream, deflate: true }]));
    const ck = TorchZipCheckpoint.open(write("stream_bomb.pth", bomb.bytes));
    const t = (ck.root as Map<string, TensorRef>).get("w")!;
    const e = thrown(() => ck.readContiguous(t, "w"));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toMatch(/entry "a\/data\/0": inflates to more than the 16 bytes its directory entry declares \(zip bomb or corrupt file\)$/);
    expect(ck.inflations).toBe(1);
    ck.close();
  });

  it("refuses a data.pkl over MAX_PICKLE_BYTES before inflating it", () => {
    const big = new Uint8Array(MAX_PICKLE_BYTES + 1);
    const p = write("pickle_bomb.pth", buildZip([{ name: "a/data.pkl", data: big, deflate: true }]).bytes);
    const zip = ZipArchive.open(p);
    const e = thrown(() => zip.read("a/data.pkl", MAX_PICKLE_BYTES));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toBe(`${p}: entry "a/data.pkl" holds ${MAX_PICKLE_BYTES + 1} bytes, more than the ${MAX_PICKLE_BYTES} such an entry may hold (corrupt or malicious file)`);
    expect(zip.inflations).toBe(0);
    zip.close();
    expect(thrown(() => openCheckpoint(p)).message).toContain(`more than the ${MAX_PICKLE_BYTES} such an entry may hold`);
  });

  it("refuses a deflated storage over MAX_INFLATED_BYTES without inflating it", () => {
    const numel = MAX_INFLATED_BYTES / 4 + 1;
    // Enough stored bytes to pass the deflate-ratio check; never inflated, so they need not be a stream.
    const raw = new Uint8Array(Math.ceil((numel * 4) / 1000));
    const zip = buildZip(checkpoint([{ name: "w", storage: "0", numel, shape: [2] }], [{ data: new Uint8Array(0), size: numel * 4, raw, deflate: true }]));
    const p = write("huge_storage.pth", zip.bytes);
    const ck = TorchZipCheckpoint.open(p);
    const e = thrown(() => ck.readContiguous((ck.root as Map<string, TensorRef>).get("w")!, "w"));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toBe(
      `${p}: deflated entry "a/data/0" holds ${numel * 4} bytes, more than the ${MAX_INFLATED_BYTES} this reader inflates in memory; save the checkpoint uncompressed (torch.save does)`,
    );
    expect(ck.inflations).toBe(0);
    ck.close();
  });

  it("keeps at most maxInflatedBytes of inflated storages, dropping the least recently used", () => {
    const entries = ["x", "y", "z"].map((name, i) => ({ name, data: f32Bytes(Array.from({ length: 10 }, (_, j) => 10 * i + j)), deflate: true }));
    const p = write("three.zip", buildZip(entries).bytes);
    const zip = ZipArchive.open(p, 100); // room for two 40-byte entries
    const counts: number[] = [];
    for (const name of ["x", "y", "x", "z", "x", "y"]) {
      const got = new Float32Array(zip.readRange(name, 0, 40).buffer);
      expect([...got]).toEqual([...new Float32Array(entries.find((e) => e.name === name)!.data.buffer)]);
      counts.push(zip.inflations);
    }
    // x, y inflated; x cached; z evicts y (least recent); x cached; y evicts z.
    expect(counts).toEqual([1, 2, 2, 3, 3, 4]);
    zip.close();
  });
});

describe("zip entries that claim more work than their bytes hold", () => {
  const entries = ["x", "y", "z"].map((name, i) => ({ name, data: f32Bytes(Array.from({ length: 10 }, (_, j) => 10 * i + j)), deflate: true }));

  it("refuses to inflate the archive's entries more than twice their size in all (alternating reads past the cache)", () => {
    const p = write("thrash.zip", buildZip(entries).bytes);
    const zip = ZipArchive.open(p, 40); // room for one entry at a time
    // 3 entries of 40 bytes: 240 bytes may be inflated, i.e. 6 inflations; the 7th read is refused.
    const reads = ["x", "y", "z", "x", "y", "z"];
    for (const name of reads) zip.readRange(name, 0, 4);
    expect(zip.inflations).toBe(6);
    const e = thrown(() => zip.readRange("x", 0, 4));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toBe(
      `${p}: entry "x": the archive's deflated entries were inflated again and again (240 bytes so far, twice their size in all); save the checkpoint uncompressed (torch.save does)`,
    );
    expect(zip.inflations).toBe(6);
    zip.close();
  });

  it("refuses entries that share bytes (one stream listed as many storages)", () => {
    const { bytes, directoryOffset } = buildZip(entries);
    // Point entry z's directory record at y's local header.
    const m = Buffer.from(bytes);
    const cd = (i: number): number => {
      let at = directoryOffset;
      for (let k = 0; k < i; k++) at += 46 + m.readUInt16LE(at + 28) + m.readUInt16LE(at + 30);
      return at;
    };
    m.writeUInt32LE(m.readUInt32LE(cd(1) + 42), cd(2) + 42);
    const p = write("aliased.zip", m);
    const e = thrown(() => ZipArchive.open(p));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toMatch(/entries "[yz]" and "[yz]" overlap \(corrupt or malicious file\)$/);
  });

  it("refuses a deflated entry whose stored bytes exceed what deflate makes of its size", () => {
    const p = write("padded.zip", buildZip([{ name: "x", data: new Uint8Array(16), raw: new Uint8Array(2048), deflate: true }]).bytes);
    const zip = ZipArchive.open(p);
    expect(thrown(() => zip.readRange("x", 0, 16)).message).toBe(`${p}: entry "x": claims 16 bytes from 2048 compressed (corrupt or malicious)`);
    expect(zip.inflations).toBe(0);
    zip.close();
  });
});

describe("shared deflated storages", () => {
  it("inflates a storage once for all 380 tensors that view it", () => {
    const n = 380;
    const values = Array.from({ length: n * 4 }, (_, i) => i * 0.5);
    const tensors: CraftTensor[] = Array.from({ length: n }, (_, i) =>
      // Every other tensor a transposed 2x2 view, to cover gathers too.
      i % 2 === 0 ? { name: `t${i}`, storage: "0", numel: n * 4, offset: 4 * i, shape: [4] } : { name: `t${i}`, storage: "0", numel: n * 4, offset: 4 * i, shape: [2, 2], stride: [1, 2] },
    );
    const p = write("shared.pth", buildZip(checkpoint(tensors, [{ data: f32Bytes(values), deflate: true }])).bytes);
    const ck = TorchZipCheckpoint.open(p);
    const root = ck.root as Map<string, TensorRef>;
    for (let i = 0; i < n; i++) {
      const got = [...new Float32Array(ck.readContiguous(root.get(`t${i}`)!, `t${i}`).buffer)];
      const v = values.slice(4 * i, 4 * i + 4);
      expect(got, `t${i}`).toEqual(i % 2 === 0 ? v : [v[0], v[2], v[1], v[3]]);
    }
    expect(ck.inflations).toBe(1);
    ck.close();
  });
});

describe("a truncated checkpoint whose pickle shares objects at every level", () => {
  /** root = x64, x_i = [x_{i-1}, x_{i-1}], x_0 = {"w": tensor}: 2^64 paths, 66 objects. */
  function sharedPickle(depth: number): Buffer {
    // Each level is built, memoised, and popped; the last one stays as the result.
    const parts = [P.proto(2), P.op(P.EMPTY_DICT), P.put(0), P.op(P.MARK), P.str("w"), tensorPickle({ name: "w", storage: "0", numel: 4, shape: [4] }), P.op(P.SETITEMS, P.POP)];
    for (let i = 1; i <= depth; i++) parts.push(P.op(P.MARK), P.get(i - 1), P.get(i - 1), P.op(P.LIST), P.put(i), P.op(P.POP));
    parts.push(P.get(depth), P.op(P.STOP));
    return Buffer.concat(parts);
  }

  it("visits each shared object once", () => {
    const tensor = new TensorRef({ entry: "a/data/0", dtype: "F32", numel: 4 }, 0, [4], [1]);
    let x: unknown = new Map([["w", tensor]]);
    for (let i = 0; i < 64; i++) x = [x, x];
    // A storage no tensor uses: the search must look everywhere (2^64 paths, 66 objects).
    const none = tensorsOf(x, "a/data/1");
    expect(none.names).toEqual([]);
    expect(none.visits).toBeLessThanOrEqual(2 * 64 + 2);
    expect(tensorsOf(x, "a/data/0").names).toEqual(["w"]);
  });

  it("names the tensor a cut file ends in, however deeply its pickle shares objects", () => {
    // torch.save layout: data.pkl with a data descriptor, then the storages; the cut loses the directory.
    const { bytes, localOffsets } = buildZip([
      { name: "a/data.pkl", data: sharedPickle(64), descriptor: true },
      { name: "a/data/0", data: f32Bytes([1, 2, 3, 4]), descriptor: true },
    ]);
    const cut = localOffsets[1]! + 30 + "a/data/0".length + 6;
    const p = write("shared_cut.pth", bytes.subarray(0, cut));
    const e = thrown(() => openCheckpoint(p));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toBe(`${p}: truncated PyTorch checkpoint: the file (${cut} bytes) ends inside entry "a/data/0", the storage of tensor "w"; download or save it again`);
    // Cut in a storage no tensor of the pickle uses: the whole tree is searched (the case that hung).
    const other = buildZip([
      { name: "a/data.pkl", data: sharedPickle(64), descriptor: true },
      { name: "a/data/7", data: f32Bytes([1, 2, 3, 4]), descriptor: true },
    ]);
    const cut7 = other.localOffsets[1]! + 30 + "a/data/7".length + 6;
    const p7 = write("shared_cut7.pth", other.bytes.subarray(0, cut7));
    expect(thrown(() => openCheckpoint(p7)).message).toBe(
      `${p7}: truncated PyTorch checkpoint: the file (${cut7} bytes) ends inside entry "a/data/7"; download or save it again`,
    );
  });

  it("gives up after MAX_WALK_VISITS values", () => {
    const tensor = new TensorRef({ entry: "a/data/0", dtype: "F32", numel: 4 }, 0, [4], [1]);
    const wide = new PyTuple([...new Array<null>(MAX_WALK_VISITS).fill(null), tensor]);
    const { names, visits } = tensorsOf(wide, "a/data/0");
    expect(names).toEqual([]);
    expect(visits).toBe(MAX_WALK_VISITS);
  });
});

describe("zip fields that point outside the file", () => {
  const pkl = stateDictPickle([{ name: "w", storage: "0", numel: 4, shape: [4] }]);

  it("explains a 600-byte cut file whose local extra field claims 65535 bytes", () => {
    const { bytes } = buildZip([{ name: "archive/data.pkl", data: Buffer.concat([pkl, Buffer.alloc(600)]), localExtraLen: 0xffff }]);
    const p = write("extra_ffff.pth", bytes.subarray(0, 600));
    const e = thrown(() => openCheckpoint(p));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toBe(`${p}: truncated PyTorch checkpoint: the file (600 bytes) ends before the end of its first entry; download or save it again`);
  });

  it("refuses a zip64 extra field that runs past its entry's extra data", () => {
    const zip64 = Buffer.alloc(4);
    zip64.writeUInt16LE(1, 0);
    zip64.writeUInt16LE(8, 2); // claims 8 bytes of 64-bit size; the entry's extra data ends here
    const { bytes } = buildZip([
      { name: "a/data.pkl", data: pkl },
      { name: "a/data/0", data: f32Bytes([1, 2, 3, 4]), size: 0xffffffff, centralExtra: zip64 },
    ]);
    const p = write("zip64_short.pth", bytes);
    const e = thrown(() => openCheckpoint(p));
    expect(e).toBeInstanceOf(ZipError);
    expect(e.message).toBe(`${p}: entry "a/data/0": an extra field of 8 bytes runs past the entry's 4-byte extra data`);
  });

  it("turns every corruption of every header byte into a reader error, never a RangeError or TypeError", () => {
    const { bytes, localOffsets, directoryOffset } = buildZip([
      { name: "a/data.pkl", data: pkl },
      { name: "a/data/0", data: f32Bytes([1, 2, 3, 4]) },
    ]);
    // Header bytes: both local headers (30 + name) and everything from the central directory on.
    const positions: number[] = [];
    for (const off of localOffsets) for (let i = 0; i < 30 + bytes.readUInt16LE(off + 26); i++) positions.push(off + i);
    for (let i = directoryOffset; i < bytes.length; i++) positions.push(i);
    const p = join(dir, "mutant.pth");
    let refused = 0;
    for (const at of positions) {
      for (const value of [0x00, 0xff, 0x7f, bytes[at]! ^ 0x80]) {
        const m = Buffer.from(bytes);
        m[at] = value;
        writeFileSync(p, m);
        try {
          const ck = openCheckpoint(p);
          for (const name of ck.names()) ck.readRaw(name);
          ck.close();
        } catch (e) {
          const ok = e instanceof CheckpointError || e instanceof ZipError || e instanceof PickleError;
          expect(ok, `byte ${at} = ${value}: ${String(e)}`).toBe(true);
          expect((e as Error).message, `byte ${at} = ${value}`).toContain(p);
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(positions.length);
    expect(readFileSync(p).length).toBe(bytes.length);
  });
});

describe("a view that repeats its storage's elements", () => {
  it("refuses zeros(1).expand(2**29) before allocating its 2 GiB, through the library's readRaw", () => {
    const tensors: CraftTensor[] = [{ name: "w", storage: "0", numel: 1, shape: [2 ** 29], stride: [0] }];
    const p = write("expand.pth", buildZip(checkpoint(tensors, [{ data: f32Bytes([0]) }])).bytes);
    const ck = openCheckpoint(p);
    expect(ck.info("w").shape).toEqual([2 ** 29]);
    const before = process.memoryUsage().arrayBuffers;
    const e = thrown(() => ck.readRaw("w"));
    expect(e).toBeInstanceOf(PickleError);
    expect(e.message).toBe(
      `${p}: tensor "w": view (size [536870912], stride [0]) repeats the elements of its 1-element storage to 536870912; save it with .contiguous() (or .clone()) first`,
    );
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
    ck.close();
  });

  it("still reads a broadcast view that fits in its storage, repeating elements as torch does", () => {
    // A 2x2 view with stride (0, 1) of a 4-element storage: rows repeat its first two elements.
    const tensors: CraftTensor[] = [{ name: "w", storage: "0", numel: 4, shape: [2, 2], stride: [0, 1] }];
    const p = write("broadcast.pth", buildZip(checkpoint(tensors, [{ data: f32Bytes([1, 2, 3, 4]) }])).bytes);
    const ck = openCheckpoint(p);
    expect([...ck.readF32("w")]).toEqual([1, 2, 1, 2]);
    ck.close();
  });
});
