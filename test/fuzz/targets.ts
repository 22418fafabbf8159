// The parsers under fuzz: for each, its seed inputs (small valid files built
// with the repo's own writers, plus a few fixtures), its format-aware
// mutations, how one input is parsed, and the error types it may throw.
// Anything else escaping a parse is a failure.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync, gzipSync } from "node:zlib";
import { DicomError } from "../../src/dicom/errors.js";
import { readSeriesFrom } from "../../src/dicom/series.js";
import type { DicomSource } from "../../src/dicom/sources.js";
import { checkFinite, decodeNifti, niftiFromArray, NiftiError, writeNifti } from "../../src/io/nifti.js";
import { encodeNpy, NpyError, readNpyF32 } from "../../src/io/npy.js";
import { ClipTokenizer, TokenizerError } from "../../src/segvol/tokenizer.js";
import { CheckpointError, openCheckpoint } from "../../src/weights/checkpoint.js";
import { shapeNumel, ST_DTYPE_BYTES } from "../../src/weights/dtype.js";
import { SafetensorsError, SafetensorsFile, writeSafetensors } from "../../src/weights/safetensors.js";
import { ZipError } from "../../src/weights/torch_zip.js";
import { PickleError } from "../../src/weights/unpickle.js";
import { DICOM_MUTATORS, dicomSeeds, type DicomSeed } from "./dicom.js";
import { mutateJson } from "./json.js";
import { concat, interestingInts, putInt, type Mutator, type Rng } from "./mutate.js";
import { ZIP_MUTATORS } from "./zip.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const fixture = (...p: string[]): Uint8Array => new Uint8Array(readFileSync(join(REPO, "test", "fixtures", ...p)));

/** Tensors larger than this are not read (their size is declared, not stored: see issue 18.20). */
export const READ_CAP_BYTES = 64 * 1024 * 1024;

export interface Seed {
  label: string;
  bytes: Uint8Array;
  /** Which file of the format this is, when it has several (tokenizer.json, vocab.json, merges.txt). */
  kind?: string;
}

export interface RunContext {
  /** A scratch file for parsers read from disk; the name their errors must mention. */
  path: string;
  /** Records that a tensor was not read: its declared size is over READ_CAP_BYTES. */
  skippedLarge(): void;
}

export interface Target {
  name: string;
  /** The error types a parse may throw; anything else is a failure. */
  errors: readonly (abstract new (...args: never[]) => Error)[];
  /** Builds the seed inputs, using `tmp` for the writers that write files. */
  seeds(tmp: string): Seed[];
  mutators(seed: Seed): readonly Mutator[];
  /** File name extension for the saved input and the scratch file. */
  ext(seed: Seed): string;
  run(input: Uint8Array, seed: Seed, ctx: RunContext): void;
}

const text = new TextDecoder();
const utf8 = new TextEncoder();

// ---------------------------------------------------------------- NIfTI

type Field = [offset: number, kind: "i16" | "i32" | "i64" | "f32" | "f64"];
const NIFTI_FIELDS: Record<1 | 2, Field[]> = {
  1: [
    [0, "i32"], ...[0, 1, 2, 3, 4, 5, 6, 7].map((i): Field => [40 + 2 * i, "i16"]), [70, "i16"], [72, "i16"],
    ...[0, 1, 2, 3].map((i): Field => [76 + 4 * i, "f32"]), [108, "f32"], [112, "f32"], [116, "f32"], [252, "i16"], [254, "i16"],
    [256, "f32"], [260, "f32"], [264, "f32"], [268, "f32"], ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((i): Field => [280 + 4 * i, "f32"]),
  ],
  2: [
    [0, "i32"], [12, "i16"], [14, "i16"], ...[0, 1, 2, 3, 4, 5, 6, 7].map((i): Field => [16 + 8 * i, "i64"]),
    ...[0, 1, 2, 3].map((i): Field => [104 + 8 * i, "f64"]), [168, "i64"], [176, "f64"], [184, "f64"], [344, "i32"], [348, "i32"],
    [352, "f64"], [360, "f64"], [368, "f64"], ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((i): Field => [400 + 8 * i, "f64"]),
  ],
};
const NIFTI_INTS = [0, 1, -1, 2, 3, 4, 5, 7, 8, 16, 64, 256, 512, 32767, -32768, 65535, 2 ** 31 - 1, -(2 ** 31), 348, 351, 352, 353, 540, 544, 545, 2 ** 53, 2 ** 62];
const NIFTI_FLOATS = [0, -0, 1, -1, 0.5, NaN, Infinity, -Infinity, 1e38, 3.4e38, 1e-45, 351, 352, 352.5, 353, 354, 2 ** 31, 2 ** 53, 1e300];

