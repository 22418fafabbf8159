// The restricted unpickler opcode by opcode (issue 24, mutation testing): each
// data opcode against the value the pickle format defines for it (pickletools'
// documentation, worked out by hand), and each refusal on its own crafted
// input, asserting the check that refused it (the error's code and its
// words), that nothing was called, and that the input was left as it was.
import { describe, expect, it } from "vitest";
import { StorageRef, TensorRef, TORCH_GLOBALS } from "../../src/weights/torch_pickle.js";
import { PickleError, PyGlobal, PyTuple, unpickle, type GlobalHandler, type PickleErrorCode, type UnpickleOptions } from "../../src/weights/unpickle.js";
import { P } from "./craft.js";

const STORAGE = new StorageRef("a/data/0", "F32", 16);

function opts(extra: Partial<UnpickleOptions> = {}): UnpickleOptions {
  return { globals: TORCH_GLOBALS, source: "t.pkl", persistentLoad: () => STORAGE, ...extra };
}

/** Unpickles `parts` as protocol 2 ending in STOP. */
function value(parts: Buffer[], o: Partial<UnpickleOptions> = {}): unknown {
  return unpickle(Buffer.concat([P.proto(2), ...parts, P.op(P.STOP)]), opts(o));
}

/** The PickleError that unpickling `data` throws; checks its class, its code, its words, and that `data` is unchanged. */
function refused(data: Buffer, code: PickleErrorCode, words: RegExp, o: Partial<UnpickleOptions> = {}): PickleError {
  const before = Buffer.from(data);
  let err: unknown;
  try {
    unpickle(data, opts(o));
  } catch (e) {
    err = e;
  }
  expect(err, "the pickle was accepted").toBeInstanceOf(PickleError);
  const e = err as PickleError;
  expect(e.name).toBe("PickleError");
  expect(e.code, e.message).toBe(code);
  expect(e.message).toMatch(/^t\.pkl: pickle byte \d+: /);
  expect(e.message).toMatch(words);
  expect(data.equals(before)).toBe(true);
  return e;
}

/** The length-prefixed forms of unicode and of bytes: opcode and the width of its length. */
const UNICODE_FORMS = [
  [0x58, 4],
  [0x8c, 1],
  [0x8d, 8],
] as const;
const BYTES_FORMS = [
  [0x42, 4],
  [0x43, 1],
  [0x8e, 8],
] as const;

const proto2 = (...parts: Buffer[]): Buffer => Buffer.concat([P.proto(2), ...parts, P.op(P.STOP)]);
const u8s = (...xs: number[]): Buffer => Buffer.from(xs);

