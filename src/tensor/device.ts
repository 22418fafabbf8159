// The one WebGPU device of the process: acquisition (in Node through Dawn,
// npm package `webgpu`, loaded by dawn.node.ts only when a device is first
// asked for; in a page or a worker from `navigator.gpu`), limits, error
// reporting, device loss, pipeline cache and command batching. Everything
// GPU-side in the library goes through `Gpu`.
import { BufferPool } from "./pool.js";
import { awaitGpu } from "./gpu_wait.js";
import { KernelProfiler, type KernelTime } from "./kernel_profile.js";

/** What the adapter is and what it allows; printed by `segvol smoke`. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  limits: Record<string, number>;
}

export class GpuUnavailableError extends Error {
  override name = "GpuUnavailableError";
}

export class GpuDeviceLostError extends Error {
  override name = "GpuDeviceLostError";
}

/** The error Node users see when Dawn finds no adapter, with the fix. */
export const NO_ADAPTER_HELP = [
  "No WebGPU adapter was found (Dawn through the npm package `webgpu`).",
  "On a machine without a GPU, install Mesa's lavapipe Vulkan driver, version 25 or newer",
  "(Dawn rejects older ones). On Debian bookworm:",
  "  echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list",
  "  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1",
  "and make sure XDG_RUNTIME_DIR is set (e.g. export XDG_RUNTIME_DIR=/tmp/xdg-$USER; mkdir -p $XDG_RUNTIME_DIR).",
  "On a machine with a GPU, install its Vulkan driver and the Vulkan loader. NVIDIA's driver",
  "(libGLX_nvidia.so.0) also needs the glvnd libraries; without them Vulkan reports",
  "'Found no drivers'. On Debian or Ubuntu (the set that worked on an NVIDIA H200):",
  "  apt-get install -y libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2",
].join("\n");


/** The error a page sees where the browser exposes no WebGPU (no `navigator.gpu`) or no adapter. */
export const NO_WEBGPU_HELP = [
  "This browser exposes no WebGPU (navigator.gpu), which segvol-webgpu needs.",
  "WebGPU is on by default in Chrome and Edge 113 or later (Windows, macOS, ChromeOS; Android 121+),",
  "Safari 26 or later, and Firefox 141 or later on Windows. Elsewhere (Chrome on Linux, older Firefox or Safari)",
  "enable it: Chrome/Chromium --enable-unsafe-webgpu (chrome://flags/#enable-unsafe-webgpu; on Linux also",
  "--enable-features=Vulkan), Firefox about:config dom.webgpu.enabled, Safari's WebGPU feature flag.",
  "WebGPU also needs a secure context: https://, or http://localhost / 127.0.0.1, not a file:// page.",
].join("\n");

let current: Gpu | null = null;
let pending: Promise<Gpu> | null = null;

export interface GpuOptions {
  /** Ask for `shader-f16` when the adapter has it (default true). */
  f16?: boolean;
  /** Lower the per-binding byte limit (tests use this to exercise chunking). */
  maxBindingBytes?: number;
  /** Pace Dawn's polling while awaiting the GPU instead of spinning a core (default true; see gpu_wait.ts). */
  pacedWaits?: boolean;
}

/** Dispatches queued before one submit; lavapipe favours few, large submits. */
const MAX_BATCHED_DISPATCHES = 64;
/**
 * Uniform blocks of one batch share one buffer (sub-ranges at the device's
 * offset alignment): a buffer per dispatch cost more than a small kernel's
 * run on lavapipe. 64 dispatches at 256-byte alignment need 16 KiB.
 */
const UNIFORM_ARENA_BYTES = 64 * 1024;

