// NumPy-equivalent percentiles (method "linear") by selection instead of a
// full sort: a CT volume has up to ~100M voxels, and only two order
// statistics per percentile are needed. Three-way partitioning keeps the
// selection linear on CT data, where many voxels share a value. Integer
// volumes (int16 CT) are counted in a histogram instead: no copy at all.

/**
 * The median of three values: the quickselect's pivot, taken from the first,
 * middle and last of a range so that sorted and reverse-sorted runs (common
 * in a volume read row by row) still halve the range at each step.
 */
export function medianOfThree(x: number, y: number, z: number): number {
  return x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
}

/** Puts the k-th smallest value of a[lo..hi] at index k (a is reordered). */
function select(a: Float32Array, k: number, lo: number, hi: number): void {
  while (hi - lo > 16) {
    const pivot = medianOfThree(a[lo]!, a[lo + ((hi - lo) >> 1)]!, a[hi]!);
    // Dutch-flag partition: [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot.
    let lt = lo, i = lo, gt = hi;
    while (i <= gt) {
      const v = a[i]!;
      if (v < pivot) {
        a[i] = a[lt]!;
        a[lt] = v;
        lt++;
        i++;
      } else if (v > pivot) {
        a[i] = a[gt]!;
        a[gt] = v;
        gt--;
      } else {
        i++;
      }
    }
    if (k < lt) hi = lt - 1;
    else if (k > gt) lo = gt + 1;
    else return;
  }
  // Insertion sort of the small remainder.
  for (let i = lo + 1; i <= hi; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= lo && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
}

function checkQs(n: number, qs: readonly number[]): void {
  if (n === 0) throw new Error("percentile: no values (the set is empty)");
  for (const q of qs) {
    if (!(q >= 0 && q <= 100)) throw new Error(`percentile: q = ${q} is outside [0, 100]`);
  }
}

/**
 * NumPy 1.2x's linear percentile q of n values, given `pair(prev, next)`:
 * the order statistics around the virtual index `(n−1)·q/100` (in float64).
 * `b − a` is taken in float32, then `_lerp` in float64 (from the upper
 * neighbour when the fraction is ≥ 0.5).
 */
function linear(n: number, q: number, pair: (prev: number, next: number) => [number, number]): number {
  const virt = (n - 1) * (q / 100);
  let prev = Math.floor(virt);
  let next = prev + 1;
  if (virt >= n - 1) prev = next = n - 1;
  const gamma = virt - Math.floor(virt);
  const [lo, hi] = pair(prev, next);
  const diff = Math.fround(hi - lo);
  return gamma >= 0.5 ? hi - diff * (1 - gamma) : lo + diff * gamma;
}

/**
 * `np.percentile(values, qs)` for float32 data, linear interpolation (see
 * `linear`). `scratch` (default: a copy) is reordered; pass `values` itself
 * to select in place without copying.
 */
export function percentiles(values: Float32Array, qs: readonly number[], scratch?: Float32Array): number[] {
  const n = values.length;
  checkQs(n, qs);
  const a = scratch ?? values.slice();
  if (a.length !== n) throw new Error(`percentile: scratch has ${a.length} values, need ${n}`);
  return qs.map((q) =>
    linear(n, q, (prev, next) => {
      select(a, prev, 0, n - 1);
      const lo = a[prev]!;
      let hi = lo;
      if (next !== prev) {
        // After selection everything right of `prev` is ≥ a[prev]: its minimum is the next order statistic.
        hi = Infinity;
        for (let i = prev + 1; i < n; i++) if (a[i]! < hi) hi = a[i]!;
      }
      return [lo, hi];
    }),
  );
}

/** Integer arrays whose whole value range a histogram can count. */
export type SmallIntArray = Int16Array | Uint16Array | Int8Array | Uint8Array;

/**
 * `percentiles` of the values of `data` above `above`, for integer data:
 * the same numbers (the same order statistics), counted in a histogram of
 * the type's range instead of selected from a float32 copy of the values,
 * which for a CT volume would be hundreds of MB.
 */
export function integerPercentiles(data: SmallIntArray, above: number, qs: readonly number[]): number[] {
  const min = data instanceof Int16Array ? -32768 : data instanceof Int8Array ? -128 : 0;
  const bins = data instanceof Int16Array || data instanceof Uint16Array ? 65536 : 256;
  const counts = new Float64Array(bins);
  let n = 0;
  for (let x = 0; x < data.length; x++) {
    const v = data[x]!;
    if (v > above) {
      counts[v - min]!++;
      n++;
    }
  }
  checkQs(n, qs);
  /** The k-th smallest counted value (0-based). */
  const kth = (k: number) => {
    let seen = 0;
    for (let b = 0; b < bins; b++) {
      seen += counts[b]!;
      if (seen > k) return b + min;
    }
    throw new Error(`percentile: internal error, order statistic ${k} of ${n} not found`);
  };
  return qs.map((q) => linear(n, q, (prev, next) => [kth(prev), kth(next)]));
}

/** One percentile; see `percentiles`. */
export function percentile(values: Float32Array, q: number, scratch?: Float32Array): number {
  return percentiles(values, [q], scratch)[0]!;
}
