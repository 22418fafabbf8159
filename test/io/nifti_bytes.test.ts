// parseNifti / encodeNifti (src/io/nifti_bytes.ts, the byte-level NIfTI of
// the browser build, gzip through DecompressionStream) against decodeNifti
// (nifti.ts, gzip through zlib) as the reference: for every input, the same
// voxels or a NiftiError. The inputs reach what the round trips of
// test/browser/core.test.ts do not: a volume that inflates in many chunks,
// a gzip comment longer than 64 KiB (which decodeNifti refused as a
// truncated header until its header prefixes started after the gzip
// member's own header), trailing bytes exactly at and one past the allowed slack,
// plain files whose first bytes half-match the gzip magic, an ArrayBuffer
// input, and encodeNifti's description.
import { crc32, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeNifti, NiftiError, niftiFromArray } from "../../src/io/nifti.js";
import { encodeNifti, parseNifti, readInflatedBounded } from "../../src/io/nifti_bytes.js";
import { niiOf } from "./nifti_build.js";

/** The error `p` rejects with (the test fails if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e as Error,
  );
}

/** Byte-for-byte equality of two voxel arrays (vitest's deep equality takes seconds on 10^5 elements). */
function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe("parseNifti agrees with decodeNifti", () => {
  it("reads a volume that inflates in many chunks, from a Uint8Array or an ArrayBuffer", async () => {
    const n = 32 * 64 * 64; // 512 KiB of float32: many chunks of inflated output
    const values = Float32Array.from({ length: n }, (_, x) => ((x * 7919) % 10007) / 7);
    const gz = await encodeNifti(niftiFromArray([64, 64, 32], values), values, "float32");
    const got = await parseNifti(gz, "big.nii.gz");
    expect(got.dims).toEqual([64, 64, 32]);
    expect(got.data).toBeInstanceOf(Float32Array);
    expect(sameBytes(got.data, decodeNifti(gz, "big.nii.gz").data)).toBe(true);
    expect(sameBytes(got.data, values)).toBe(true);
    const copy = gz.slice();
    expect(sameBytes((await parseNifti(copy.buffer)).data, values)).toBe(true);
    expect(sameBytes(copy, gz)).toBe(true); // the input is not modified
  });

  it("reads a .nii.gz behind a gzip comment longer than decodeNifti's last header prefix (64 KiB)", async () => {
    const nii = niiOf({}, Float32Array.from({ length: 4096 }, (_, x) => x));
    const plain = gzipSync(nii);
    const want = decodeNifti(plain).data;
    for (const comment of [1000, 70000]) {
      const gz = new Uint8Array(plain.length + comment + 1);
      gz.set(plain.subarray(0, 10));
      gz[3] = 0x10; // FCOMMENT: zero-terminated text before the deflate data
      gz.fill(0x61, 10, 10 + comment);
      gz.set(plain.subarray(10), 10 + comment + 1);
      expect((await parseNifti(gz, "comment.nii.gz")).data, `${comment}`).toEqual(want);
      expect(decodeNifti(gz, "comment.nii.gz").data, `${comment}`).toEqual(want);
    }
  });

  it("reads a .nii.gz whose gzip header has every optional field, 70 kB in all", async () => {
    const nii = niiOf({}, Float32Array.from({ length: 64 }, (_, x) => x * 2));
    const plain = gzipSync(nii);
    const head = Buffer.concat([
      Buffer.from([0x1f, 0x8b, 8, 4 | 8 | 16 | 2, 0, 0, 0, 0, 0, 3]), // FEXTRA, FNAME, FCOMMENT, FHCRC
      Buffer.from([0x40, 0x9c]), // extra field length 40000
      Buffer.alloc(40000), // zeros, which must not read as the name's end
      Buffer.alloc(30000, 0x6e), Buffer.from([0]), // name
      Buffer.from("a comment"), Buffer.from([0]),
    ]);
    const hcrc = Buffer.alloc(2);
    hcrc.writeUInt16LE(crc32(head) & 0xffff); // the low 16 bits of the header's CRC-32
    const gz = Buffer.concat([head, hcrc, plain.subarray(10)]);
    const want = decodeNifti(plain).data;
    expect((await parseNifti(gz, "fields.nii.gz")).data).toEqual(want);
    expect(decodeNifti(gz, "fields.nii.gz").data).toEqual(want);
  });

  it("allows trailing bytes up to the slack (1 MiB past the declared voxels) and refuses one more, as decodeNifti does", async () => {
    const small = niiOf({ dim: [3, 2, 2, 2, 1, 1, 1, 1] }, new Float32Array(8).fill(3)); // 352 + 32 bytes
    const withTail = (tail: number) => {
      const b = new Uint8Array(small.length + tail);
      b.set(small);
      return gzipSync(b, { level: 1 });
    };
    const fits = withTail(2 ** 20);
    expect((await parseNifti(fits, "fits.nii.gz")).data).toEqual(decodeNifti(fits, "fits.nii.gz").data);
    const over = withTail(2 ** 20 + 1);
    expect(() => decodeNifti(over, "over.nii.gz")).toThrow(NiftiError);
    const e = await rejection(parseNifti(over, "over.nii.gz"));
    expect(e).toBeInstanceOf(NiftiError);
    expect(e.message).toBe("readNifti: over.nii.gz: the gzip stream holds more than the bytes its header declares; refusing to inflate it");
  });

  it("reads a plain file whose first bytes half-match the gzip magic as a plain file, named <buffer> by default", async () => {
    for (const head of [[0x1f, 0x00], [0x00, 0x8b]]) {
      const b = new Uint8Array(400);
      b.set(head);
      let want = "";
      try {
        decodeNifti(b);
      } catch (e) {
        want = (e as Error).message;
      }
      expect(want).toMatch(/^readNifti: <buffer>/);
      const e = await rejection(parseNifti(b));
      expect(e, String(head)).toBeInstanceOf(NiftiError);
      expect(e.message, String(head)).toBe(want);
    }
  });
});