function setNiftiField(b: Uint8Array, rng: Rng): string | null {
  if (b.byteLength < 348) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const le = v.getInt32(0, true) === 348 || v.getInt32(0, true) === 540;
  const size = v.getInt32(0, le);
  const version = size === 540 ? 2 : 1;
  if (b.byteLength < (version === 1 ? 348 : 540)) return null;
  const [off, kind] = rng.pick(NIFTI_FIELDS[version]);
  const value = kind[0] === "f" ? rng.pick(NIFTI_FLOATS) : rng.pick(NIFTI_INTS);
  if (kind === "f32") v.setFloat32(off, value, le);
  else if (kind === "f64") v.setFloat64(off, value, le);
  else if (kind === "i64") v.setBigInt64(off, BigInt(Math.trunc(Number.isFinite(value) ? value : 0)), le);
  else putInt(b, off, kind === "i16" ? 2 : 4, BigInt(Math.trunc(value)) & (kind === "i16" ? 0xffffn : 0xffffffffn), le);
  return `NIfTI-${version} header field at ${off} (${kind}) = ${value}`;
}

const isGzip = (b: Uint8Array): boolean => b[0] === 0x1f && b[1] === 0x8b;

/** A header field set to an interesting value; for .nii.gz inside the stream, then gzipped again. */
const niftiField: Mutator = (b, rng) => {
  let raw: Uint8Array;
  try {
    raw = isGzip(b) ? new Uint8Array(gunzipSync(b, { maxOutputLength: 1 << 22 })) : b.slice();
  } catch {
    return null;
  }
  const what = setNiftiField(raw, rng);
  if (!what) return null;
  return isGzip(b) ? { bytes: new Uint8Array(gzipSync(raw, { level: 1 })), what: `${what}, gzipped` } : { bytes: raw, what };
};

/** Damage to the gzip wrapper: flags, trailer, extra members, a cut stream. */
const gzipWrapper: Mutator = (b, rng) => {
  const op = rng.below(5);
  if (op === 0 || !isGzip(b)) return { bytes: new Uint8Array(gzipSync(b, { level: 1 })), what: "gzip the input" };
  const out = b.slice();
  if (op === 1 && b.byteLength >= 4) {
    out[3] = rng.below(256);
    return { bytes: out, what: `gzip FLG = 0x${out[3]!.toString(16)}` };
  }
  if (op === 2 && b.byteLength >= 18) {
    const at = b.byteLength - rng.pick([4, 8]);
    putInt(out, at, 4, rng.pick(interestingInts(4, b.byteLength)));
    return { bytes: out, what: `gzip trailer ${at === b.byteLength - 4 ? "ISIZE" : "CRC"} changed` };
  }
  if (op === 3) {
    const extra = rng.chance(0.5) ? gzipSync(new Uint8Array(rng.pick([0, 1, 1000]))) : b;
    return { bytes: concat(b, new Uint8Array(extra)), what: "append a second gzip member" };
  }
  const at = rng.range(10, Math.max(10, b.byteLength - 1));
  return { bytes: b.slice(0, at), what: `cut the gzip stream at ${at}` };
};

