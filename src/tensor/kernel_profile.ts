// GPU time per kernel, from timestamp queries (the adapter's
// `timestamp-query` feature). While a profile is open, `Gpu.dispatch` gives
// each dispatch its own compute pass whose beginning and end write a pair
// of timestamps; at each submit the batch's pairs are resolved into a buffer
// and copied to a mappable one, and closing the profile reads them all and
// sums them per pipeline key. One pass per dispatch adds a little host
// cost, so a profile ranks kernels; step times come from unprofiled runs.
//
// Dawn quantises timestamps by default (a browser guard against timing
// attacks); device.ts turns that off so that short kernels measure.

/** GPU time of one pipeline (its cache key, e.g. `gemm_...`) over a profile. */
export interface KernelTime {
  kernel: string;
  calls: number;
  /** Sum of the dispatches' begin-to-end times, in milliseconds. */
  ms: number;
  /** The same split by workgroup grid (`x×y×z`), longest first: a kernel's grid tells its calls' sizes apart. */
  grids: { grid: string; calls: number; ms: number }[];
}

/** A timed dispatch: its pipeline key and workgroup grid. */
interface Launch {
  key: string;
  grid: string;
}

/** A resolved batch awaiting its read-back: the copy's target and each pair's dispatch. */
interface PendingBatch {
  readback: GPUBuffer;
  launches: Launch[];
}

export class KernelProfiler {
  private readonly device: GPUDevice;
  /** Timestamp pairs one batch may hold (the Gpu's dispatches per submit). */
  private readonly capacity: number;
  private querySet: GPUQuerySet | null = null;
  private launches: Launch[] = [];
  private readonly pending: PendingBatch[] = [];

  constructor(device: GPUDevice, dispatchesPerBatch: number) {
    this.device = device;
    this.capacity = dispatchesPerBatch;
  }

  /** The descriptor of a pass holding one dispatch of `key` over `grid` workgroups, its timestamps at the batch's next pair. */
  passFor(key: string, grid: readonly [number, number, number]): GPUComputePassDescriptor {
    if (this.launches.length >= this.capacity) throw new Error(`kernel profile: more than ${this.capacity} dispatches in one batch`);
    this.querySet ??= this.device.createQuerySet({ type: "timestamp", count: 2 * this.capacity });
    const pair = this.launches.length;
    this.launches.push({ key, grid: grid.join("×") });
    return { timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * pair, endOfPassWriteIndex: 2 * pair + 1 } };
  }

  /**
   * Records the batch's resolve and read-back copy into `encoder`, just
   * before it is finished and submitted. Returns the resolve buffer, which
   * the caller destroys after the submit. The query set is reused by the
   * next batch: its writes are submitted after this resolve.
   */
  resolveInto(encoder: GPUCommandEncoder): GPUBuffer | null {
    if (this.launches.length === 0 || !this.querySet) return null;
    const bytes = this.launches.length * 2 * 8;
    const resolved = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const readback = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    encoder.resolveQuerySet(this.querySet, 0, this.launches.length * 2, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readback, 0, bytes);
    this.pending.push({ readback, launches: this.launches });
    this.launches = [];
    return resolved;
  }

  /**
   * Reads every resolved batch (the caller has submitted and waited for
   * them) and returns the time per pipeline key, longest first.
   */
  async collect(wait: <T>(p: Promise<T>) => Promise<T>): Promise<KernelTime[]> {
    type Sum = { calls: number; ns: number };
    const totals = new Map<string, Sum & { grids: Map<string, Sum> }>();
    for (const batch of this.pending.splice(0)) {
      await wait(batch.readback.mapAsync(GPUMapMode.READ));
      const stamps = new BigUint64Array(batch.readback.getMappedRange());
      batch.launches.forEach(({ key, grid }, i) => {
        const begin = stamps[2 * i]!;
        const end = stamps[2 * i + 1]!;
        // A backend may leave a pair unwritten (zero) or out of order; count the call, not a bogus time.
        const ns = end > begin ? Number(end - begin) : 0;
        let t = totals.get(key);
        if (!t) totals.set(key, (t = { calls: 0, ns: 0, grids: new Map() }));
        const g = t.grids.get(grid) ?? { calls: 0, ns: 0 };
        t.grids.set(grid, g);
        for (const sum of [t, g]) {
          sum.calls++;
          sum.ns += ns;
        }
      });
      batch.readback.unmap();
      batch.readback.destroy();
    }
    this.querySet?.destroy();
    this.querySet = null;
    const longestFirst = <T extends { ms: number }>(a: T, b: T) => b.ms - a.ms;
    return [...totals]
      .map(([kernel, t]) => ({
        kernel,
        calls: t.calls,
        ms: t.ns / 1e6,
        grids: [...t.grids].map(([grid, g]) => ({ grid, calls: g.calls, ms: g.ns / 1e6 })).sort(longestFirst),
      }))
      .sort((a, b) => longestFirst(a, b) || a.kernel.localeCompare(b.kernel));
  }
}

/**
 * The kernel family of a pipeline key, which names the op. A variant's key
 * (the kernel's name, then its variant as JSON) gives the name, with the
 * variant's `op` where it has one (`binary:{"op":"add",…}` → `binary:add`,
 * `softmax:{"lanes":8,…}` → `softmax`); other keys give their first two
 * `:`-separated fields (`add_n:4` → `add_n:4`).
 */
export function kernelFamily(key: string): string {
  const colon = key.indexOf(":");
  if (colon >= 0 && key[colon + 1] === "{") {
    const name = key.slice(0, colon);
    try {
      const op = (JSON.parse(key.slice(colon + 1)) as { op?: unknown }).op;
      return typeof op === "string" ? `${name}:${op}` : name;
    } catch {
      return name;
    }
  }
  return key.split(":").slice(0, 2).join(":");
}
