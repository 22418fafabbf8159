// GPU buffer pool with byte accounting. Buffers are recycled by size class
// so that a forward pass, which frees and reallocates the same shapes every
// layer, does not create and destroy buffers in Dawn.

// Read lazily: the GPUBufferUsage global exists only once the webgpu module has set up globals.
const usage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Size classes: 256-byte steps up to 64 KiB, then four per power of two (≤19% waste). */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, bytes);
  if (b <= 65536) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

export interface MemoryStats {
  /** Bytes held by live tensors (their size classes). */
  current: number;
  /** Highest `current` since the last `resetPeak()`. */
  peak: number;
  /** Bytes of free buffers kept for reuse. */
  pooled: number;
  /** Live tensor storages. */
  buffers: number;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private current = 0;
  private peak = 0;
  private pooled = 0;
  private live = 0;

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) {
      this.pooled -= size;
    } else {
      buf = this.device.createBuffer({ size, usage: usage() });
    }
    this.current += size;
    this.live += 1;
    if (this.current > this.peak) this.peak = this.current;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const size = buf.size;
    this.current -= size;
    this.live -= 1;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf);
    this.pooled += size;
  }

  /** Destroys the free buffers (live ones are untouched). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.pooled = 0;
  }

  stats(): MemoryStats {
    return { current: this.current, peak: this.peak, pooled: this.pooled, buffers: this.live };
  }

  resetPeak(): void {
    this.peak = this.current;
  }

  destroyAll(): void {
    this.trim();
  }
}