describe("unpickler: integers", () => {
  it("reads text INT, including the 00/01 booleans, signs and the safe-integer edges", () => {
    const cases: [string, unknown][] = [
      ["00", false],
      ["01", true],
      ["0", 0],
      ["1", 1],
      ["42", 42],
      ["-7", -7],
      ["+5", 5],
      ["9007199254740991", Number.MAX_SAFE_INTEGER],
      ["-9007199254740991", Number.MIN_SAFE_INTEGER],
      ["9007199254740992", 9007199254740992n],
      ["-9007199254740992", -9007199254740992n],
      ["123456789012345678901234567890", 123456789012345678901234567890n],
    ];
    for (const [text, want] of cases) expect(value([P.text(0x49, text)]), text).toBe(want);
  });

  it("reads text LONG with and without Python 2's L suffix", () => {
    expect(value([P.text(0x4c, "5L")])).toBe(5);
    expect(value([P.text(0x4c, "-12")])).toBe(-12);
    expect(value([P.text(0x4c, "123456789012345678901234567890L")])).toBe(123456789012345678901234567890n);
  });

  it("refuses integer text that is not an optionally signed run of digits", () => {
    for (const bad of ["", "x4", "4x", "4 ", " 4", "+", "-", "1.5", "0x10", "4L5"]) {
      const e = refused(proto2(P.text(0x49, bad)), "malformed", /bad integer text /);
      expect(e.message).toContain(JSON.stringify(bad));
    }
    refused(proto2(P.text(0x4c, "12LL")), "malformed", /bad integer text "12L"/);
    refused(proto2(P.text(0x4c, "L5")), "malformed", /bad integer text "L5"/); // the L is a suffix, nothing else
    refused(proto2(P.text(0x70, "a")), "malformed", /bad integer text "a"/); // PUT
    refused(proto2(P.text(0x67, "-")), "malformed", /bad integer text "-"/); // GET
  });

  it("reads LONG1 and LONG4 as little-endian two's complement, a number up to 2^53 and a bigint beyond", () => {
    const le = (x: bigint, n: number): Buffer => {
      const b = Buffer.alloc(n);
      let y = BigInt.asUintN(8 * n, x);
      for (let i = 0; i < n; i++, y >>= 8n) b[i] = Number(y & 0xffn);
      return b;
    };
    const cases: [bigint, number][] = [
      [0n, 0],
      [0n, 1],
      [127n, 1],
      [-128n, 1],
      [255n, 2],
      [-1n, 1],
      [2n ** 53n - 1n, 8],
      [2n ** 53n, 8],
      [-(2n ** 53n) + 1n, 8],
      [-(2n ** 53n), 8],
      [2n ** 70n + 3n, 10],
    ];
    for (const [x, n] of cases) {
      const want = x >= -(2n ** 53n) + 1n && x <= 2n ** 53n - 1n ? Number(x) : x;
      expect(value([P.sized(0x8a, 1, le(x, n))]), `LONG1 ${x}`).toBe(want);
      expect(value([P.sized(0x8b, 4, le(x, n))]), `LONG4 ${x}`).toBe(want);
    }
  });

  it("reads BININT, BININT1 and BININT2", () => {
    expect(value([P.int(-2)])).toBe(-2);
    expect(value([u8s(0x4b, 0xff)])).toBe(255);
    expect(value([u8s(0x4d, 0x34, 0x12)])).toBe(0x1234);
  });
});

describe("unpickler: floats, strings, bytes", () => {
  it("reads text FLOAT and refuses text that is no number", () => {
    expect(value([P.text(0x46, "1.5")])).toBe(1.5);
    expect(value([P.text(0x46, "-2e-3")])).toBe(-2e-3);
    refused(proto2(P.text(0x46, "abc")), "malformed", /bad FLOAT text$/);
  });

  it("reads the three unicode forms as UTF-8 and the two Python 2 string forms as latin-1", () => {
    const utf8 = Buffer.from("héllo ✓", "utf8");
    expect(value([P.sized(0x58, 4, utf8)])).toBe("héllo ✓");
    expect(value([P.sized(0x8c, 1, utf8)])).toBe("héllo ✓");
    expect(value([P.sized(0x8d, 8, utf8)])).toBe("héllo ✓");
    const latin1 = u8s(0x63, 0x61, 0x66, 0xe9); // "café" in latin-1
    expect(value([P.sized(0x54, 4, latin1)])).toBe("café");
    expect(value([P.sized(0x55, 1, latin1)])).toBe("café");
  });

  it("refuses unicode that is not valid UTF-8 (rather than replacing it)", () => {
    for (const [op, width] of UNICODE_FORMS) {
      refused(proto2(P.sized(op, width, u8s(0x61, 0xff, 0x62))), "malformed", /string is not valid UTF-8$/);
    }
  });

  it("reads the three bytes forms into copies that do not alias the pickle", () => {
    for (const [op, width] of BYTES_FORMS) {
      const data = proto2(P.sized(op, width, u8s(1, 2, 3)));
      const v = unpickle(data, opts()) as Uint8Array;
      expect([...v]).toEqual([1, 2, 3]);
      data.fill(0); // the file's buffer reused: the value must not change with it
      expect([...v]).toEqual([1, 2, 3]);
      expect(v.byteLength).toBe(v.buffer.byteLength);
    }
  });

  it("refuses a 64-bit length beyond 2^53 as malformed, and one within it past the data as truncated", () => {
    const e = refused(proto2(P.sized(0x8d, 8, Buffer.alloc(0), 2n ** 53n)), "malformed", /length 9007199254740992 is too large$/);
    expect(e.message).toMatch(/pickle byte 11:/);
    refused(proto2(P.sized(0x8e, 8, Buffer.alloc(0), 2n ** 53n - 1n)), "truncated", /data ends inside an opcode \(truncated pickle\)$/);
  });

  it("skips FRAME's length hint", () => {
    expect(value([P.sized(0x95, 8, Buffer.alloc(0), 3n), P.int(9)])).toBe(9);
  });

  it("reports a text line without its newline as truncated", () => {
    refused(Buffer.concat([P.proto(2), u8s(0x49), Buffer.from("42")]), "truncated", /unterminated text line \(truncated pickle\)$/);
  });
});