export class Gpu {
  readonly device: GPUDevice;
  readonly adapter: AdapterSummary;
  readonly hasF16: boolean;
  readonly hasSubgroups: boolean;
  /** The adapter's subgroup sizes in lanes (0 where unknown or without the subgroups feature). */
  readonly subgroupMinSize: number;
  readonly subgroupMaxSize: number;
  readonly pool: BufferPool;
  /** Largest byte range one storage binding may cover. */
  maxBindingBytes: number;
  readonly maxBufferBytes: number;
  readonly maxStorageBindings: number;
  readonly maxWorkgroupsPerDim: number;
  readonly offsetAlignment: number;
  /** Await GPU promises through `awaitGpu` (see gpu_wait.ts); a bench turns it off to compare. */
  pacedWaits: boolean;
  /** Dispatches recorded since the device was made (benchmarks report dispatches per step). */
  dispatches = 0;

  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | null = null;
  /** The open compute pass of the batch: consecutive dispatches share it (Dawn orders them); a copy or flush ends it. */
  private pass: GPUComputePassEncoder | null = null;
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  /** This batch's uniform buffer, mapped until the batch is submitted, and its bytes used. */
  private uniformArena: GPUBuffer | null = null;
  private uniformView: Uint8Array | null = null;
  private uniformUsed = 0;
  private readonly uniformAlignment: number;
  private batched = 0;
  private transient: GPUBuffer[] = [];
  /** Open while a kernel profile is being recorded (`startKernelProfile`). */
  private profiler: KernelProfiler | null = null;
  private lostReason: string | null = null;
  private errors: string[] = [];

