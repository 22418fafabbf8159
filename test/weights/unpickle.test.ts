// The restricted unpickler's safety properties (issue 24): every global off
// the whitelist is refused by the whitelist check itself, whatever module it
// claims; every global on it resolves; nothing a refused pickle names is
// called; truncations are reported as such, inside the data; and a pickle
// cannot make it create more than MAX_PICKLE_OBJECTS objects.
import { describe, expect, it } from "vitest";
import { MAX_PICKLE_BYTES, StorageRef, TORCH_GLOBALS } from "../../src/weights/torch_pickle.js";
import { ZipArchive } from "../../src/weights/torch_zip.js";
import { MAX_PICKLE_OBJECTS, PickleError, PyGlobal, unpickle, type GlobalHandler, type PickleErrorCode } from "../../src/weights/unpickle.js";
import { P, tensorPickle } from "./craft.js";
import { fixture } from "./util.js";

/** The whitelist, spelled out: what a state dict needs and nothing else. */
const ALLOWED = [
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
  "torch._tensor._rebuild_from_type_v2",
  "torch.Tensor",
  "torch.nn.parameter.Parameter",
  "torch.DoubleStorage",
  "torch.FloatStorage",
  "torch.HalfStorage",
  "torch.BFloat16Storage",
  "torch.LongStorage",
  "torch.IntStorage",
  "torch.ShortStorage",
  "torch.CharStorage",
  "torch.ByteStorage",
  "torch.BoolStorage",
];

/** Globals a malicious pickle reaches for (code execution, file access, imports), and near misses of allowed names. */
const REFUSED: [string, string][] = [
  ["torch", "load"],
  ["torch.serialization", "_load"],
  ["torch.serialization", "load"],
  ["torch._utils", "_rebuild_tensor"],
  ["torch._utils", "_rebuild_device_tensor_from_numpy"],
  ["torch.storage", "_load_from_bytes"],
  ["torch.jit", "load"],
  ["torch", "UntypedStorage"],
  ["torch._C", "_set_grad_enabled"],
  ["torch.nn.parameter", "UninitializedParameter"],
  ["torchvision.ops", "nms"],
  ["torch_x", "FloatStorage"],
  ["builtins", "getattr"],
  ["builtins", "eval"],
  ["builtins", "exec"],
  ["builtins", "__import__"],
  ["builtins", "open"],
  ["__builtin__", "eval"],
  ["__builtin__", "getattr"],
  ["os", "system"],
  ["posix", "system"],
  ["nt", "system"],
  ["subprocess", "Popen"],
  ["subprocess", "check_output"],
  ["copyreg", "_reconstructor"],
  ["copy_reg", "_reconstructor"],
  ["numpy.core.multiarray", "_reconstruct"],
  ["numpy", "load"],
  ["pickle", "loads"],
  ["collections", "defaultdict"],
  ["collections", "OrderedDict.fromkeys"],
  ["functools", "partial"],
  ["runpy", "run_path"],
  ["webbrowser", "open"],
  ["", "eval"],
  ["collections", "OrderedDict "],
  ["Collections", "OrderedDict"],
];

/** The whitelist with each handler wrapped to record that it ran. */
function spiedGlobals(): { globals: Map<string, GlobalHandler>; ran: string[] } {
  const ran: string[] = [];
  const globals = new Map<string, GlobalHandler>();
  for (const [name, h] of TORCH_GLOBALS) {
    globals.set(name, {
      call: h.call && ((args) => (ran.push(name), h.call!(args))),
      build: h.build && ((obj, state) => (ran.push(`${name} (build)`), h.build!(obj, state))),
    });
  }
  return { globals, ran };
}

function refusal(data: Uint8Array, globals: ReadonlyMap<string, GlobalHandler> = TORCH_GLOBALS): PickleError {
  try {
    unpickle(data, { globals, source: "t.pkl", persistentLoad: () => new StorageRef("s", "F32", 1 << 20) });
  } catch (e) {
    expect(e).toBeInstanceOf(PickleError);
    return e as PickleError;
  }
  throw new Error("the pickle was accepted");
}