describe("unpickler: stack and containers", () => {
  it("builds lists, dicts and tuples by MARK, LIST, DICT, APPEND, SETITEM, TUPLE1-3", () => {
    expect(value([P.op(P.MARK), P.int(1), P.int(2), P.op(P.LIST)])).toEqual([1, 2]);
    expect(value([P.op(P.MARK), P.str("k"), P.int(3), P.op(0x64)])).toEqual(new Map([["k", 3]]));
    expect(value([P.op(0x5d), P.int(4), P.op(0x61)])).toEqual([4]);
    expect(value([P.op(0x5d), P.op(P.MARK), P.int(4), P.int(5), P.op(0x65)])).toEqual([4, 5]);
    expect(value([P.op(P.EMPTY_DICT), P.str("a"), P.int(1), P.op(0x73)])).toEqual(new Map([["a", 1]]));
    expect((value([P.int(1), P.op(0x85)]) as PyTuple).items).toEqual([1]);
    expect((value([P.int(1), P.int(2), P.op(0x86)]) as PyTuple).items).toEqual([1, 2]);
    expect((value([P.int(1), P.int(2), P.int(3), P.op(0x87)]) as PyTuple).items).toEqual([1, 2, 3]);
    expect((value([P.op(P.MARK), P.op(P.TUPLE)]) as PyTuple).items).toEqual([]);
  });

  it("runs POP, POP_MARK and DUP", () => {
    expect(value([P.int(1), P.int(2), P.op(P.POP)])).toBe(1);
    // POP with nothing above the mark pops the mark itself (pickle.py's load_pop).
    expect(value([P.int(1), P.op(P.MARK), P.op(P.POP)])).toBe(1);
    expect(value([P.int(1), P.op(P.MARK), P.int(2), P.int(3), P.op(0x31)])).toBe(1);
    const [a, b] = (value([P.op(0x5d), P.op(0x32), P.op(0x86)]) as PyTuple).items;
    expect(a).toEqual([]);
    expect(a).toBe(b);
  });

  it("stores and fetches the memo by every PUT/GET form", () => {
    for (const [put, get] of [
      [u8s(0x71, 7), u8s(0x68, 7)],
      [P.put(7), P.get(7)],
      [P.text(0x70, "7"), P.text(0x67, "7")],
      [u8s(0x94), u8s(0x68, 0)],
    ]) {
      const [a, b] = (value([P.op(0x5d), put!, get!, P.op(0x86)]) as PyTuple).items;
      expect(a).toEqual([]);
      expect(a).toBe(b);
    }
    refused(proto2(P.text(0x67, "3")), "malformed", /memo entry 3 used before it was stored/);
  });

  it("refuses each kind of stack abuse by its own check", () => {
    refused(proto2(), "malformed", /stack underflow \(malformed pickle\)$/);
    refused(proto2(P.op(0x32)), "malformed", /stack underflow \(malformed pickle\)$/); // DUP on nothing
    refused(proto2(P.op(P.TUPLE)), "malformed", /no MARK to pop to \(malformed pickle\)$/);
    refused(proto2(P.op(0x31)), "malformed", /no MARK to pop to/);
    refused(proto2(P.int(1), P.int(2)), "malformed", /STOP with 1 items left on the stack \(malformed pickle\)$/);
    refused(proto2(P.op(P.MARK), P.int(1)), "malformed", /STOP with 0 items left on the stack/); // an open MARK
    refused(proto2(P.op(P.EMPTY_DICT, P.MARK), P.str("k"), P.op(P.SETITEMS)), "malformed", /SETITEMS with an odd number of items$/);
  });

  it("names what it found where a container was expected", () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.concat([P.op(P.NONE), P.int(1), P.op(0x61)]), /APPEND\(S\) on a non-list None$/],
      [Buffer.concat([P.op(P.EMPTY_DICT), P.int(1), P.op(0x61)]), /APPEND\(S\) on a non-list dict\(0\)$/],
      [Buffer.concat([P.op(P.EMPTY_TUPLE), P.op(P.MARK), P.op(0x65)]), /APPEND\(S\) on a non-list tuple\(0\)$/],
      [Buffer.concat([P.int(5), P.int(1), P.op(0x61)]), /APPEND\(S\) on a non-list number$/],
      [Buffer.concat([P.sized(0x43, 1, u8s(1)), P.int(1), P.op(0x61)]), /APPEND\(S\) on a non-list Uint8Array$/],
      [Buffer.concat([P.op(0x5d), P.str("k"), P.int(1), P.op(0x73)]), /SETITEM\(S\) on a non-list|SETITEM\(S\) on a non-dict list\(0\)$/],
      [Buffer.concat([P.global("collections", "OrderedDict"), P.str("k"), P.int(1), P.op(0x73)]), /SETITEM\(S\) on a non-dict global collections\.OrderedDict$/],
      [Buffer.concat([P.op(P.MARK), P.int(1), P.op(P.LIST), P.op(P.MARK), P.op(P.SETITEMS)]), /SETITEM\(S\) on a non-dict list\(1\)$/],
      [Buffer.concat([P.op(P.MARK), P.int(1), P.int(2), P.op(0x64)]), /SETITEM\(S\) on a non-dict|^$/],
    ];
    for (const [body, words] of cases.slice(0, 8)) refused(proto2(body), "malformed", words);
    // DICT builds its own dict: an even number of items is all it needs.
    expect(value([P.op(P.MARK), P.int(1), P.int(2), P.op(0x64)])).toEqual(new Map([[1, 2]]));
    // A persistent load may return any object; one without a constructor is named "object".
    refused(proto2(P.op(P.NONE, P.BINPERSID), P.int(1), P.op(0x61)), "malformed", /APPEND\(S\) on a non-list object$/, { persistentLoad: () => Object.create(null) as object });
  });
});