const nifti: Target = {
  name: "nifti",
  errors: [NiftiError],
  seeds(tmp) {
    const seeds: Seed[] = [];
    const data = Float32Array.from({ length: 4 * 3 * 2 }, (_, i) => (i % 7) - 3);
    for (const [datatype, version] of [["uint8", 1], ["int16", 1], ["float32", 1], ["float32", 2], ["int16", 2]] as const) {
      const like = niftiFromArray([4, 3, 2], data, { version, spacing: [1.5, 2, 3] });
      for (const ext of [".nii", ".nii.gz"]) {
        const path = join(tmp, `seed_${datatype}_v${version}${ext}`);
        writeNifti(path, like, datatype === "uint8" ? data.map(Math.abs) : data, datatype);
        seeds.push({ label: `writeNifti ${datatype} NIfTI-${version}${ext}`, bytes: new Uint8Array(readFileSync(path)) });
      }
    }
    for (const f of ["bigendian_int16.nii", "scaled_int16.nii.gz", "bigendian_nifti2_float64.nii.gz", "nifti2_int16_qform.nii.gz", "single_volume_4d.nii.gz", "dt_float64.nii"]) {
      seeds.push({ label: `fixture ${f}`, bytes: fixture("io", "nifti", f) });
    }
    return seeds;
  },
  mutators: () => [niftiField, niftiField, niftiField, gzipWrapper],
  ext: (seed) => (isGzip(seed.bytes) ? "nii.gz" : "nii"),
  run(input, _seed, ctx) {
    checkFinite(decodeNifti(input, ctx.path));
  },
};

// ---------------------------------------------------------------- npy

const NPY_SHAPES = ["()", "(0,)", "(1,)", "(5,)", "(2147483648,)", "(9007199254740993,)", "(-1,)", "(1e3,)", "(3, 4, 5, 6, 7, 8, 9, 10)", "(,)",
  "(1L, 2L)", "(99999999999999999999,)", "(0, 9999999999)", "(2, 2, 2", `(${"1, ".repeat(2000)})`, "(0x10,)", "( 3 , )"];
const NPY_DESCRS = ["<f4", "<f2", ">f4", "|b1", "<c8", "O", "|u1", "<i8", "<U3", "|V4", "=f4", "<f16", "", "'", "<f8", ">i1", "<u4"];

/** The header dict with its shape, dtype or order replaced, or its length field / version changed. */
const npyHeader: Mutator = (b, rng) => {
  if (b.byteLength < 12 || b[0] !== 0x93) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const wide = b[6] === 2 || b[6] === 3;
  const start = wide ? 12 : 10;
  const len = wide ? v.getUint32(8, true) : v.getUint16(8, true);
  if (start + len > b.byteLength) return null;
  const op = rng.below(5);
  if (op === 3) {
    const out = b.slice();
    out[6] = rng.pick([0, 1, 2, 3, 4, 255]);
    return { bytes: out, what: `npy version byte = ${out[6]}` };
  }
  if (op === 4) {
    const out = b.slice();
    const value = rng.pick(interestingInts(wide ? 4 : 2, b.byteLength));
    putInt(out, 8, wide ? 4 : 2, value);
    return { bytes: out, what: `npy header length = ${value}` };
  }
  let dict = text.decode(b.subarray(start, start + len));
  let what: string;
  if (op === 0) {
    const shape = rng.pick(NPY_SHAPES);
    dict = dict.replace(/\([^)]*\)/, shape);
    what = `npy shape = ${shape.slice(0, 40)}`;
  } else if (op === 1) {
    const descr = rng.pick(NPY_DESCRS);
    dict = dict.replace(/'descr': '[^']*'/, `'descr': '${descr}'`);
    what = `npy descr = '${descr}'`;
  } else {
    const order = rng.pick(["True", "False", "1", "None"]);
    dict = dict.replace(/(True|False)/, order);
    what = `npy fortran_order = ${order}`;
  }
  // Rebuilt with a right length field, and as version 2 if it no longer fits 16 bits.
  const body = utf8.encode(dict);
  const long = body.byteLength > 0xffff;
  const head = new Uint8Array(long ? 12 : 10);
  head.set(b.subarray(0, 6));
  head[6] = long ? 2 : 1;
  putInt(head, 8, long ? 4 : 2, BigInt(body.byteLength));
  return { bytes: concat(head, body, b.subarray(start + len)), what };
};

