// A model's parameters as the layers see them: named f32 tensors uploaded
// from a safetensors file on first use, with their shapes checked against
// what the configuration expects.
import { SafetensorsFile, loadTensorToGpu } from "../weights/safetensors.js";
import { keep } from "../tensor/scope.js";
import { shapeStr, type Tensor } from "../tensor/tensor.js";

export class ParamStore {
  private readonly gpuCache = new Map<string, Tensor>();

  constructor(
    readonly file: SafetensorsFile,
    readonly expected: Map<string, number[]>,
  ) {}

  private check(name: string): void {
    const want = this.expected.get(name);
    if (!want) throw new Error(`${this.file.path}: parameter "${name}" is not part of this model's configuration`);
    if (!this.file.has(name)) throw new Error(`${this.file.path}: parameter "${name}" is missing`);
    const got = this.file.info(name).shape;
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
      throw new Error(`${this.file.path}: parameter "${name}" has shape ${shapeStr(got)}, the config expects ${shapeStr(want)}`);
    }
  }

  /** The parameter on the GPU (uploaded once, owned by the store). */
  tensor(name: string): Tensor {
    let t = this.gpuCache.get(name);
    if (!t) {
      this.check(name);
      t = keep(loadTensorToGpu(this.file, name));
      this.gpuCache.set(name, t);
    }
    return t;
  }

  /** A tensor computed once from parameters (e.g. a split weight), owned by the store. */
  derived(key: string, make: () => Tensor): Tensor {
    let t = this.gpuCache.get(`derived:${key}`);
    if (!t) {
      t = keep(make());
      this.gpuCache.set(`derived:${key}`, t);
    }
    return t;
  }

  /** The parameter on the host, for the small ones computed there. */
  host(name: string): Float32Array {
    this.check(name);
    return this.file.readF32(name);
  }

  dispose(): void {
    for (const t of this.gpuCache.values()) t.dispose();
    this.gpuCache.clear();
  }
}