describe("unpickler: globals, calls, BUILD, persistent ids", () => {
  /** One whitelisted global `m.f` whose call records its arguments. */
  function recording(call?: GlobalHandler["call"]): { globals: Map<string, GlobalHandler>; calls: unknown[][] } {
    const calls: unknown[][] = [];
    const globals = new Map<string, GlobalHandler>([["m.f", { call: (args) => (calls.push(args), call ? call(args) : "made") }]]);
    return { globals, calls };
  }

  it("calls a whitelisted global by REDUCE and by NEWOBJ with the tuple's items", () => {
    const { globals, calls } = recording();
    expect(value([P.global("m", "f"), P.int(1), P.op(0x85, P.REDUCE)], { globals })).toBe("made");
    expect(value([P.global("m", "f"), P.int(2), P.op(0x85, 0x81)], { globals })).toBe("made");
    expect(calls).toEqual([[1], [2]]);
  });

  it("refuses a call of something that is not a global, or with arguments that are not a tuple, calling nothing", () => {
    const { globals, calls } = recording();
    refused(proto2(P.op(P.NONE, P.EMPTY_TUPLE, P.REDUCE)), "malformed", /REDUCE on a non-global None \(malformed or unsupported pickle\)$/, { globals });
    refused(proto2(P.op(0x5d, P.EMPTY_TUPLE, 0x81)), "malformed", /NEWOBJ on a non-global list\(0\)/, { globals });
    refused(proto2(P.global("m", "f"), P.op(0x5d, P.REDUCE)), "malformed", /REDUCE: arguments of "m\.f" are not a tuple$/, { globals });
    refused(proto2(P.global("m", "f"), P.op(P.NONE, 0x81)), "malformed", /NEWOBJ: arguments of "m\.f" are not a tuple$/, { globals });
    expect(calls).toEqual([]);
  });

  it("passes a PickleError from a handler through as it is, and wraps any other error as refused-call", () => {
    const inner = new PickleError("inner: too many", "too-large");
    const { globals } = recording(() => {
      throw inner;
    });
    let err: unknown;
    try {
      value([P.global("m", "f"), P.op(P.EMPTY_TUPLE, P.REDUCE)], { globals });
    } catch (e) {
      err = e;
    }
    expect(err).toBe(inner);
    const plain = recording(() => {
      throw new Error("no such shape");
    });
    refused(proto2(P.global("m", "f"), P.op(P.EMPTY_TUPLE, P.REDUCE)), "refused-call", /pickle byte 9: m\.f: no such shape$/, { globals: plain.globals });
  });

  it("refuses STACK_GLOBAL unless both module and name are strings", () => {
    const { globals, calls } = recording();
    refused(proto2(P.int(1), P.str("f"), P.op(0x93)), "malformed", /STACK_GLOBAL with non-string module\/name$/, { globals });
    refused(proto2(P.str("m"), P.int(1), P.op(0x93)), "malformed", /STACK_GLOBAL with non-string module\/name$/, { globals });
    expect(value([P.str("m"), P.str("f"), P.op(0x93)], { globals })).toBeInstanceOf(PyGlobal);
    expect(calls).toEqual([]);
  });

  it("runs BUILD only on what a whitelisted global allowed it for (a state dict's OrderedDict)", () => {
    const d = value([P.global("collections", "OrderedDict"), P.op(P.EMPTY_TUPLE, P.REDUCE), P.op(P.EMPTY_DICT), P.op(0x62)]);
    expect(d).toBeInstanceOf(Map);
    refused(proto2(P.op(0x5d, P.EMPTY_DICT, 0x62)), "malformed", /BUILD on list\(0\) is not supported$/);
    refused(proto2(P.op(P.EMPTY_DICT, P.EMPTY_DICT, 0x62)), "malformed", /BUILD on dict\(0\) is not supported$/);
  });

  it("refuses a persistent id when no storages are available, before anything is loaded", () => {
    refused(proto2(P.str("0"), P.op(P.BINPERSID)), "malformed", /persistent id found but no storages are available$/, { persistentLoad: undefined });
    expect(value([P.str("0"), P.op(P.BINPERSID)])).toBe(STORAGE);
  });

  it("checks the protocol: 2 to 5 read, others refused", () => {
    for (const v of [2, 3, 4, 5]) expect(unpickle(Buffer.concat([P.proto(v), P.op(P.NONE, P.STOP)]), opts()), `protocol ${v}`).toBeNull();
    for (const v of [0, 1, 6, 255]) refused(Buffer.concat([P.proto(v), P.op(P.NONE, P.STOP)]), "malformed", new RegExp(`unsupported pickle protocol ${v}$`));
  });

  it("names an unknown opcode by its hex code, two digits", () => {
    refused(proto2(u8s(0x01)), "refused-opcode", /pickle byte 2: refusing unsupported pickle opcode \(unknown\) \(0x01\)$/);
    refused(proto2(u8s(0xff)), "refused-opcode", /refusing unsupported pickle opcode \(unknown\) \(0xff\)$/);
    refused(proto2(u8s(0x98)), "refused-opcode", /refusing unsupported pickle opcode READONLY_BUFFER \(0x98\)$/);
  });
});