/** `module.name(*args)` by GLOBAL (protocol 2) or STACK_GLOBAL (protocol 4). */
function callOf(module: string, name: string, form: "GLOBAL" | "STACK_GLOBAL", args: Buffer = P.op(P.EMPTY_TUPLE)): Buffer {
  const g = form === "GLOBAL" ? P.global(module, name) : P.stackGlobal(module, name);
  return Buffer.concat([P.proto(form === "GLOBAL" ? 2 : 4), g, args, P.op(P.REDUCE, P.STOP)]);
}

describe("unpickler whitelist", () => {
  it("is exactly the state-dict globals", () => {
    expect([...TORCH_GLOBALS.keys()].sort()).toEqual([...ALLOWED].sort());
  });

  for (const form of ["GLOBAL", "STACK_GLOBAL"] as const) {
    for (const [module, name] of REFUSED) {
      it(`refuses ${module}.${name} by ${form}, calling nothing`, () => {
        const { globals, ran } = spiedGlobals();
        const e = refusal(callOf(module, name, form), globals);
        expect(e.code).toBe("refused-global");
        expect(e.message).toContain(`refusing to load global ${JSON.stringify(`${module}.${name}`)}`);
        expect(ran).toEqual([]);
      });
    }

    for (const qualname of ALLOWED) {
      it(`resolves ${qualname} by ${form}`, () => {
        const dot = qualname.lastIndexOf(".");
        const [module, name] = [qualname.slice(0, dot), qualname.slice(dot + 1)];
        const g = form === "GLOBAL" ? P.global(module, name) : P.stackGlobal(module, name);
        const v = unpickle(Buffer.concat([P.proto(form === "GLOBAL" ? 2 : 4), g, P.op(P.STOP)]), { globals: TORCH_GLOBALS, source: "t.pkl" });
        expect(v).toBeInstanceOf(PyGlobal);
        expect((v as PyGlobal).qualname).toBe(qualname);
        expect((v as PyGlobal).handler).toBe(TORCH_GLOBALS.get(qualname));
      });
    }
  }

  it("refuses copyreg._reconstructor with a non-whitelisted class before reaching the class", () => {
    const args = Buffer.concat([P.global("evil", "Payload"), P.global("builtins", "object"), P.op(P.NONE, 0x87 /* TUPLE3 */)]);
    const e = refusal(callOf("copyreg", "_reconstructor", "GLOBAL", args));
    expect(e.code).toBe("refused-global");
    expect(e.message).toMatch(/refusing to load global "copyreg\._reconstructor"/);
    expect(e.message).not.toContain("evil");
  });

  it("refuses a non-whitelisted class handed to a whitelisted rebuild function", () => {
    const { globals, ran } = spiedGlobals();
    const args = Buffer.concat([
      P.op(P.MARK),
      P.global("torch._utils", "_rebuild_tensor_v2"),
      P.global("evil", "Tensor"),
      P.op(P.EMPTY_TUPLE, P.EMPTY_DICT, P.TUPLE),
    ]);
    const e = refusal(callOf("torch._tensor", "_rebuild_from_type_v2", "GLOBAL", args), globals);
    expect(e.code).toBe("refused-global");
    expect(e.message).toContain(`"evil.Tensor"`);
    expect(ran).toEqual([]);
  });

  it("refuses a whitelisted class that is not a tensor type as a tensor subclass", () => {
    const args = Buffer.concat([
      P.op(P.MARK),
      P.global("torch._utils", "_rebuild_tensor_v2"),
      P.global("torch", "FloatStorage"),
      P.op(P.EMPTY_TUPLE, P.EMPTY_DICT, P.TUPLE),
    ]);
    const e = refusal(callOf("torch._tensor", "_rebuild_from_type_v2", "GLOBAL", args));
    expect(e.code).toBe("refused-call");
    expect(e.message).toMatch(/tensor subclass global torch\.FloatStorage is not supported/);
  });

  it("refuses to call a whitelisted class that has no call (torch.Tensor(...))", () => {
    const e = refusal(callOf("torch", "Tensor", "GLOBAL"));
    expect(e.code).toBe("refused-call");
    expect(e.message).toMatch(/REDUCE: global "torch\.Tensor" cannot be called here/);
  });

  it("refuses opcodes that import or call outside the whitelist (INST, OBJ, EXT1)", () => {
    for (const [op, name] of [
      [0x69, "INST"],
      [0x6f, "OBJ"],
      [0x82, "EXT1"],
    ] as const) {
      const e = refusal(Buffer.concat([P.proto(2), P.op(P.MARK), P.op(op), Buffer.from("os\nsystem\n"), P.op(P.STOP)]));
      expect(e.code).toBe("refused-opcode");
      expect(e.message).toContain(`refusing unsupported pickle opcode ${name}`);
    }
  });
});

