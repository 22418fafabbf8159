// A restricted unpickler for PyTorch state dicts. A pickle is a program for a
// stack machine whose GLOBAL/REDUCE opcodes import and call arbitrary Python
// callables — a checkpoint is untrusted data, so this machine knows only the
// data opcodes, and GLOBAL resolves only names on an explicit whitelist whose
// "calls" are plain TypeScript functions building data. Everything else (e.g.
// `os.system`, `builtins.eval`, or an opcode we do not know) is refused with
// an error naming it. Nothing is ever executed. What a pickle can make the
// machine allocate is bounded too: its objects by MAX_PICKLE_OBJECTS, its
// strings and bytes by the pickle's own length (capped by the caller).
import { quoted } from "./quote.js";

/** Which check refused a pickle (tests assert the check, not only the message). */
export type PickleErrorCode =
  | "refused-global" // GLOBAL/STACK_GLOBAL of a name off the whitelist
  | "refused-opcode" // an opcode this machine does not run
  | "refused-call" // a whitelisted global refused its arguments
  | "truncated" // the data ends inside an opcode
  | "too-large" // more objects than MAX_PICKLE_OBJECTS
  | "malformed"; // anything else the machine cannot make sense of

export class PickleError extends Error {
  override name = "PickleError";
  /** Set where the unpickler refuses; undefined for errors of the container format around it. */
  readonly code: PickleErrorCode | undefined;
  constructor(message: string, code?: PickleErrorCode) {
    super(message);
    this.code = code;
  }
}

/**
 * The most objects (containers, memo entries, globals, call results) one
 * pickle may create. A state dict needs about ten per tensor (SegVol: ~5,000;
 * with optimizer state, twice that); the cap bounds what a hostile pickle
 * can allocate (an empty dict costs ~200 bytes of heap) to ~200 MB.
 */
export const MAX_PICKLE_OBJECTS = 1 << 20;

/** A whitelisted Python global; `call` (if any) is what REDUCE does with it. */
export interface GlobalHandler {
  call?: (args: unknown[]) => unknown;
  /** BUILD (setstate) on a value this global produced; absent: BUILD refused. */
  build?: (obj: unknown, state: unknown) => unknown;
}

/** A resolved global as it sits on the stack. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly handler: GlobalHandler,
  ) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Python tuples (kept apart from lists only for clarity of the result). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

export interface UnpickleOptions {
  /** "module.name" → handler. Anything else is refused. */
  globals: ReadonlyMap<string, GlobalHandler>;
  /** Resolves BINPERSID ids (PyTorch storages). */
  persistentLoad?: (pid: unknown) => unknown;
  /** Named in errors (file and entry). */
  source: string;
}

// Opcode names, for error messages (pickletools' names).
const OPNAMES: Record<number, string> = {
  0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT", 0x4a: "BININT",
  0x4b: "BININT1", 0x4c: "LONG", 0x4d: "BININT2", 0x4e: "NONE", 0x50: "PERSID", 0x51: "BINPERSID", 0x52: "REDUCE",
  0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND",
  0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT", 0x7d: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET",
  0x69: "INST", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x5d: "EMPTY_LIST", 0x6f: "OBJ", 0x70: "PUT", 0x71: "BINPUT",
  0x72: "LONG_BINPUT", 0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT",
  0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2",
  0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4", 0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x8f: "EMPTY_SET",
  0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
  0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
};