describe("state-dict globals: their argument checks", () => {
  const storage = Buffer.concat([P.str("0"), P.op(P.BINPERSID)]);
  const tuple = (...xs: Buffer[]): Buffer => Buffer.concat([P.op(P.MARK), ...xs, P.op(P.TUPLE)]);
  const ints = (...xs: number[]): Buffer => tuple(...xs.map(P.int));
  const rebuild = (...args: Buffer[]): Buffer => proto2(P.global("torch._utils", "_rebuild_tensor_v2"), tuple(...args), P.op(P.REDUCE));

  it("rebuilds a tensor from exactly (storage, offset, size, stride), the optional arguments left out", () => {
    const t = unpickle(rebuild(storage, P.int(2), ints(2, 3), ints(3, 1)), opts()) as TensorRef;
    expect(t).toBeInstanceOf(TensorRef);
    expect([t.storage, t.offset, t.shape, t.stride]).toEqual([STORAGE, 2, [2, 3], [3, 1]]);
  });

  it("refuses each malformed argument by its own check", () => {
    const cases: [Buffer, RegExp][] = [
      [rebuild(storage, P.int(0), ints(2)), /expects \(storage, offset, size, stride, \.\.\.\), got 3 arguments$/],
      [rebuild(P.op(P.NONE), P.int(0), ints(2), ints(1)), /expects \(storage, offset, size, stride, \.\.\.\), got 4 arguments$/],
      [rebuild(storage, P.int(-1), ints(2), ints(1)), /storage offset -1 is invalid$/],
      [rebuild(storage, P.text(0x46, "0.5"), ints(2), ints(1)), /storage offset 0\.5 is invalid$/],
      [rebuild(storage, P.int(0), Buffer.concat([P.op(P.MARK), P.int(2), P.op(P.LIST)]), ints(1)), /size is not a tuple of non-negative integers \(list\(1\)\)$/],
      [rebuild(storage, P.int(0), ints(2, -1), ints(1, 1)), /size is not a tuple of non-negative integers \(tuple\(2\)\)$/],
      [rebuild(storage, P.int(0), tuple(P.text(0x46, "1.5")), ints(1)), /size is not a tuple of non-negative integers/],
      [rebuild(storage, P.int(0), ints(2), ints(-1)), /stride is not a tuple of non-negative integers \(tuple\(1\)\)$/],
      [rebuild(storage, P.int(0), ints(2, 2), ints(1)), /size \[2, 2\] and stride \[1\] differ in rank$/],
    ];
    for (const [data, words] of cases) refused(data, "refused-call", words);
  });

  it("makes OrderedDict() only without arguments, and lets BUILD return the dict itself", () => {
    refused(proto2(P.global("collections", "OrderedDict"), ints(1), P.op(P.REDUCE)), "refused-call", /collections\.OrderedDict: expects no arguments$/);
    const d = value([P.global("collections", "OrderedDict"), P.op(P.EMPTY_TUPLE, P.REDUCE, P.EMPTY_DICT, 0x62), P.str("k"), P.op(P.NONE, 0x73)]);
    expect(d).toEqual(new Map([["k", null]]));
  });

  const tensor = Buffer.concat([P.global("torch._utils", "_rebuild_tensor_v2"), tuple(storage, P.int(0), ints(1), ints(1)), P.op(P.REDUCE)]);

  for (const name of ["_rebuild_parameter", "_rebuild_parameter_with_state"]) {
    it(`${name} passes a tensor through and refuses anything else`, () => {
      const t = value([P.global("torch._utils", name), tuple(tensor, P.op(P.FALSE)), P.op(P.REDUCE)]);
      expect(t).toBeInstanceOf(TensorRef);
      refused(proto2(P.global("torch._utils", name), tuple(P.op(P.NONE)), P.op(P.REDUCE)), "refused-call", new RegExp(`torch\\._utils\\.${name}: expects a tensor, got None$`));
      refused(proto2(P.global("torch._utils", name), tuple(P.op(0x5d)), P.op(P.REDUCE)), "refused-call", /expects a tensor, got list\(0\)$/);
    });
  }

  it("_rebuild_from_type_v2 rebuilds plain tensors and parameters by a whitelisted function only", () => {
    const fromType = (func: Buffer, type: Buffer, args: Buffer): Buffer =>
      proto2(P.global("torch._tensor", "_rebuild_from_type_v2"), tuple(func, type, args, P.op(P.EMPTY_DICT)), P.op(P.REDUCE));
    const rebuildFn = P.global("torch._utils", "_rebuild_tensor_v2");
    const args = tuple(storage, P.int(0), ints(1), ints(1));
    for (const type of ["Tensor", "nn.parameter.Parameter"]) {
      const dot = `torch.${type}`.lastIndexOf(".");
      const g = P.global(`torch.${type}`.slice(0, dot), `torch.${type}`.slice(dot + 1));
      expect(unpickle(fromType(rebuildFn, g, args), opts()), type).toBeInstanceOf(TensorRef);
    }
    const T = P.global("torch", "Tensor");
    refused(fromType(P.op(P.NONE), T, args), "refused-call", /expects a whitelisted rebuild function$/);
    refused(fromType(P.global("torch", "FloatStorage"), T, args), "refused-call", /expects a whitelisted rebuild function$/);
    refused(fromType(rebuildFn, P.op(P.NONE), args), "refused-call", /tensor subclass None is not supported$/);
    refused(fromType(rebuildFn, P.global("torch", "HalfStorage"), args), "refused-call", /tensor subclass global torch\.HalfStorage is not supported$/);
    refused(fromType(rebuildFn, T, P.op(0x5d)), "refused-call", /arguments are not a tuple$/);
  });
});