describe("unpickler bounds", () => {
  const pickleOf = (file: string): Uint8Array => {
    const zip = ZipArchive.open(fixture(file));
    const name = zip.names().find((n) => n.endsWith("/data.pkl"))!;
    const b = zip.read(name, MAX_PICKLE_BYTES);
    zip.close();
    return b;
  };

  // dtypes.pth: every storage type, strided views, a shared storage (every cut);
  // tiny_v1.pth: a nested training checkpoint with optimizer state (every 97th cut).
  for (const [file, step] of [
    ["dtypes.pth", 1],
    ["tiny_v1.pth", 97],
  ] as const) {
    it(`reports cuts of ${file}'s data.pkl as truncations inside the data`, () => {
      const pkl = pickleOf(file);
      for (let cut = 0; cut < pkl.length; cut += step) {
        const e = refusal(pkl.subarray(0, cut));
        const at = Number(/pickle byte (\d+):/.exec(e.message)?.[1]);
        expect(e.code, `cut at ${cut}: ${e.message}`).toBe("truncated" satisfies PickleErrorCode);
        expect(at, `cut at ${cut}: ${e.message}`).toBeLessThanOrEqual(cut);
      }
    });
  }

  it(`refuses a pickle that creates more than MAX_PICKLE_OBJECTS (${MAX_PICKLE_OBJECTS}) objects`, () => {
    const many = Buffer.concat([P.proto(2), Buffer.alloc(MAX_PICKLE_OBJECTS + 1, P.EMPTY_TUPLE), P.op(P.STOP)]);
    const e = refusal(many);
    expect(e.code).toBe("too-large");
    expect(e.message).toBe(`t.pkl: pickle byte ${2 + MAX_PICKLE_OBJECTS + 1}: more than ${MAX_PICKLE_OBJECTS} objects (not a state dict; corrupt or malicious file)`);
  });

  it("accepts a state dict of 10,000 tensors well within the object budget", () => {
    const n = 10_000;
    const parts = [P.proto(2), P.global("collections", "OrderedDict"), P.op(P.EMPTY_TUPLE, P.REDUCE, P.MARK)];
    for (let i = 0; i < n; i++) parts.push(P.str(`t${i}`), tensorPickle({ name: `t${i}`, storage: String(i), numel: 4, shape: [2, 2] }));
    parts.push(P.op(P.SETITEMS, P.STOP));
    const v = unpickle(Buffer.concat(parts), { globals: TORCH_GLOBALS, source: "big", persistentLoad: () => new StorageRef("s", "F32", 4) });
    expect((v as Map<string, unknown>).size).toBe(n);
  });

  it("quotes at most a few hundred characters of a refused global's name", () => {
    const e = refusal(callOf("x".repeat(1_000_000), "system", "GLOBAL"));
    expect(e.code).toBe("refused-global");
    expect(e.message.length).toBeLessThan(500);
    expect(e.message).toContain("(1000007 characters)");
  });
});
