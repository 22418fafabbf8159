// PyTorch's zip checkpoint (torch.save >= 1.6): `<dir>/data.pkl` is a pickle
// whose tensors are `_rebuild_tensor_v2(storage, offset, size, stride, ...)`
// calls, storages being persistent ids ('storage', torch.FloatStorage, key,
// location, numel) that name the raw little-endian entry `<dir>/data/<key>`.
// This module whitelists exactly those globals for the restricted unpickler
// and turns tensor references into contiguous bytes on demand.
import { shapeNumel, ST_DTYPE_BYTES, type StDType } from "./dtype.js";
import { dims, quoted } from "./quote.js";
import { ZipArchive } from "./torch_zip.js";
import { allowBuild, describe, PickleError, PyGlobal, PyTuple, unpickle, type GlobalHandler } from "./unpickle.js";

/**
 * The largest data.pkl read. SegVol's is ~100 kB (a training checkpoint with
 * optimizer state, about twice that); a pickle's strings and bytes can take
 * a few times its length in memory, so the cap keeps that small.
 */
export const MAX_PICKLE_BYTES = 16 * 1024 * 1024;

/** One storage of the archive (`<dir>/data/<key>`). */
export class StorageRef {
  constructor(
    readonly entry: string,
    readonly dtype: StDType,
    readonly numel: number,
  ) {}
}

/** A tensor as the pickle describes it: a strided view of a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
  get dtype(): StDType {
    return this.storage.dtype;
  }
}

const STORAGE_TYPES: Record<string, StDType> = {
  DoubleStorage: "F64",
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

function intTuple(v: unknown, what: string): number[] {
  if (!(v instanceof PyTuple) || !v.items.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) {
    throw new Error(`${what} is not a tuple of non-negative integers (${describe(v)})`);
  }
  return v.items as number[];
}

function rebuildTensor(args: unknown[]): TensorRef {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  const [storage, offset, size, stride] = args;
  if (args.length < 4 || !(storage instanceof StorageRef)) throw new Error(`expects (storage, offset, size, stride, ...), got ${args.length} arguments`);
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new Error(`storage offset ${String(offset)} is invalid`);
  const shape = intTuple(size, "size");
  const strides = intTuple(stride, "stride");
  if (strides.length !== shape.length) throw new Error(`size ${dims(shape)} and stride ${dims(strides)} differ in rank`);
  return new TensorRef(storage, offset as number, shape, strides);
}

function isTensor(v: unknown): v is TensorRef {
  return v instanceof TensorRef;
}

const orderedDict: GlobalHandler = {
  // OrderedDict() then SETITEMS; a state dict's `_metadata` comes via BUILD and is dropped.
  call: (args) => {
    if (args.length !== 0) throw new Error(`expects no arguments`);
    return allowBuild(new Map(), (obj) => obj);
  },
};

/** The whitelist: everything a state dict (and a typical training checkpoint) needs, nothing else. */
export const TORCH_GLOBALS: ReadonlyMap<string, GlobalHandler> = new Map<string, GlobalHandler>([
  ["collections.OrderedDict", orderedDict],
  ["torch._utils._rebuild_tensor_v2", { call: rebuildTensor }],
  [
    "torch._utils._rebuild_parameter",
    {
      call: ([data]) => {
        if (!isTensor(data)) throw new Error(`expects a tensor, got ${describe(data)}`);
        return data;
      },
    },
  ],
  [
    "torch._utils._rebuild_parameter_with_state",
    {
      call: ([data]) => {
        if (!isTensor(data)) throw new Error(`expects a tensor, got ${describe(data)}`);
        return data;
      },
    },
  ],
  [
    "torch._tensor._rebuild_from_type_v2",
    {
      // (func, new_type, args, state): only plain tensors/parameters rebuilt by a whitelisted func.
      call: ([func, newType, args]) => {
        if (!(func instanceof PyGlobal) || !func.handler.call) throw new Error(`expects a whitelisted rebuild function`);
        if (!(newType instanceof PyGlobal) || !["torch.Tensor", "torch.nn.parameter.Parameter"].includes(newType.qualname)) {
          throw new Error(`tensor subclass ${describe(newType)} is not supported`);
        }
        if (!(args instanceof PyTuple)) throw new Error(`arguments are not a tuple`);
        return func.handler.call(args.items);
      },
    },
  ],
  ["torch.Tensor", {}],
  ["torch.nn.parameter.Parameter", {}],
  ...Object.keys(STORAGE_TYPES).map((n) => [`torch.${n}`, {}] as [string, GlobalHandler]),
]);

/** A zip checkpoint opened for reading: the unpickled object tree plus lazy tensor reads. */
export class TorchZipCheckpoint {
  readonly root: unknown;

  private constructor(
    readonly path: string,
    private readonly zip: ZipArchive,
    root: unknown,
  ) {
    this.root = root;
  }

