// Opens any supported checkpoint — a torch.save zip (`.bin`/`.pth`) or a
// safetensors file — as one flat list of named tensors with canonical names:
// the state dict is found inside nested training checkpoints
// ({"model": sd, "epoch": ...}, {"state_dict": sd}), a common `model.` /
// `module.` key prefix (HF wrapper / DataParallel) is stripped, and the
// `position_ids` buffer of HF CLIP exports is set aside (it is not a weight).
import { closeSync, openSync, readSync } from "node:fs";
import { bytesToF32, type StDType } from "./dtype.js";
import { quoted } from "./quote.js";
import { SafetensorsFile } from "./safetensors.js";
import { TensorRef, TorchZipCheckpoint } from "./torch_pickle.js";
import { describeTruncation } from "./torch_truncated.js";
import { ZipArchive, ZipTruncatedError } from "./torch_zip.js";
import { describe, PyTuple } from "./unpickle.js";

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

export interface CheckpointTensorInfo {
  dtype: StDType;
  shape: number[];
}

export interface Checkpoint {
  readonly path: string;
  readonly format: "torch-zip" | "safetensors";
  /** The prefix stripped from every key ("" if none), e.g. "model." or "module.". */
  readonly strippedPrefix: string;
  /** Where the state dict sat in the file, e.g. `["model"]` (empty: top level). */
  readonly location: string[];
  /** Keys present but deliberately not weights (`...position_ids`), as stored. */
  readonly ignored: string[];
  /** Canonical names in file order. */
  names(): string[];
  has(name: string): boolean;
  info(name: string): CheckpointTensorInfo;
  /** The key as stored in the file. */
  sourceKey(name: string): string;
  /** The tensor's elements in C order, little-endian bytes of its own dtype. */
  readRaw(name: string): Uint8Array;
  /** The tensor as f32 (f16/bf16 widened exactly). */
  readF32(name: string): Float32Array;
  close(): void;
}

/** Prefixes stripped when every key carries them (repeatedly: "module.model." too). */
const STRIP_PREFIXES = ["module.", "model."];
/** Where training scripts nest the state dict, tried in this order. */
const NESTED_KEYS = ["state_dict", "model", "model_state_dict", "module", "net"];

export function isIgnoredKey(key: string): boolean {
  return key === "position_ids" || key.endsWith(".position_ids");
}

/** Opens a checkpoint, choosing the reader from the file's first bytes. */
export function openCheckpoint(path: string): Checkpoint {
  const head = readHead(path, 512);
  if (ZipArchive.hasZipMagic(head)) return openTorch(path);
  // safetensors before the pickle test: its 8-byte length may well start with 0x80.
  if (head.length >= 9 && head[8] === 0x7b /* "{" after the 8-byte length */) return openSafetensors(path);
  if (head[0] === 0x80 && head.length >= 2 && head[1]! >= 2 && head[1]! <= 5) {
    throw new CheckpointError(
      `${path}: legacy PyTorch checkpoint (saved by torch < 1.6 or with _use_new_zipfile_serialization=False), which can only be read by running Python's pickle; re-save it with torch >= 1.6: torch.save(torch.load(f), "new.pth")`,
    );
  }
  if (head.length >= 262 && new TextDecoder("latin1").decode(head.subarray(257, 262)) === "ustar") {
    throw new CheckpointError(`${path}: legacy tar-format PyTorch checkpoint; re-save it with torch >= 1.6: torch.save(torch.load(f), "new.pth")`);
  }
  throw new CheckpointError(
    `${path}: not a recognised checkpoint (wrong magic: expected a PyTorch zip "PK\\x03\\x04" or a safetensors header, got ${hex(head.subarray(0, 8))})`,
  );
}