export function unpickle(data: Uint8Array, opts: UnpickleOptions): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const latin1 = new TextDecoder("latin1");
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  let objects = 0;

  const fail = (msg: string, code: PickleErrorCode = "malformed"): never => {
    throw new PickleError(`${opts.source}: pickle byte ${pos}: ${msg}`, code);
  };
  const need = (n: number): void => {
    if (pos + n > data.byteLength) fail(`data ends inside an opcode (truncated pickle)`, "truncated");
  };
  /** Counts one more object against MAX_PICKLE_OBJECTS; returns it. */
  const made = <T>(v: T): T => {
    if (++objects > MAX_PICKLE_OBJECTS) fail(`more than ${MAX_PICKLE_OBJECTS} objects (not a state dict; corrupt or malicious file)`, "too-large");
    return v;
  };
  const u8 = (): number => {
    need(1);
    return data[pos++]!;
  };
  const u16 = (): number => {
    need(2);
    const x = view.getUint16(pos, true);
    pos += 2;
    return x;
  };
  const u32 = (): number => {
    need(4);
    const x = view.getUint32(pos, true);
    pos += 4;
    return x;
  };
  const u64 = (): number => {
    need(8);
    const x = view.getBigUint64(pos, true);
    pos += 8;
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${x} is too large`);
    return Number(x);
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail(`unterminated text line (truncated pickle)`, "truncated");
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail(`stack underflow (malformed pickle)`);
    // MARK is no stack item here: it saves the stack on the metastack (see popMark).
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail(`stack underflow (malformed pickle)`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) fail(`no MARK to pop to (malformed pickle)`);
    stack = prev!;
    return items;
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) fail(`memo entry ${i} used before it was stored (malformed pickle)`);
    return memo.get(i);
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const q = `${module}.${name}`;
    const h = opts.globals.get(q);
    if (!h) fail(`refusing to load global ${quoted(q)}: not on the whitelist of state-dict types (the file may contain code; it was not run)`, "refused-global");
    return made(new PyGlobal(module, name, h!));
  };
  const callGlobal = (fn: unknown, args: unknown, opname: string): unknown => {
    if (!(fn instanceof PyGlobal)) fail(`${opname} on a non-global ${describe(fn)} (malformed or unsupported pickle)`);
    const g = fn as PyGlobal;
    if (!g.handler.call) fail(`${opname}: global ${quoted(g.qualname)} cannot be called here`, "refused-call");
    if (!(args instanceof PyTuple)) fail(`${opname}: arguments of ${quoted(g.qualname)} are not a tuple`);
    try {
      return made(g.handler.call!((args as PyTuple).items));
    } catch (e) {
      if (e instanceof PickleError) throw e;
      return fail(`${g.qualname}: ${(e as Error).message}`, "refused-call");
    }
  };
  const setItems = (dict: unknown, items: unknown[]): void => {
    if (!(dict instanceof Map)) fail(`SETITEM(S) on a non-dict ${describe(dict)}`);
    if (items.length % 2 !== 0) fail(`SETITEMS with an odd number of items`);
    for (let i = 0; i < items.length; i += 2) (dict as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const appendItems = (list: unknown, items: unknown[]): void => {
    if (!Array.isArray(list)) fail(`APPEND(S) on a non-list ${describe(list)}`);
    for (const x of items) (list as unknown[]).push(x); // no spread: item counts are attacker-chosen
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: {
        // PROTO
        const v = u8();
        if (v < 2 || v > 5) fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: {
        // STOP
        const result = pop();
        if (stack.length !== 0 || metastack.length !== 0) fail(`STOP with ${stack.length} items left on the stack (malformed pickle)`);
        return result;
      }
      case 0x28: // MARK
        metastack.push(stack);
        stack = made([]);
        break;
      case 0x30: // POP
        if (stack.length === 0) popMark();
        else stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(readLong(bytes(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(readLong(bytes(u32())));
        break;
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x49: {
        // INT (text): also encodes booleans as 00 / 01
        const s = line();
        if (s === "00") stack.push(false);
        else if (s === "01") stack.push(true);
        else stack.push(parseIntText(s, fail));
        break;
      }
      case 0x4c: // LONG (text)
        stack.push(parseIntText(line().replace(/L$/, ""), fail));
        break;
      case 0x46: {
        // FLOAT (text)
        const x = Number(line());
        if (Number.isNaN(x)) fail(`bad FLOAT text`);
        stack.push(x);
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(decodeUtf8(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(decodeUtf8(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(decodeUtf8(bytes(u64())));
        break;
      case 0x54: // BINSTRING (py2 str)
        stack.push(latin1.decode(bytes(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(made(copy(bytes(u32()))));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(made(copy(bytes(u8()))));
        break;
      case 0x8e: // BINBYTES8
        stack.push(made(copy(bytes(u64()))));
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(made(new Map()));
        break;
      case 0x5d: // EMPTY_LIST
        stack.push(made([]));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(made(new PyTuple([])));
        break;
      case 0x74: {
        // TUPLE (pop the mark first: `stack` is rebound by popMark)
        const items = popMark();
        stack.push(made(new PyTuple(items)));
        break;
      }
      case 0x85: // TUPLE1
        stack.push(made(new PyTuple([pop()])));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(made(new PyTuple([a, b])));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(made(new PyTuple([a, b, c])));
        break;
      }
      case 0x6c: {
        // LIST
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x64: {
        // DICT
        const items = popMark();
        const d = made(new Map());
        setItems(d, items);
        stack.push(d);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), made(top()));
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), made(top()));
        break;
      case 0x70: // PUT (text)
        memo.set(parseIntText(line(), fail) as number, made(top()));
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, made(top()));
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x67: // GET (text)
        stack.push(memoGet(parseIntText(line(), fail) as number));
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail(`STACK_GLOBAL with non-string module/name`);
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(callGlobal(fn, args, "REDUCE"));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args) — only for whitelisted classes
        const args = pop();
        const cls = pop();
        stack.push(callGlobal(cls, args, "NEWOBJ"));
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state) — only where the producing global allows it
        const state = pop();
        const obj = pop();
        const h = builders.get(obj as object);
        if (!h) fail(`BUILD on ${describe(obj)} is not supported`);
        stack.push(h!(obj, state));
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail(`persistent id found but no storages are available`);
        stack.push(made(opts.persistentLoad!(pid)));
        break;
      }
      default:
        pos = at;
        fail(`refusing unsupported pickle opcode ${OPNAMES[op] ?? "(unknown)"} (0x${op.toString(16).padStart(2, "0")})`, "refused-opcode");
    }
  }

  function decodeUtf8(b: Uint8Array): string {
    try {
      return utf8.decode(b);
    } catch {
      return fail(`string is not valid UTF-8`);
    }
  }
}

/**
 * A bytes value's own copy, a plain Uint8Array: `slice()` would not do, since
 * on a Buffer (what a caller reading a file often passes) it returns a view of
 * the caller's memory.
 */
function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

// BUILD handlers are attached to the objects the whitelisted calls return.
const builders = new WeakMap<object, (obj: unknown, state: unknown) => unknown>();

/** Lets BUILD (setstate) be applied to `obj`, e.g. the `_metadata` of a state-dict OrderedDict. */
export function allowBuild<T extends object>(obj: T, build: (obj: unknown, state: unknown) => unknown): T {
  builders.set(obj, build);
  return obj;
}

/** Little-endian two's complement → number (bigint beyond 2^53). */
function readLong(b: Uint8Array): number | bigint {
  let x = 0n; // zero bytes: 0 (Python's LONG1 of length 0)
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) x -= 1n << BigInt(8 * b.length);
  return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
}

function parseIntText(s: string, fail: (m: string) => never): number | bigint {
  if (!/^[+-]?\d+$/.test(s)) fail(`bad integer text ${quoted(s)}`);
  const x = BigInt(s);
  return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
}

export function describe(v: unknown): string {
  if (v === null) return "None";
  if (v instanceof PyGlobal) return `global ${v.qualname}`;
  if (v instanceof PyTuple) return `tuple(${v.items.length})`;
  if (v instanceof Map) return `dict(${v.size})`;
  if (Array.isArray(v)) return `list(${v.length})`;
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}