/** Cut at the lengths the parser must check one by one (issue 18.15: a 10-byte file). */
const npyShort: Mutator = (b, rng) => {
  const at = rng.pick([0, 6, 8, 9, 10, 11, 12, 13]);
  return at < b.byteLength ? { bytes: b.slice(0, at), what: `truncate the npy to ${at} bytes` } : null;
};

const npy: Target = {
  name: "npy",
  errors: [NpyError],
  seeds() {
    const built: [string, Parameters<typeof encodeNpy>[0], number[]][] = [
      ["f32 2x3x4", Float32Array.from({ length: 24 }, (_, i) => i / 3), [2, 3, 4]],
      ["i16 5", Int16Array.from([1, -2, 3, -4, 5]), [5]],
      ["u8 scalar", Uint8Array.from([7]), []],
      ["f64 empty", new Float64Array(0), [0, 3]],
    ];
    const seeds: Seed[] = built.map(([label, data, shape]) => ({ label: `encodeNpy ${label}`, bytes: concat(...encodeNpy(data, shape)) }));
    for (const f of ["f32_v2.npy", "f32_v3.npy", "i64_3x2.npy", "bool_6.npy", "reject_fortran.npy"]) {
      seeds.push({ label: `fixture ${f}`, bytes: fixture("io", "npy", f) });
    }
    return seeds;
  },
  mutators: () => [npyHeader, npyHeader, npyHeader, npyShort],
  ext: () => "npy",
  run(input, _seed, ctx) {
    writeFileSync(ctx.path, input);
    readNpyF32(ctx.path);
  },
};

// ---------------------------------------------------------------- safetensors

interface TensorSource {
  names(): string[];
  info(name: string): { dtype: keyof typeof ST_DTYPE_BYTES; shape: number[] };
  readF32(name: string): Float32Array;
}

/** Reads every tensor of a safetensors file or checkpoint (as f32) that is not over the read cap. */
function readAll(src: TensorSource, ctx: RunContext): void {
  for (const name of src.names()) {
    const { dtype, shape } = src.info(name);
    if (shapeNumel(shape) * ST_DTYPE_BYTES[dtype] > READ_CAP_BYTES) ctx.skippedLarge();
    else src.readF32(name);
  }
}

/** The JSON header changed structurally (then its length field fixed, or not), or the length field alone. */
const safetensorsHeader: Mutator = (b, rng) => {
  if (b.byteLength < 8) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const hlen = Number(v.getBigUint64(0, true));
  if (rng.chance(0.25) || 8 + hlen > b.byteLength) {
    const out = b.slice();
    const value = rng.pick([...interestingInts(8, b.byteLength), 100n * 1024n * 1024n, 100n * 1024n * 1024n + 1n]);
    putInt(out, 0, 8, value);
    return { bytes: out, what: `safetensors header length = ${value}` };
  }
  const changed = mutateJson(text.decode(b.subarray(8, 8 + hlen)), rng);
  if (!changed) return null;
  const body = utf8.encode(changed.text);
  const keepLength = rng.chance(0.1);
  const head = new Uint8Array(8);
  putInt(head, 0, 8, BigInt(keepLength ? hlen : body.byteLength));
  return { bytes: concat(head, body, b.subarray(8 + hlen)), what: `header: ${changed.what}${keepLength ? " (old length field kept)" : ""}` };
};

