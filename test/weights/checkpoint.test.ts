import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/weights/checkpoint.js";
import { f16BitsToF32 } from "../../src/weights/dtype.js";
import { MAX_PICKLE_BYTES, TORCH_GLOBALS } from "../../src/weights/torch_pickle.js";
import { ZipArchive } from "../../src/weights/torch_zip.js";
import { PickleError, PyTuple, unpickle, type PickleErrorCode } from "../../src/weights/unpickle.js";
import { b64bytes, errorOf, fixture, readJson, sameBytes, tempDir } from "./util.js";

const dir = tempDir("ckpt");

interface Expected {
  order: string[];
  tensors: Record<string, { shape: number[]; f32: string; f16: string }>;
}
const expected = readJson<Expected>("tiny_expected.json");

/** JSON form of an unpickled value, as tools/fixtures/gen_ckpt_weights.py writes it. */
function plain(v: unknown): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") return Number.isSafeInteger(v) && !Object.is(v, -0) ? { int: String(v) } : { float: v };
  if (typeof v === "bigint") return { int: String(v) };
  if (v instanceof PyTuple) return { tuple: v.items.map(plain) };
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [plain(k), plain(x)]) };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString("base64") };
  throw new Error(`unexpected ${String(v)}`);
}

describe("restricted unpickler", () => {
  const { cases } = readJson<{ cases: { name: string; pickle: string; value: unknown }[] }>("pickles.json");
  for (const c of cases) {
    it(`decodes Python's pickle of ${c.name}`, () => {
      const v = unpickle(b64bytes(c.pickle), { globals: TORCH_GLOBALS, source: c.name });
      // Python floats are written with repr() ("inf", "1e-300"); compare as JS number strings.
      const pyFloat = (f: unknown): string => {
        if (typeof f === "number") return String(f);
        const s = String(f);
        return s === "inf" ? "Infinity" : s === "-inf" ? "-Infinity" : s === "nan" ? "NaN" : String(Number(s));
      };
      const norm = (x: unknown): unknown =>
        JSON.parse(JSON.stringify(x, (_k, y) => (y && typeof y === "object" && "float" in y ? { float: pyFloat(y.float) } : y)));
      expect(norm(plain(v))).toEqual(norm(c.value));
    });
  }

  it("keeps memoised objects shared (same object, not a copy)", () => {
    const c = cases.find((x) => x.name === "shared_p2")!;
    const v = unpickle(b64bytes(c.pickle), { globals: TORCH_GLOBALS, source: "shared" }) as unknown[];
    expect(v[0]).toBe(v[1]);
  });

  it("refuses truncated pickles and stack abuse", () => {
    const c = cases.find((x) => x.name === "nested_p2")!;
    const bytes = b64bytes(c.pickle);
    expect(errorOf(() => unpickle(bytes.subarray(0, bytes.length - 5), { globals: TORCH_GLOBALS, source: "cut" }))).toMatch(/cut: pickle byte \d+: /);
    expect(errorOf(() => unpickle(new Uint8Array([0x80, 0x02, 0x2e]), { globals: TORCH_GLOBALS, source: "empty" }))).toMatch(/stack underflow/);
    expect(errorOf(() => unpickle(new Uint8Array([0x80, 0x02, 0x68, 0x05, 0x2e]), { globals: TORCH_GLOBALS, source: "memo" }))).toMatch(/memo entry 5/);
  });
});