function readHead(path: string, n: number): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new CheckpointError(`${path}: cannot open: ${(e as Error).message}`);
  }
  try {
    const buf = new Uint8Array(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ") || "an empty file";
}

/** Strips prefixes shared by every key; returns the canonical → stored mapping. */
function canonicalise(keys: string[]): { prefix: string; map: Map<string, string> } {
  let prefix = "";
  let cur = keys;
  for (;;) {
    const p = STRIP_PREFIXES.find((s) => cur.length > 0 && cur.every((k) => k.startsWith(s) && k.length > s.length));
    if (!p) break;
    prefix += p;
    cur = cur.map((k) => k.slice(p.length));
  }
  const map = new Map<string, string>();
  keys.forEach((k, i) => map.set(cur[i]!, k));
  return { prefix, map };
}

function splitIgnored(keys: string[]): { kept: string[]; ignored: string[] } {
  return { kept: keys.filter((k) => !isIgnoredKey(k)), ignored: keys.filter(isIgnoredKey) };
}

function openSafetensors(path: string): Checkpoint {
  const f = SafetensorsFile.open(path);
  const { kept, ignored } = splitIgnored(f.keys());
  const { prefix, map } = canonicalise(kept);
  const src = (name: string): string => {
    const k = map.get(name);
    if (k === undefined) throw new CheckpointError(`${path}: no tensor ${quoted(name)} in the checkpoint`);
    return k;
  };
  return {
    path,
    format: "safetensors",
    strippedPrefix: prefix,
    location: [],
    ignored,
    names: () => [...map.keys()],
    has: (name) => map.has(name),
    info: (name) => f.info(src(name)),
    sourceKey: src,
    readRaw: (name) => f.readRaw(src(name)),
    readF32: (name) => f.readF32(src(name)),
    close: () => f.close(),
  };
}

/** A dict whose values are all tensors (None allowed: e.g. unset buffers). */
function isStateDict(v: unknown): v is Map<unknown, unknown> {
  if (!(v instanceof Map)) return false; // an empty dict fails below: no tensors
  let tensors = 0;
  for (const [k, x] of v) {
    if (typeof k !== "string") return false;
    if (x instanceof TensorRef) tensors++;
    else if (x !== null) return false;
  }
  return tensors > 0;
}

function findStateDict(root: unknown, path: string): { sd: Map<string, unknown>; location: string[] } {
  if (isStateDict(root)) return { sd: root as Map<string, unknown>, location: [] };
  if (root instanceof Map) {
    for (const k of NESTED_KEYS) {
      const v = root.get(k);
      if (isStateDict(v)) return { sd: v as Map<string, unknown>, location: [k] };
      if (v instanceof Map) {
        for (const k2 of NESTED_KEYS) {
          const w = v.get(k2);
          if (isStateDict(w)) return { sd: w as Map<string, unknown>, location: [k, k2] };
        }
      }
    }
    const keys = [...root.keys()].slice(0, 13).map((k) => (typeof k === "string" ? quoted(k) : describe(k)));
    throw new CheckpointError(
      `${path}: no state dict found: the top-level dict has keys [${keys.slice(0, 12).join(", ")}${root.size > 12 ? ", ..." : ""}] and none of ${NESTED_KEYS.join("/")} holds a dict of tensors`,
    );
  }
  throw new CheckpointError(`${path}: no state dict found: the pickle holds a ${root instanceof PyTuple ? "tuple" : describe(root)}, not a dict of tensors`);
}

function openTorch(path: string): Checkpoint {
  let ck: TorchZipCheckpoint;
  try {
    ck = TorchZipCheckpoint.open(path);
  } catch (e) {
    // A cut-off download: say which tensor the file ends in.
    if (e instanceof ZipTruncatedError) {
      const where = describeTruncation(path);
      if (where) throw new CheckpointError(`${path}: truncated PyTorch checkpoint: ${where}; download or save it again`);
    }
    throw e;
  }
  try {
    const { sd, location } = findStateDict(ck.root, path);
    const tensors = new Map<string, TensorRef>();
    for (const [k, v] of sd) if (v instanceof TensorRef) tensors.set(k, v);
    const { kept, ignored } = splitIgnored([...tensors.keys()]);
    const { prefix, map } = canonicalise(kept);
    const ref = (name: string): { key: string; t: TensorRef } => {
      const key = map.get(name);
      if (key === undefined) throw new CheckpointError(`${path}: no tensor ${quoted(name)} in the checkpoint`);
      return { key, t: tensors.get(key)! };
    };
    return {
      path,
      format: "torch-zip",
      strippedPrefix: prefix,
      location,
      ignored,
      names: () => [...map.keys()],
      has: (name) => map.has(name),
      info: (name) => {
        const { t } = ref(name);
        return { dtype: t.dtype, shape: [...t.shape] };
      },
      sourceKey: (name) => ref(name).key,
      readRaw: (name) => {
        const { key, t } = ref(name);
        return ck.readContiguous(t, key);
      },
      readF32: (name) => {
        const { key, t } = ref(name);
        return bytesToF32(ck.readContiguous(t, key), t.dtype);
      },
      close: () => ck.close(),
    };
  } catch (e) {
    ck.close();
    throw e;
  }
}