  constructor(device: GPUDevice, adapter: AdapterSummary, opts: GpuOptions) {
    this.device = device;
    this.adapter = adapter;
    this.hasF16 = device.features.has("shader-f16");
    this.hasSubgroups = device.features.has("subgroups");
    const info = (device as unknown as { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
    this.subgroupMinSize = this.hasSubgroups ? (info?.subgroupMinSize ?? 0) : 0;
    this.subgroupMaxSize = this.hasSubgroups ? (info?.subgroupMaxSize ?? 0) : 0;
    const lim = device.limits;
    this.maxBufferBytes = lim.maxBufferSize;
    this.maxBindingBytes = Math.min(lim.maxStorageBufferBindingSize, opts.maxBindingBytes ?? Infinity);
    this.maxStorageBindings = lim.maxStorageBuffersPerShaderStage;
    this.maxWorkgroupsPerDim = lim.maxComputeWorkgroupsPerDimension;
    this.offsetAlignment = lim.minStorageBufferOffsetAlignment;
    this.uniformAlignment = lim.minUniformBufferOffsetAlignment;
    // Pacing patches Node's setImmediate for dawn.node's polling; a browser has neither.
    this.pacedWaits = (opts.pacedWaits ?? true) && inNode();
    this.pool = new BufferPool(device);
    device.lost.then((info) => {
      // `destroy()` during release also resolves this promise; only an
      // unexpected loss is an error worth reporting.
      if (info.reason !== "destroyed") this.lostReason = `${info.reason}: ${info.message}`;
      else this.lostReason ??= "the device was released";
    });
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      this.errors.push(ev.error.message);
    };
  }

  /** Throws if the device is gone; every op calls this before touching the GPU. */
  checkAlive(op: string): void {
    if (this.lostReason !== null) {
      throw new GpuDeviceLostError(`${op}: the WebGPU device was lost (${this.lostReason}); create a new one with initGpu()`);
    }
  }

  /** Surfaces validation errors Dawn reported asynchronously. */
  private checkErrors(): void {
    if (this.errors.length > 0) {
      const msgs = this.errors.splice(0);
      throw new Error(`WebGPU reported ${msgs.length} error(s): ${msgs.slice(0, 3).join(" | ")}`);
    }
  }

  /** Compiles a compute pipeline once per key; later calls return the cached one. */
  pipeline(key: string, code: () => string, entryPoint = "main"): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ code: code(), label: key });
      p = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint }, label: key });
      this.pipelines.set(key, p);
    }
    return p;
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  private getEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  /**
   * Records one compute dispatch. Binding 0 is the uniform block (when
   * `uniforms` is given), storage bindings follow in order from 1.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    storage: GPUBufferBinding[],
    uniforms: ArrayBuffer | null,
    workgroups: readonly [number, number, number],
  ): void {
    this.dispatches++;
    const entries: GPUBindGroupEntry[] = [];
    if (uniforms) entries.push({ binding: 0, resource: this.uniformRange(uniforms) });
    storage.forEach((b, i) => entries.push({ binding: i + 1, resource: b }));
    let layout = this.layouts.get(pipeline);
    if (!layout) {
      layout = pipeline.getBindGroupLayout(0);
      this.layouts.set(pipeline, layout);
    }
    const bindGroup = this.device.createBindGroup({ layout, entries });
    if (this.profiler) {
      // A pass of its own, timed from its beginning to its end.
      this.endPass();
      this.pass = this.getEncoder().beginComputePass(this.profiler.passFor(pipeline.label, workgroups));
    }
    this.pass ??= this.getEncoder().beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    if (this.profiler) this.endPass();
    if (++this.batched >= MAX_BATCHED_DISPATCHES) this.flush();
  }

  /** Copies a uniform block into this batch's arena (a new arena, after a submit, when it is full) and returns its binding. */
  private uniformRange(uniforms: ArrayBuffer): GPUBufferBinding {
    const size = Math.max(16, Math.ceil(uniforms.byteLength / 16) * 16);
    if (size > UNIFORM_ARENA_BYTES) throw new Error(`dispatch: a ${uniforms.byteLength}-byte uniform block exceeds ${UNIFORM_ARENA_BYTES} bytes`);
    let offset = Math.ceil(this.uniformUsed / this.uniformAlignment) * this.uniformAlignment;
    if (this.uniformArena && offset + size > UNIFORM_ARENA_BYTES) this.flush();
    if (!this.uniformArena) {
      this.uniformArena = this.device.createBuffer({ size: UNIFORM_ARENA_BYTES, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
      this.uniformView = new Uint8Array(this.uniformArena.getMappedRange());
      offset = 0;
    }
    this.uniformView!.set(new Uint8Array(uniforms), offset);
    this.uniformUsed = offset + size;
    return { buffer: this.uniformArena, offset, size };
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Records a buffer-to-buffer copy in order with the dispatches. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    if (++this.batched >= MAX_BATCHED_DISPATCHES) this.flush();
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (this.encoder) {
      this.endPass();
      if (this.uniformArena) {
        // A buffer must be unmapped before a submit that reads it.
        this.uniformArena.unmap();
        this.transient.push(this.uniformArena);
        this.uniformArena = null;
        this.uniformView = null;
        this.uniformUsed = 0;
      }
      const resolved = this.profiler?.resolveInto(this.encoder);
      if (resolved) this.transient.push(resolved);
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.batched = 0;
      for (const b of this.transient) b.destroy();
      this.transient = [];
    }
  }

  private wait<T>(p: Promise<T>): Promise<T> {
    return this.pacedWaits ? awaitGpu(p) : p;
  }

  /** Whether kernel profiles can be taken: the device has the `timestamp-query` feature. */
  get canProfileKernels(): boolean {
    return this.device.features.has("timestamp-query");
  }

  /**
   * Starts timing every dispatch on the GPU (see kernel_profile.ts) until
   * `stopKernelProfile`. Work recorded before this call is submitted first,
   * so it is not counted.
   */
  startKernelProfile(): void {
    if (!this.canProfileKernels) throw new Error("kernel profile: this device has no timestamp-query feature");
    if (this.profiler) throw new Error("kernel profile: a profile is already being recorded");
    this.flush();
    this.profiler = new KernelProfiler(this.device, MAX_BATCHED_DISPATCHES);
  }

  /** Ends the profile: waits for the GPU and returns the time per pipeline key, longest first. */
  async stopKernelProfile(): Promise<KernelTime[]> {
    const profiler = this.profiler;
    if (!profiler) throw new Error("kernel profile: no profile is being recorded (call startKernelProfile first)");
    this.flush();
    this.profiler = null;
    await this.sync();
    return profiler.collect((p) => this.wait(p));
  }

  /** Waits until the GPU has finished all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await this.wait(this.device.queue.onSubmittedWorkDone());
    this.checkErrors();
  }

  /**
   * Writes host data into a buffer. Pending commands are submitted first:
   * `queue.writeBuffer` runs before unsubmitted commands, and a pooled
   * buffer may still be read by them.
   */
  write(buffer: GPUBuffer, byteOffset: number, data: ArrayBufferView): void {
    this.flush();
    this.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Copies `bytes` from a GPU buffer to the host, in chunks of at most 64 MiB. */
  async readBytes(src: GPUBuffer, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    const out = new Uint8Array(bytes);
    const chunk = 64 * 1024 * 1024;
    const staging = this.device.createBuffer({
      size: Math.min(chunk, Math.max(4, Math.ceil(bytes / 4) * 4)),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      for (let done = 0; done < bytes; done += chunk) {
        const n = Math.min(chunk, bytes - done);
        // Copies and maps need multiples of 4 bytes (an odd-length f16 tensor
        // is not); storage buffers are allocated in 256-byte classes, so the
        // rounded range is always inside the source.
        const n4 = Math.min(Math.ceil(n / 4) * 4, src.size - byteOffset - done);
        this.copy(src, byteOffset + done, staging, 0, n4);
        this.flush();
        await this.wait(staging.mapAsync(GPUMapMode.READ, 0, n4));
        out.set(new Uint8Array(staging.getMappedRange(0, n4), 0, n), done);
        staging.unmap();
      }
    } catch (e) {
      this.checkAlive("read");
      throw e;
    } finally {
      staging.destroy();
    }
    this.checkErrors();
    return out.buffer;
  }

  /** Splits a 1-D workgroup count into a grid within the per-dimension limit. */
  grid(workgroups: number): [number, number, number] {
    const max = this.maxWorkgroupsPerDim;
    if (workgroups <= max) return [Math.max(1, workgroups), 1, 1];
    const y = Math.ceil(workgroups / max);
    return [Math.ceil(workgroups / y), y, 1];
  }

  destroy(): void {
    this.flush();
    this.pool.destroyAll();
    this.pipelines.clear();
    this.device.destroy();
  }
}

function summarise(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === "number") limits[key] = v;
  }
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    features: [...adapter.features].map(String).sort(),
    limits,
  };
}

