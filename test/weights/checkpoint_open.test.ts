// openCheckpoint's choices, one input each (issue 24, mutation testing): which
// reader a file's first bytes pick, where the state dict sits in a training
// checkpoint, which key prefixes are stripped and which keys set aside, and
// that both readers give their file back on close.
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CheckpointError, isIgnoredKey, openCheckpoint, type Checkpoint } from "../../src/weights/checkpoint.js";
import { SafetensorsError, writeSafetensors } from "../../src/weights/safetensors.js";
import { ZipError } from "../../src/weights/torch_zip.js";
import { buildZip, f32Bytes, P, tensorPickle } from "./craft.js";
import { tempDir, thrown } from "./util.js";

const dir = tempDir("ckpt-open");
let n = 0;
const openFds = (): number => readdirSync("/proc/self/fd").length;

function file(bytes: Uint8Array | string, ext = "bin"): string {
  const p = join(dir, `f${n++}.${ext}`);
  writeFileSync(p, bytes);
  return p;
}

/** openCheckpoint's error for `bytes`; checks its class and that no descriptor stays open. */
function refused(bytes: Uint8Array | string, cls: new (m: string) => Error = CheckpointError): { p: string; e: Error } {
  const p = file(bytes);
  const fds = openFds();
  const e = thrown(() => openCheckpoint(p));
  expect(e, e.message).toBeInstanceOf(cls);
  expect(openFds()).toBe(fds);
  return { p, e };
}

describe("format detection", () => {
  it("names its error class", () => {
    expect(refused("x").e.name).toBe("CheckpointError");
  });

  it("reads a 9-byte file with '{' after the length as safetensors", () => {
    const b = Buffer.alloc(9);
    b.writeBigUInt64LE(1n);
    b[8] = 0x7b;
    const { e } = refused(b, SafetensorsError);
    expect(e.message).toMatch(/header is not valid UTF-8 JSON/);
  });

  it("takes exactly the pickle protocols 2 to 5 for a legacy checkpoint, however short the file", () => {
    for (const v of [2, 3, 4, 5]) expect(refused(Buffer.from([0x80, v])).e.message, `protocol ${v}`).toMatch(/legacy PyTorch checkpoint \(saved by torch < 1\.6/);
    for (const head of [[0x80, 1], [0x80, 6], [0x80], [0x81, 2]]) expect(refused(Buffer.from(head)).e.message, String(head)).toMatch(/not a recognised checkpoint/);
  });

  it("recognises a legacy tar checkpoint by ustar at byte 257, in a file of 262 bytes or more", () => {
    const tar = Buffer.alloc(262, 0x20);
    tar.write("ustar", 257, "latin1");
    const { p, e } = refused(tar);
    expect(e.message).toBe(`${p}: legacy tar-format PyTorch checkpoint; re-save it with torch >= 1.6: torch.save(torch.load(f), "new.pth")`);
    expect(refused(tar.subarray(0, 261)).e.message).toMatch(/not a recognised checkpoint/);
    const other = Buffer.from(tar);
    other.write("ustaR", 257, "latin1");
    expect(refused(other).e.message).toMatch(/not a recognised checkpoint/);
  });

  it("shows the first eight bytes in hex when it recognises nothing", () => {
    const { p, e } = refused("just some text");
    expect(e.message).toBe(`${p}: not a recognised checkpoint (wrong magic: expected a PyTorch zip "PK\\x03\\x04" or a safetensors header, got 6a 75 73 74 20 73 6f 6d)`);
    expect(refused(Buffer.from([0x0a])).e.message).toMatch(/got 0a\)$/);
  });
});

describe("safetensors checkpoints", () => {
  const tensor = (name: string) => ({ name, dtype: "F32" as const, shape: [1], data: new Float32Array([1]) });
  const st = (...names: string[]): string => {
    const p = join(dir, `s${n++}.safetensors`);
    writeSafetensors(p, names.map(tensor));
    return p;
  };

  it("strips every prefix all keys share, and only whole ones", () => {
    const cases: [string[], string, string[]][] = [
      [["module.model.a", "module.model.b"], "module.model.", ["a", "b"]],
      [["model.a", "b"], "", ["model.a", "b"]],
      [["model.a", "model."], "", ["model.a", "model."]],
      [["modela"], "", ["modela"]],
      [[], "", []],
    ];
    for (const [keys, prefix, names] of cases) {
      const ck = openCheckpoint(st(...keys));
      expect([ck.strippedPrefix, ck.names(), ck.location], keys.join(",")).toEqual([prefix, names, []]);
      ck.close();
    }
  });

  it("sets position_ids buffers aside, by whole name only", () => {
    expect(["position_ids", "text.position_ids", "myposition_ids", "position_ids.w"].map(isIgnoredKey)).toEqual([true, true, false, false]);
    const ck = openCheckpoint(st("position_ids", "x.position_ids", "xposition_ids"));
    expect(ck.ignored).toEqual(["position_ids", "x.position_ids"]);
    expect(ck.names()).toEqual(["xposition_ids"]);
    ck.close();
  });

  it("refuses a name it does not hold, and reads after close()", () => {
    const p = st("a");
    const ck = openCheckpoint(p);
    const e = thrown(() => ck.info("b"));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toBe(`${p}: no tensor "b" in the checkpoint`);
    expect([...ck.readF32("a")]).toEqual([1]);
    ck.close();
    expect(thrown(() => ck.readRaw("a"))).toBeInstanceOf(SafetensorsError);
  });
});