  static open(path: string): TorchZipCheckpoint {
    const zip = ZipArchive.open(path);
    try {
      const pkls = zip.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n));
      if (pkls.length !== 1) {
        throw new PickleError(`${path}: expected one <dir>/data.pkl in the zip (a torch.save checkpoint), found ${pkls.length ? pkls.slice(0, 3).map(quoted).join(", ") : "none"}`);
      }
      const dir = pkls[0]!.slice(0, -"data.pkl".length);
      if (zip.has(`${dir}byteorder`)) {
        const order = new TextDecoder().decode(zip.read(`${dir}byteorder`, 16)).trim();
        if (order !== "little") throw new PickleError(`${path}: storages are ${quoted(order)}-endian; re-save the checkpoint on a little-endian machine`);
      }
      const persistentLoad = (pid: unknown): StorageRef => {
        // ('storage', storage_type, key, location, numel)
        if (!(pid instanceof PyTuple) || pid.items[0] !== "storage" || pid.items.length !== 5) {
          throw new PickleError(`${path}: unsupported persistent id ${describe(pid)}`);
        }
        const [, type, key, , numel] = pid.items;
        const dtype = type instanceof PyGlobal && type.module === "torch" ? STORAGE_TYPES[type.name] : undefined;
        if (!dtype) throw new PickleError(`${path}: unsupported storage type ${describe(type)}`);
        if (typeof key !== "string" || !Number.isSafeInteger(numel) || (numel as number) < 0) {
          throw new PickleError(`${path}: malformed storage id (key ${typeof key === "string" ? quoted(key) : describe(key)}, numel ${typeof numel === "number" || typeof numel === "bigint" ? String(numel) : describe(numel)})`);
        }
        const entry = `${dir}data/${key}`;
        if (!zip.has(entry)) throw new PickleError(`${path}: storage ${quoted(key)} has no entry ${quoted(entry)} in the zip (truncated or corrupt file)`);
        const { size: have, method } = zip.entry(entry);
        const want = (numel as number) * ST_DTYPE_BYTES[dtype];
        if (have < want) throw new PickleError(`${path}: storage ${quoted(key)} holds ${have} bytes, its ${numel} ${dtype} elements need ${want}`);
        // A deflated storage is inflated whole: its declared size is what it may inflate to.
        if (method !== 0 && have !== want) {
          throw new PickleError(`${path}: deflated storage ${quoted(key)} claims ${have} bytes, its ${numel} ${dtype} elements take ${want} (corrupt or malicious file)`);
        }
        return new StorageRef(entry, dtype, numel as number);
      };
      const root = unpickle(zip.read(pkls[0]!, MAX_PICKLE_BYTES), { globals: TORCH_GLOBALS, persistentLoad, source: `${path}:${pkls[0]}` });
      return new TorchZipCheckpoint(path, zip, root);
    } catch (e) {
      zip.close();
      throw e;
    }
  }

  /**
   * The tensor's elements in C order as little-endian bytes. A strided view
   * (e.g. a saved transpose) is gathered into contiguous order; only the
   * span of the storage the view touches is read.
   */
  readContiguous(t: TensorRef, name: string): Uint8Array {
    const es = ST_DTYPE_BYTES[t.dtype];
    const n = shapeNumel(t.shape);
    if (n === 0) return new Uint8Array(0);
    let last = t.offset; // the highest element index the view touches
    for (let i = 0; i < t.shape.length; i++) last += (t.shape[i]! - 1) * t.stride[i]!;
    if (last >= t.storage.numel) {
      throw new PickleError(
        `${this.path}: tensor ${quoted(name)}: view (offset ${t.offset}, size ${dims(t.shape)}, stride ${dims(t.stride)}) reaches element ${last} of a ${t.storage.numel}-element storage`,
      );
    }
    // A view that repeats elements (a stride of 0, as `expand` makes, or
    // overlapping strides) can claim far more elements than its storage
    // holds: `zeros(1).expand(2**29)` is 747 bytes on disk and 2 GiB in C
    // order. No weight is saved that way, so such a view is refused unless it
    // fits in its storage, which bounds every read by the file's own data.
    if (n > t.storage.numel) {
      throw new PickleError(
        `${this.path}: tensor ${quoted(name)}: view (size ${dims(t.shape)}, stride ${dims(t.stride)}) repeats the elements of its ${t.storage.numel}-element storage to ${n}; save it with .contiguous() (or .clone()) first`,
      );
    }
    const span = this.zip.readRange(t.storage.entry, t.offset * es, (last - t.offset + 1) * es);
    if (isContiguous(t.shape, t.stride)) return span;
    return gather(span, t.shape, t.stride, es);
  }

  /** How many times storage data was inflated (each deflated storage once, while it stays cached). */
  get inflations(): number {
    return this.zip.inflations;
  }

  close(): void {
    this.zip.close();
  }
}

/** Whether a view with these strides is its span in C order (then read as it is, not gathered; exported for tests). */
export function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! !== 1 && stride[i]! !== expect) return false;
    expect *= shape[i]!;
  }
  return true;
}

/** Copies a strided view (element strides, relative to the span's start) into C order. */
function gather(src: Uint8Array, shape: number[], stride: number[], es: number): Uint8Array {
  const n = shapeNumel(shape);
  const out = new Uint8Array(n * es);
  // Move whole elements through typed views (8-byte elements as two words).
  const words = es === 8 ? 2 : 1;
  const View = es === 1 ? Uint8Array : es === 2 ? Uint16Array : Uint32Array;
  const s = new View(src.buffer as ArrayBuffer, src.byteOffset, src.byteLength / (es / words));
  const d = new View(out.buffer, 0, (n * es) / (es / words));
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let srcElem = 0;
  for (let o = 0; o < n; o++) {
    if (words === 1) d[o] = s[srcElem]!;
    else {
      d[2 * o] = s[2 * srcElem]!;
      d[2 * o + 1] = s[2 * srcElem + 1]!;
    }
    // Odometer increment over the multi-index, updating the source element.
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]! += 1;
      srcElem += stride[k]!;
      if (idx[k]! < shape[k]!) break;
      srcElem -= stride[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
  return out;
}