/** `bytes` as a stream of `size`-byte chunks (the first `first` bytes long), read on demand; `pulls` counts the chunks read. */
function chunked(bytes: Uint8Array, size: number, first = size): { stream: ReadableStream<Uint8Array>; pulls: () => number } {
  let at = 0, pulls = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (at >= bytes.length) return c.close();
        const end = Math.min(bytes.length, at + (at === 0 ? first : size));
        c.enqueue(bytes.slice(at, end));
        at = end;
        pulls++;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulls: () => pulls };
}

describe("readInflatedBounded (the inflated stream, in chunks of any size)", () => {
  const nii = niiOf({ dim: [3, 4, 3, 2, 1, 1, 1, 1] }, Float32Array.from({ length: 24 }, (_, x) => x)); // 352 + 96 bytes

  it("reads a file whose header arrives in pieces smaller than a header, or exactly one header long", async () => {
    for (const size of [1, 100, 347, 348, 349, 4096]) {
      const got = await readInflatedBounded(chunked(nii, size).stream, "a.nii.gz", {});
      expect(sameBytes(got, nii), `chunks of ${size}`).toBe(true);
    }
  });

  it("stops reading as soon as the stream passes the declared size plus the slack, checked from the header on", async () => {
    const bomb = new Uint8Array(nii.length + 4 * 2 ** 20);
    bomb.set(nii);
    const { stream, pulls } = chunked(bomb, 4096, 100);
    const e = await rejection(readInflatedBounded(stream, "bomb.nii.gz", {}));
    expect(e.message).toBe("readNifti: bomb.nii.gz: the gzip stream holds more than the bytes its header declares; refusing to inflate it");
    // 448 declared + 1 MiB slack: refused at the chunk that passes it, about 257 chunks of 4 KiB in, not
    // 1025 (the stream may have been asked for one more chunk ahead).
    const passing = 1 + Math.ceil((nii.length + 2 ** 20 + 1 - 100) / 4096);
    expect(pulls()).toBeGreaterThanOrEqual(passing);
    expect(pulls()).toBeLessThanOrEqual(passing + 1);
  });

  it("refuses a header over maxVoxels when the header has arrived, before the voxels", async () => {
    const big = niiOf({ dim: [3, 64, 64, 64, 1, 1, 1, 1] }, new Float32Array(64 ** 3)); // 1 MiB of voxels
    const { stream, pulls } = chunked(big, 200);
    const e = await rejection(readInflatedBounded(stream, "big.nii.gz", { maxVoxels: 10 }));
    expect(e).toBeInstanceOf(NiftiError);
    expect(e.message).toMatch(/^readNifti: big\.nii\.gz: /);
    expect(pulls()).toBeLessThanOrEqual(3); // the 352-byte header in two chunks (and one read ahead), of 5,000
  });
});

describe("encodeNifti", () => {
  it("writes the description it is given, gzipped or not", async () => {
    const values = Int16Array.from({ length: 24 }, (_, x) => x - 5);
    const like = niftiFromArray([4, 3, 2], new Float32Array(24));
    for (const gzip of [true, false]) {
      const bytes = await encodeNifti(like, values, "int16", { gzip, descrip: "segvol test mask" });
      const back = decodeNifti(bytes);
      expect(back.header.descrip, String(gzip)).toBe("segvol test mask");
      expect(Array.from(back.data)).toEqual(Array.from(values));
    }
  });
});