describe("unpickler fuzzing", () => {
  it("turns every corruption of a real data.pkl into a PickleError (no crash, no other exception type)", () => {
    const zip = ZipArchive.open(fixture("tiny_hf.bin"));
    const pkl = zip.read("tiny_hf/data.pkl", MAX_PICKLE_BYTES);
    zip.close();
    let s = 12345;
    const rand = (n: number): number => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s % n;
    };
    let failures = 0;
    for (let trial = 0; trial < 400; trial++) {
      const bad = pkl.slice();
      for (let k = 0; k <= trial % 4; k++) bad[rand(bad.length)] = rand(256);
      const cut = trial % 5 === 0 ? bad.subarray(0, rand(bad.length)) : bad;
      try {
        unpickle(cut, { globals: TORCH_GLOBALS, source: "fuzz", persistentLoad: () => ({}) });
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(PickleError);
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(100);
  });
});

describe("malicious checkpoints", () => {
  const marker = "/tmp/segvol_pickle_pwned";
  const cases: [string, RegExp, PickleErrorCode][] = [
    ["malicious_os_system.pth", /refusing to load global "os\.system"/, "refused-global"],
    ["malicious_eval.pth", /refusing to load global "builtins\.eval"/, "refused-global"],
    ["malicious_inst.pth", /refusing unsupported pickle opcode INST \(0x69\)/, "refused-opcode"],
  ];
  for (const [name, re, code] of cases) {
    it(`refuses ${name} by its ${code} check, runs nothing and leaves the file as it was`, () => {
      rmSync(marker, { force: true });
      const before = readFileSync(fixture(name));
      let err: unknown;
      try {
        openCheckpoint(fixture(name));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PickleError);
      expect((err as PickleError).code).toBe(code);
      const msg = (err as Error).message;
      expect(msg).toMatch(re);
      expect(msg).toContain(fixture(name));
      expect(msg).not.toContain("\n");
      expect(existsSync(marker)).toBe(false);
      expect(readFileSync(fixture(name)).equals(before)).toBe(true);
    });
  }
});

describe("PyTorch zip checkpoints", () => {
  it("reads the HF layout bit-identically (prefix, transposed and offset tensors, position_ids)", () => {
    const ck = openCheckpoint(fixture("tiny_hf.bin"));
    expect(ck.format).toBe("torch-zip");
    expect(ck.strippedPrefix).toBe("model.");
    expect(ck.location).toEqual([]);
    expect(ck.names()).toEqual(expected.order);
    expect(ck.ignored).toEqual(["model.text_encoder.clip_text_model.text_model.embeddings.position_ids"]);
    for (const name of expected.order) {
      const e = expected.tensors[name]!;
      expect(ck.info(name)).toEqual({ dtype: "F32", shape: e.shape });
      expect(sameBytes(ck.readRaw(name), b64bytes(e.f32)), name).toBe(true);
    }
    expect(ck.sourceKey("image_encoder.norm.weight")).toBe("model.image_encoder.norm.weight");
    expect(errorOf(() => ck.info("nope"))).toMatch(/tiny_hf\.bin: no tensor "nope"/);
    ck.close();
  });

  it("reads the SegVol_v1.pth layout (nested under model, module. prefix, f16)", () => {
    const ck = openCheckpoint(fixture("tiny_v1.pth"));
    expect(ck.location).toEqual(["model"]);
    expect(ck.strippedPrefix).toBe("module.");
    expect(ck.names()).toEqual(expected.order);
    for (const name of expected.order) {
      const e = expected.tensors[name]!;
      expect(ck.info(name).dtype).toBe("F16");
      const raw = ck.readRaw(name);
      expect(sameBytes(raw, b64bytes(e.f16)), name).toBe(true);
      expect([...ck.readF32(name)]).toEqual([...f16BitsToF32(new Uint16Array(raw.buffer))]);
    }
    ck.close();
  });

  it("reads every storage dtype, strided views, shared storages, 0-d and empty tensors", () => {
    const exp = readJson<Record<string, { dtype: string; shape: number[]; bytes: string; f32: string }>>("dtypes_expected.json");
    const ck = openCheckpoint(fixture("dtypes.pth"));
    expect(ck.strippedPrefix).toBe("");
    expect(ck.names()).toEqual(Object.keys(exp));
    for (const [name, e] of Object.entries(exp)) {
      expect(ck.info(name), name).toEqual({ dtype: e.dtype, shape: e.shape });
      expect(sameBytes(ck.readRaw(name), b64bytes(e.bytes)), name).toBe(true);
      const f = ck.readF32(name);
      const want = new Float32Array(b64bytes(e.f32).buffer);
      if (e.dtype === "I64") {
        // Large int64 values round to f32 exactly as torch's .float() does.
        expect([...f], name).toEqual([...want]);
      } else {
        expect(sameBytes(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), b64bytes(e.f32)), name).toBe(true);
      }
    }
    ck.close();
  });

  it("reads deflate-compressed archives identically", () => {
    const a = openCheckpoint(fixture("dtypes.pth"));
    const b = openCheckpoint(fixture("dtypes_deflated.pth"));
    expect(b.names()).toEqual(a.names());
    for (const n of a.names()) expect(sameBytes(b.readRaw(n), a.readRaw(n)), n).toBe(true);
    a.close();
    b.close();
  });

  it("detects corrupted bytes by CRC, naming the file and the entry", () => {
    // Flip the first byte of the last tensor's storage (found by its contents).
    const copy = Buffer.from(readFileSync(fixture("tiny_hf.bin")));
    const cd = copy.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    const ck0 = openCheckpoint(fixture("tiny_hf.bin"));
    const last = ck0.names()[ck0.names().length - 1]!;
    const at = copy.indexOf(Buffer.from(ck0.readRaw(last)));
    ck0.close();
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(cd);
    copy[at] = copy[at]! ^ 0xff;
    const p = join(dir, "flipped.bin");
    writeFileSync(p, copy);
    const ck = openCheckpoint(p);
    expect(errorOf(() => ck.readRaw(last))).toMatch(/flipped\.bin: entry "tiny_hf\/data\/\d+": CRC mismatch/);
    ck.close();
  });

  it("reads the prefixed safetensors layout the same way", () => {
    const ck = openCheckpoint(fixture("tiny_prefixed.safetensors"));
    expect(ck.format).toBe("safetensors");
    expect(ck.strippedPrefix).toBe("model.");
    expect(ck.names()).toEqual(expected.order);
    const name = expected.order[5]!;
    expect(sameBytes(ck.readRaw(name), b64bytes(expected.tensors[name]!.f32))).toBe(true);
    ck.close();
  });

  it("gives a clear re-save message for legacy (pre-1.6) checkpoints", () => {
    const msg = errorOf(() => openCheckpoint(fixture("legacy.pth")));
    expect(msg).toContain(fixture("legacy.pth"));
    expect(msg).toMatch(/legacy PyTorch checkpoint.*re-save it with torch >= 1\.6/);
    expect(msg).not.toContain("\n");
  });

  it("refuses truncated files, naming the file and the tensor the file ends in", () => {
    const msg = errorOf(() => openCheckpoint(fixture("truncated.bin")));
    expect(msg).toContain(fixture("truncated.bin"));
    // The generator cuts tiny_hf.bin at 60%; find which storage that falls in, independently of the reader.
    const full = readFileSync(fixture("tiny_hf.bin"));
    const cut = readFileSync(fixture("truncated.bin")).length;
    const lastHeader = full.subarray(0, cut).lastIndexOf(Buffer.from([0x50, 0x4b, 0x03, 0x04]));
    const entry = full.subarray(lastHeader + 30, lastHeader + 30 + full.readUInt16LE(lastHeader + 26)).toString();
    expect(entry).toMatch(/^tiny_hf\/data\/\d+$/);
    const ck = openCheckpoint(fixture("tiny_hf.bin"));
    const key = Number(entry.split("/").pop());
    // Storage keys are assigned in state-dict order by torch.save (one storage per tensor here).
    const tensor = ck.sourceKey(ck.names()[key]!);
    ck.close();
    expect(msg).toBe(
      `${fixture("truncated.bin")}: truncated PyTorch checkpoint: the file (${cut} bytes) ends inside entry "${entry}", the storage of tensor "${tensor}"; download or save it again`,
    );
  });

  it("explains a file cut inside its tensor index", () => {
    const p = join(dir, "cut_early.bin");
    writeFileSync(p, readFileSync(fixture("tiny_hf.bin")).subarray(0, 200));
    expect(errorOf(() => openCheckpoint(p))).toMatch(/cut_early\.bin: truncated PyTorch checkpoint: the file \(200 bytes\) ends before the end of its first entry/);
  });

  it("names the tensor when its storage is cut short", () => {
    // Keep the zip directory intact but shrink one storage entry's bytes:
    // rewrite a copy whose central directory claims less data for data/0.
    const src = readFileSync(fixture("dtypes.pth"));
    const p = join(dir, "short_storage.pth");
    // The f32 tensor "f32" lives in storage data/0 (30 floats = 120 bytes).
    const name = Buffer.from("dtypes/data/0"); // torch names the archive folder after the file
    let patched = 0;
    for (let i = src.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); i >= 0; i = src.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), i + 4)) {
      const nlen = src.readUInt16LE(i + 28);
      if (src.subarray(i + 46, i + 46 + nlen).equals(name)) {
        src.writeUInt32LE(100, i + 20);
        src.writeUInt32LE(100, i + 24);
        patched++;
      }
    }
    expect(patched).toBe(1);
    writeFileSync(p, src);
    const msg = errorOf(() => openCheckpoint(p));
    expect(msg).toMatch(/storage "0" holds 100 bytes, its 30 F32 elements need 120/);
    expect(msg).toContain(p);
  });

  it("does not mistake a safetensors header length of 0x180 for a pickle protocol byte", () => {
    const json = Buffer.from(JSON.stringify({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }));
    const header = Buffer.concat([json, Buffer.alloc(0x180 - json.length, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    expect(len[0]).toBe(0x80);
    const p = join(dir, "len384.safetensors");
    writeFileSync(p, Buffer.concat([len, header, Buffer.from(new Float32Array([1.5]).buffer)]));
    const ck = openCheckpoint(p);
    expect([...ck.readF32("w")]).toEqual([1.5]);
    ck.close();
  });

  it("refuses wrong magic and empty files", () => {
    const p = join(dir, "notes.txt");
    writeFileSync(p, "just some text, not a checkpoint");
    expect(errorOf(() => openCheckpoint(p))).toMatch(/notes\.txt: not a recognised checkpoint \(wrong magic/);
    const e = join(dir, "empty.bin");
    writeFileSync(e, "");
    expect(errorOf(() => openCheckpoint(e))).toMatch(/empty\.bin: not a recognised checkpoint.*an empty file/);
    expect(errorOf(() => openCheckpoint(join(dir, "missing.pth")))).toMatch(/missing\.pth: cannot open/);
  });
});
