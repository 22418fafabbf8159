// What the DICOM fuzz campaign (test/fuzz, target "dicom") found, one test
// each: a deflate bomb, an allocation sized by a header alone, refusals that
// did not name the file, and messages that echoed megabytes of a value.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getHeapStatistics } from "node:v8";
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { DicomError } from "../../src/dicom/errors.js";
import { parseDicom } from "../../src/dicom/file.js";
import { readDicomSeries } from "../../src/dicom/series.js";
import { part10, TS, writeSeries, type SeriesSpec, type Vec3 } from "../helpers/dicom_series.js";

const root = mkdtempSync(join(tmpdir(), "segvol-dicom-untrusted-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function spec(dims: Vec3, extra: Partial<SeriesSpec> = {}): SeriesSpec {
  return {
    dims,
    hu: new Int16Array(dims[0] * dims[1] * dims[2]).map((_, x) => (x % 40) - 10),
    origin: [0, 0, 0],
    rowDir: [1, 0, 0],
    colDir: [0, 1, 0],
    pixelSpacing: [1, 1],
    sliceStep: [0, 0, 2],
    ...extra,
  };
}

function refusal(dir: string, opts: Parameters<typeof readDicomSeries>[1] = {}): DicomError {
  try {
    readDicomSeries(dir, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(DicomError);
    return e as DicomError;
  }
  throw new Error("readDicomSeries did not refuse the series");
}

/** The meta group's end: 132 + the group length element (12 bytes) + its value. */
const metaEnd = (b: Uint8Array) => 144 + new DataView(b.buffer, b.byteOffset).getUint32(140, true);

describe("DICOM inputs found by the fuzz campaign", () => {
  it("a deflate bomb is refused past maxFileBytes, not inflated whole (dcmjs inflates without a bound)", () => {
    const dir = join(root, `s${n++}`);
    const built = writeSeries(dir, spec([4, 3, 1], { transferSyntax: TS.deflated }));
    const file = join(dir, built.slices[0]!.name);
    const b = built.slices[0]!.bytes;
    // The dataset, then 16 MiB of zeros: byte-aligned blocks of 1 MiB each (about 1 KB deflated), then a final empty block.
    const body = inflateRawSync(b.subarray(metaEnd(b)));
    const zeros = deflateRawSync(new Uint8Array(1 << 20), { finishFlush: constants.Z_SYNC_FLUSH });
    const stream = Buffer.concat([deflateRawSync(body, { finishFlush: constants.Z_SYNC_FLUSH }), ...Array.from({ length: 16 }, () => zeros), deflateRawSync(new Uint8Array(0))]);
    const bomb = Buffer.concat([b.subarray(0, metaEnd(b)), stream]);
    expect(bomb.length).toBeLessThan(40_000);
    writeFileSync(file, bomb);
    const e = refusal(dir, { maxFileBytes: 4 << 20 });
    expect(e.message).toBe(`${file}: the deflated dataset inflates to more than ${4 << 20} bytes (maxFileBytes)`);
    expect(() => parseDicom(bomb, "bomb.dcm", { maxBytes: 1 << 20 })).toThrow(/^bomb\.dcm: the deflated dataset inflates to more than 1048576 bytes/);
  });

  it("a corrupt deflate stream and a meta group that hides the deflated syntax are refused, naming the file", () => {
    const b = part10({ SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", SOPInstanceUID: "2.25.9", Modality: "CT" }, TS.deflated);
    expect(() => parseDicom(b.subarray(0, b.length - 3), "cut.dcm")).toThrow(/^cut\.dcm: corrupt deflated dataset \(/);
    // The TransferSyntaxUID given VR UN: dcmjs still reads it as the deflated syntax.
    const un = b.slice();
    const at = Buffer.from(un).indexOf("1.2.840.10008.1.2.1.99") - 8;
    expect(String.fromCharCode(un[at + 4]!, un[at + 5]!)).toBe("UI");
    un[at + 4] = 0x55;
    un[at + 5] = 0x4e;
    expect(() => parseDicom(un, "un.dcm")).toThrow(/^un\.dcm: corrupt meta group: it names the deflated transfer syntax/);
  });

  it("a small file whose header claims 32768 × 16384 pixels is refused before the volume is allocated", () => {
    const dir = join(root, `s${n++}`);
    const built = writeSeries(dir, spec([4, 3, 1], { slope: 0.5 }));
    // Rows and Columns in place (US, little endian): the file stays 700-odd bytes.
    const b = Buffer.from(built.slices[0]!.bytes);
    const rows = b.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00]));
    b.writeUInt16LE(32768, rows + 8);
    b.writeUInt16LE(16384, rows + 18);
    writeFileSync(join(dir, built.slices[0]!.name), b);
    const before = getHeapStatistics().external_memory;
    const e = refusal(dir);
    // float32 (slope 0.5): 2 GiB would have been allocated, then refused as short pixel data.
    expect(getHeapStatistics().external_memory - before).toBeLessThan(64 << 20);
    expect(e.message).toMatch(new RegExp(`${built.slices[0]!.name}: corrupt pixel data: the file is ${b.length} bytes, Rows × Columns × BitsAllocated needs ${32768 * 16384 * 2} for its Pixel Data`));
  });

  it("Rows 0 is refused naming the file", () => {
    const dir = join(root, `s${n++}`);
    const built = writeSeries(dir, spec([4, 3, 1], { edit: (_k, ds) => (ds.Rows = 0) }));
    expect(refusal(dir).message).toBe(`${join(dir, built.slices[0]!.name)}: bad image size: Rows 0, Columns 4 (1 to 65535 each)`);
  });

  it("several series are listed with a file of each", () => {
    const dir = join(root, `s${n++}`);
    const a = writeSeries(dir, spec([4, 3, 3]));
    const b = writeSeries(join(dir, "b"), spec([4, 3, 1]));
    const message = refusal(dir).message;
    expect(message).toContain(`${a.seriesUid}  CT  3 file(s)`);
    expect(message).toMatch(new RegExp(`${b.seriesUid}  CT  1 file\\(s\\)  "phantom CT": ${join(dir, "b", b.slices[0]!.name)}\\n?`));
    expect(message).toMatch(/: \S+\.dcm and 2 more/);
  });

  it("a value of megabytes is not echoed whole", () => {
    const dir = join(root, `s${n++}`);
    const built = writeSeries(dir, spec([4, 3, 1], { edit: (_k, ds) => (ds.ImagePositionPatient = Array.from({ length: 600 }, () => 1)) }));
    const e = refusal(dir);
    expect(e.message.length).toBeLessThan(400);
    expect(e.message).toMatch(new RegExp(`^${join(dir, built.slices[0]!.name)}: not an image slice .*: ImagePositionPatient is \\[1,1,1.*…, not 3 numbers$`));
  });
});