/** Whether this is Node (or a runtime that says it is): the device then comes from Dawn. */
function inNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string";
}

/** The adapter: Dawn's in Node, the browser's elsewhere; throws GpuUnavailableError saying what is missing. */
async function requestAdapter(): Promise<GPUAdapter> {
  if (inNode()) {
    const dawn = await import("./dawn.node.js");
    const adapter = await dawn.requestDawnAdapter();
    if (!adapter) throw new GpuUnavailableError(NO_ADAPTER_HELP);
    return adapter;
  }
  const gpuApi = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpuApi) throw new GpuUnavailableError(NO_WEBGPU_HELP);
  const adapter = await gpuApi.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new GpuUnavailableError(`navigator.gpu found no adapter (the GPU is blocklisted or disabled).\n${NO_WEBGPU_HELP}`);
  return adapter;
}

async function acquire(opts: GpuOptions): Promise<Gpu> {
  const adapter = await requestAdapter();
  const summary = summarise(adapter);
  const want = (name: string) => adapter.features.has(name);
  const requiredFeatures: GPUFeatureName[] = [];
  if (opts.f16 !== false && want("shader-f16")) requiredFeatures.push("shader-f16");
  if (want("subgroups")) requiredFeatures.push("subgroups" as GPUFeatureName);
  if (want("timestamp-query")) requiredFeatures.push("timestamp-query");
  const l = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
  };
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: "segvol" });
  return new Gpu(device, summary, opts);
}

/** Returns the process's GPU, creating it on first use. */
export function initGpu(opts: GpuOptions = {}): Promise<Gpu> {
  if (current) return Promise.resolve(current);
  pending ??= acquire(opts).then(
    (g) => {
      current = g;
      pending = null;
      return g;
    },
    (e) => {
      pending = null;
      throw e;
    },
  );
  return pending;
}

/** The initialised GPU; ops call this, so `initGpu()` must have run first. */
export function gpu(): Gpu {
  if (!current) throw new GpuUnavailableError("The GPU is not initialised: await initGpu() before running tensor ops");
  return current;
}

/** Releases the device so the process can exit; a later initGpu() makes a new one. */
export function releaseGpu(): void {
  if (current) {
    current.destroy();
    current = null;
  }
}
