// GPU tensors: a shape, a dtype and a reference-counted storage buffer.
// Tensors are always contiguous (C order, offset 0); `reshape` is a
// zero-copy view sharing the storage, other layout changes are kernels.
import { gpu } from "./device.js";
import { TENSOR_BRAND, trackInScope } from "./scope.js";

export type DType = "f32" | "f16" | "i32" | "u32";

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f16: 2, i32: 4, u32: 4 };

export type HostArray = Float32Array | Int32Array | Uint32Array | Uint16Array;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function checkShape(op: string, shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${op}: invalid shape ${shapeStr(shape)}`);
  }
}

/** A GPU buffer shared by a tensor and its views; returned to the pool at refcount 0. */
class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    readonly bytes: number,
  ) {}
}

export class Tensor {
  readonly [TENSOR_BRAND] = true;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  private storage: Storage | null;

  private constructor(shape: readonly number[], dtype: DType, storage: Storage) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = numel(shape);
    this.storage = storage;
    trackInScope(this);
  }

  /** An uninitialised tensor (contents undefined until a kernel writes it). */
  static empty(shape: readonly number[], dtype: DType = "f32"): Tensor {
    checkShape("empty", shape);
    const g = gpu();
    g.checkAlive("empty");
    const bytes = numel(shape) * BYTES_PER_ELEMENT[dtype];
    if (bytes > g.maxBufferBytes) {
      throw new Error(
        `empty: tensor ${shapeStr(shape)} ${dtype} needs ${bytes} bytes, more than this adapter's maxBufferSize ${g.maxBufferBytes}`,
      );
    }
    return new Tensor(shape, dtype, new Storage(g.pool.acquire(Math.max(4, bytes)), bytes));
  }

  /** Uploads host data; the array type must match the dtype. */
  static from(data: HostArray | readonly number[], shape: readonly number[], dtype: DType = "f32"): Tensor {
    checkShape("from", shape);
    const host = Array.isArray(data) ? toHost(data as readonly number[], dtype) : (data as HostArray);
    if (host.length !== numel(shape)) {
      throw new Error(`from: ${host.length} values do not fill shape ${shapeStr(shape)} (${numel(shape)} elements)`);
    }
    const expected = HOST_TYPE[dtype];
    if (!(host instanceof expected)) {
      throw new Error(`from: dtype ${dtype} needs a ${expected.name}, got ${host.constructor.name}`);
    }
    const t = Tensor.empty(shape, dtype);
    if (host.byteLength > 0) t.write(host);
    return t;
  }

  static zeros(shape: readonly number[], dtype: DType = "f32"): Tensor {
    const t = Tensor.empty(shape, dtype);
    const g = gpu();
    g.flush();
    const enc = g.device.createCommandEncoder();
    enc.clearBuffer(t.buffer, 0, Math.ceil(t.byteLength / 4) * 4);
    g.device.queue.submit([enc.finish()]);
    return t;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  get byteLength(): number {
    return this.size * BYTES_PER_ELEMENT[this.dtype];
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The storage buffer; throws a clear error if the tensor was disposed. */
  get buffer(): GPUBuffer {
    if (!this.storage) throw new Error(`tensor ${shapeStr(this.shape)} ${this.dtype} was used after dispose()`);
    return this.storage.buffer;
  }

  /** Names the op using a disposed tensor. */
  assertAlive(op: string): void {
    if (!this.storage) throw new Error(`${op}: input tensor ${shapeStr(this.shape)} ${this.dtype} was disposed`);
  }

  /** Overwrites the whole tensor with host data. */
  write(host: HostArray, elemOffset = 0): void {
    this.assertAlive("write");
    if (elemOffset + host.length > this.size) {
      throw new Error(`write: ${host.length} values at offset ${elemOffset} overflow tensor ${shapeStr(this.shape)}`);
    }
    // writeBuffer needs a multiple of 4 bytes; f16 tensors of odd length get padded.
    let view: ArrayBufferView = host;
    if (host.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(host.byteLength / 4) * 4);
      padded.set(new Uint8Array(host.buffer, host.byteOffset, host.byteLength));
      view = padded;
    }
    gpu().write(this.buffer, elemOffset * BYTES_PER_ELEMENT[this.dtype], view);
  }

  /** Zero-copy view with a new shape of the same element count; -1 infers one axis. */
  reshape(shape: readonly number[]): Tensor {
    this.assertAlive("reshape");
    const s = [...shape];
    const infer = s.indexOf(-1);
    if (infer >= 0) {
      const rest = numel(s.filter((_, i) => i !== infer));
      s[infer] = rest === 0 ? 0 : this.size / rest;
    }
    checkShape("reshape", s);
    if (numel(s) !== this.size) {
      throw new Error(`reshape: cannot view ${shapeStr(this.shape)} (${this.size} elements) as ${shapeStr(shape)}`);
    }
    this.storage!.refs += 1;
    return new Tensor(s, this.dtype, this.storage!);
  }

  /** Reads the tensor back to the host. */
  async read(): Promise<HostArray> {
    this.assertAlive("read");
    const bytes = await gpu().readBytes(this.buffer, 0, this.byteLength);
    return new HOST_TYPE[this.dtype](bytes);
  }

  /** Reads an f32 tensor back as a Float32Array. */
  async readFloat32(): Promise<Float32Array> {
    if (this.dtype !== "f32") throw new Error(`readFloat32: tensor is ${this.dtype}`);
    return (await this.read()) as Float32Array;
  }

  /** Releases this handle; the buffer returns to the pool when no view uses it. */
  dispose(): void {
    const s = this.storage;
    if (!s) return;
    this.storage = null;
    s.refs -= 1;
    if (s.refs === 0) gpu().pool.release(s.buffer);
  }

  toString(): string {
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype}${this.disposed ? ", disposed" : ""})`;
  }
}

const HOST_TYPE = {
  f32: Float32Array,
  f16: Uint16Array,
  i32: Int32Array,
  u32: Uint32Array,
} as const;

function toHost(values: readonly number[], dtype: DType): HostArray {
  if (dtype === "f16") throw new Error("from: f16 data must be given as a Uint16Array of half-float bits");
  return new HOST_TYPE[dtype](values);
}
