// Seeded random numbers for training (window sampling, augmentation, prompt
// sampling): xoshiro128** (Blackman & Vigna), 32-bit arithmetic only, so it
// is fast in JS and its whole state is four u32 that a checkpoint can save;
// a resumed run then draws exactly the numbers the uninterrupted run would.

/** splitmix32: spreads a seed over the four state words (never all zero). */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

export class Rng {
  private s = new Uint32Array(4);

  /** A generator seeded by a 32-bit integer (other numbers are truncated to u32). */
  constructor(seed = 0) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    const next = splitmix32(Math.trunc(seed));
    for (let i = 0; i < 4; i++) this.s[i] = next();
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  /** The next uniform u32. */
  u32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.u32() >>> 5; // 27 bits
    const lo = this.u32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Uniform integer in [0, n), unbiased (rejection of the short last bucket); n ≤ 2^32. */
  below(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) throw new Error(`Rng.below: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.u32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform integer in [lo, hi], both inclusive (like Python's random.randint). */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) throw new Error(`Rng.int: need integers lo ≤ hi, got ${lo}, ${hi}`);
    return lo + this.below(hi - lo + 1);
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /**
   * k distinct integers from [0, n) in random order (k clamped to n).
   * Floyd's algorithm: O(k) time and memory however large n is, so a few
   * voxels can be drawn from a whole window without listing it.
   */
  distinct(n: number, k: number): number[] {
    const m = Math.min(Math.max(0, Math.floor(k)), n);
    const chosen = new Set<number>();
    const order: number[] = [];
    for (let j = n - m; j < n; j++) {
      const t = this.below(j + 1);
      const v = chosen.has(t) ? j : t;
      chosen.add(v);
      order.push(v);
    }
    // Floyd yields a uniform set but not a uniform order: shuffle it.
    for (let i = order.length - 1; i > 0; i--) {
      const r = this.below(i + 1);
      [order[i], order[r]] = [order[r]!, order[i]!];
    }
    return order;
  }

  /** The four state words (save with a checkpoint). */
  state(): [number, number, number, number] {
    return [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!];
  }

  /** Restores a state from `state()`. */
  setState(state: readonly number[]): void {
    if (state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) || state.every((w) => w === 0)) {
      throw new Error(`Rng.setState: expected four u32 words, not all zero, got ${JSON.stringify(state)}`);
    }
    this.s.set(state);
  }

  /** An independent generator seeded from this one (e.g. one per data worker). */
  fork(): Rng {
    return new Rng(this.u32());
  }
}