describe("torch checkpoints: where the state dict is", () => {
  const tensor = (storage: string): Buffer => tensorPickle({ name: "", storage, numel: 4, shape: [4] });
  const dict = (...items: [Buffer, Buffer][]): Buffer => Buffer.concat([P.op(P.EMPTY_DICT, P.MARK), ...items.flat(), P.op(P.SETITEMS)]);
  const k = P.str;
  const torch = (root: Buffer, storages = ["0"]): string =>
    file(
      buildZip([{ name: "a/data.pkl", data: Buffer.concat([P.proto(2), root, P.op(P.STOP)]) }, ...storages.map((s) => ({ name: `a/data/${s}`, data: f32Bytes([1, 2, 3, 4]) }))]).bytes,
      "pth",
    );
  const open = (root: Buffer): Checkpoint => openCheckpoint(torch(root));

  it("finds it at the top, one level down and two levels down, under the usual keys", () => {
    const sd = dict([k("w"), tensor("0")]);
    const cases: [Buffer, string[]][] = [
      [sd, []],
      [dict([k("epoch"), P.int(3)], [k("model"), sd]), ["model"]],
      [dict([k("net"), sd]), ["net"]],
      [dict([k("model"), dict([k("state_dict"), sd])]), ["model", "state_dict"]],
      [dict([k("module"), dict([k("x"), P.int(1)], [k("model_state_dict"), sd])]), ["module", "model_state_dict"]],
    ];
    for (const [root, location] of cases) {
      const ck = open(root);
      expect([ck.location, ck.names()], location.join("/")).toEqual([location, ["w"]]);
      ck.close();
    }
  });

  it("allows None values beside tensors, and lists only the tensors", () => {
    const ck = open(dict([k("w"), tensor("0")], [k("unset"), P.op(P.NONE)]));
    expect(ck.names()).toEqual(["w"]);
    expect([...ck.readF32("w")]).toEqual([1, 2, 3, 4]);
    ck.close();
  });

  it("does not take a dict with a non-string key, a non-tensor value, or no tensor at all for a state dict", () => {
    const bad = [
      dict([P.int(1), tensor("0")]),
      dict([k("w"), tensor("0")], [k("n"), P.int(3)]),
      dict([k("w"), P.op(P.NONE)]),
      dict([k("w"), tensor("0")], [k("l"), P.op(0x5d)]),
    ];
    for (const root of bad) {
      const p = torch(root);
      expect(thrown(() => openCheckpoint(p)).message.startsWith(`${p}: no state dict found: the top-level dict has keys [`)).toBe(true);
    }
  });

  it("names the top-level keys (twelve at most) and the nested keys it tried", () => {
    const keys = (m: number): [Buffer, Buffer][] => Array.from({ length: m }, (_, i) => [k(`k${i}`), P.int(i)]);
    const twelve = Array.from({ length: 12 }, (_, i) => `"k${i}"`).join(", ");
    let p = torch(dict(...keys(12)));
    expect(thrown(() => openCheckpoint(p)).message).toBe(`${p}: no state dict found: the top-level dict has keys [${twelve}] and none of state_dict/model/model_state_dict/module/net holds a dict of tensors`);
    p = torch(dict(...keys(13)));
    expect(thrown(() => openCheckpoint(p)).message).toBe(`${p}: no state dict found: the top-level dict has keys [${twelve}, ...] and none of state_dict/model/model_state_dict/module/net holds a dict of tensors`);
    p = torch(dict([P.int(7), P.int(1)], [k("model"), dict([k("a"), P.int(1)])]));
    expect(thrown(() => openCheckpoint(p)).message).toMatch(/has keys \[number, "model"\] and none of/);
  });

  it("says what the pickle holds when it is no dict", () => {
    for (const [root, what] of [
      [Buffer.concat([P.op(P.EMPTY_TUPLE)]), "tuple"],
      [Buffer.concat([P.op(0x5d)]), "list(0)"],
      [P.op(P.NONE), "None"],
    ] as const) {
      const p = torch(root);
      const e = thrown(() => openCheckpoint(p));
      expect(e).toBeInstanceOf(CheckpointError);
      expect(e.message).toBe(`${p}: no state dict found: the pickle holds a ${what}, not a dict of tensors`);
    }
  });

  it("refuses a name it does not hold, and gives its file back on close()", () => {
    const p = torch(dict([k("w"), tensor("0")]));
    const fds = openFds();
    const ck = openCheckpoint(p);
    expect(thrown(() => ck.readRaw("v")).message).toBe(`${p}: no tensor "v" in the checkpoint`);
    ck.close();
    expect(openFds()).toBe(fds);
    expect(thrown(() => ck.readRaw("w"))).toBeInstanceOf(ZipError);
  });
});