function safetensorsSeeds(tmp: string): Seed[] {
  const path = join(tmp, "seed.safetensors");
  const write = (label: string, tensors: Parameters<typeof writeSafetensors>[1], meta?: Record<string, string>): Seed => {
    writeSafetensors(path, tensors, meta);
    return { label, bytes: new Uint8Array(readFileSync(path)) };
  };
  return [
    write("three tensors with metadata", [
      { name: "a.weight", dtype: "F32", shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      { name: "b.bias", dtype: "F16", shape: [4], data: Float32Array.from([0.5, -1, 2, 65504]) },
      { name: "c.idx", dtype: "I64", shape: [2], data: BigInt64Array.from([1n, -2n]) },
    ], { format: "pt" }),
    write("bf16, u8, bool, empty", [
      { name: "x", dtype: "BF16", shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
      { name: "y", dtype: "U8", shape: [3], data: Uint8Array.from([1, 2, 3]) },
      { name: "z", dtype: "BOOL", shape: [2], data: Uint8Array.from([0, 1]) },
      { name: "e", dtype: "F32", shape: [0, 5], data: new Float32Array(0) },
    ]),
    write("one scalar", [{ name: "s", dtype: "F64", shape: [], data: Float64Array.from([Math.PI]) }]),
  ];
}

const safetensors: Target = {
  name: "safetensors",
  errors: [SafetensorsError],
  seeds: safetensorsSeeds,
  mutators: () => [safetensorsHeader, safetensorsHeader, safetensorsHeader],
  ext: () => "safetensors",
  run(input, _seed, ctx) {
    writeFileSync(ctx.path, input);
    const f = SafetensorsFile.open(ctx.path);
    try {
      readAll({ names: () => f.keys(), info: (n) => f.info(n), readF32: (n) => f.readF32(n) }, ctx);
    } finally {
      f.close();
    }
  },
};

// ---------------------------------------------------------------- checkpoints

const checkpoint: Target = {
  name: "checkpoint",
  errors: [CheckpointError, ZipError, PickleError, SafetensorsError],
  seeds() {
    const seeds: Seed[] = ["dtypes.pth", "dtypes_deflated.pth", "malicious_eval.pth", "legacy.pth"].map((f) => ({
      label: `fixture ${f}`,
      bytes: fixture("weights", f),
    }));
    // Truncated downloads: the directory lost, the cut inside a storage or right after data.pkl.
    const full = seeds[0]!.bytes;
    for (const at of [Math.floor(full.byteLength * 0.7), 1600, 1423 + 64]) {
      seeds.push({ label: `dtypes.pth truncated to ${at} bytes`, bytes: full.slice(0, at) });
    }
    return seeds;
  },
  mutators: () => ZIP_MUTATORS,
  ext: () => "pth",
  run(input, _seed, ctx) {
    writeFileSync(ctx.path, input);
    const ck = openCheckpoint(ctx.path);
    try {
      readAll(ck, ctx);
    } finally {
      ck.close();
    }
  },
};

// ---------------------------------------------------------------- tokenizer

const PROMPTS = ["A computerized tomography of a liver.", "left kidney", "ΣΑΣ naïve   <|endoftext|>x <|startoftext|> 123 日本", ""];

const jsonText: Mutator = (b, rng) => {
  const changed = mutateJson(text.decode(b), rng);
  return changed && { bytes: utf8.encode(changed.text), what: changed.what };
};

const MERGE_LINES = ["", " ", "a", "a b c", "a  b", "#version: 0.2", "Ġ Ġ", "\t", "a b\r", "<|endoftext|> a", `${"x".repeat(1000)} y`, "l i", "li ver</w>", "\uFEFFl i"];

/** merges.txt lines deleted, repeated, swapped or replaced. */
const mergeLines: Mutator = (b, rng) => {
  const lines = text.decode(b).split("\n");
  const i = rng.below(lines.length);
  const op = rng.below(4);
  let what: string;
  if (op === 0) {
    lines.splice(i, 1);
    what = `delete merges line ${i}`;
  } else if (op === 1) {
    lines.splice(rng.below(lines.length + 1), 0, lines[i]!);
    what = `repeat merges line ${i}`;
  } else if (op === 2) {
    const j = rng.below(lines.length);
    [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    what = `swap merges lines ${i} and ${j}`;
  } else {
    lines[i] = rng.pick(MERGE_LINES);
    what = `merges line ${i} = ${JSON.stringify(lines[i]!.slice(0, 30))}`;
  }
  return { bytes: utf8.encode(lines.join(rng.chance(0.1) ? "\r\n" : "\n")), what };
};

function tokenizerTarget(): Target {
  // The demo model's tokenizer: 127 tokens, 39 merges (the CLIP one is 2 MB, too big to mutate 20,000 times).
  const vocabText = readFileSync(join(REPO, "weights", "demo", "vocab.json"), "utf8");
  const mergesText = readFileSync(join(REPO, "weights", "demo", "merges.txt"), "utf8");
  const merges = mergesText.split("\n").filter((l) => l.length > 0 && !l.startsWith("#"));
  const vocab = JSON.parse(vocabText) as Record<string, number>;
  const fastJson = (m: unknown[]): string => JSON.stringify({ version: "1.0", model: { type: "BPE", vocab, merges: m } });
  return {
    name: "tokenizer",
    errors: [TokenizerError],
    seeds: () => [
      { label: "tokenizer.json (merges as strings)", kind: "tokenizer.json", bytes: utf8.encode(fastJson(merges)) },
      { label: "tokenizer.json (merges as pairs)", kind: "tokenizer.json", bytes: utf8.encode(fastJson(merges.map((m) => m.split(" ")))) },
      { label: "vocab.json", kind: "vocab.json", bytes: utf8.encode(vocabText) },
      { label: "merges.txt", kind: "merges.txt", bytes: utf8.encode(mergesText) },
    ],
    mutators: (seed) => (seed.kind === "merges.txt" ? [mergeLines, mergeLines] : [jsonText, jsonText, jsonText]),
    ext: (seed) => seed.kind!.replace(/^.*\./, ""),
    run(input, seed, ctx) {
      const t = text.decode(input);
      const tok =
        seed.kind === "tokenizer.json"
          ? ClipTokenizer.fromTokenizerJson(t, ctx.path)
          : seed.kind === "vocab.json"
            ? ClipTokenizer.fromVocabJson(t, mergesText, ctx.path)
            : ClipTokenizer.fromVocabJson(vocabText, t, ctx.path);
      for (const p of PROMPTS) tok.encode(p);
    },
  };
}

// ---------------------------------------------------------------- DICOM

/**
 * A DICOM file read as a series (readSeriesFrom, what readDicomSeries runs
 * on a folder's files): every header, the series checks, then the pixels.
 * The mutated file is read alone, or with the valid neighbours of its seed
 * series (named as files beside it; they are held in memory).
 */
const dicom: Target = {
  name: "dicom",
  errors: [DicomError],
  seeds: () => dicomSeeds(),
  mutators: () => DICOM_MUTATORS,
  ext: () => "dcm",
  run(input, seed, ctx) {
    const s = seed as DicomSeed;
    const dir = dirname(ctx.path);
    const source = (name: string, bytes: Uint8Array): DicomSource => ({ name, bytes: () => bytes });
    const beside = (n: { name: string; bytes: Uint8Array }) => source(join(dir, n.name), n.bytes);
    readSeriesFrom([...s.before.map(beside), source(ctx.path, input), ...s.after.map(beside)], dir);
  },
};

export const TARGETS: readonly Target[] = [nifti, npy, safetensors, checkpoint, tokenizerTarget(), dicom];

export function targetNamed(name: string): Target {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target "${name}" (${TARGETS.map((x) => x.name).join(", ")})`);
  return t;
}
