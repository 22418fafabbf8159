// The fuzzer's randomness and its format-blind byte mutations. Every case is
// derived from (run seed, target, case index) alone, so any case can be
// regenerated on its own: to reproduce a failure, to save the input of a
// case that hung, or to resume after one.

/** mulberry32: a small, fast 32-bit generator; plenty for choosing mutations. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 2^32). */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 2 ** 32) * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** FNV-1a over the parts, for per-case seeds. */
export function caseSeed(runSeed: number, target: string, index: number): number {
  let h = 0x811c9dc5;
  for (const ch of `${runSeed >>> 0}/${target}/${index}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** One mutation step: the new bytes and a short description, or null if it does not apply. */
export type Mutator = (bytes: Uint8Array, rng: Rng) => { bytes: Uint8Array; what: string } | null;

export const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x20, 0x30, 0x7b, 0x22];

/**
 * Integers that break length and offset arithmetic, for fields of `width`
 * bytes; `len` (the input's length) adds the off-by-one boundaries around it.
 */
export function interestingInts(width: 1 | 2 | 4 | 8, len: number): bigint[] {
  const bits = BigInt(width * 8);
  const max = (1n << bits) - 1n;
  const out = [0n, 1n, 2n, 3n, 4n, 8n, 16n, 64n, 255n, 256n, max, max >> 1n, (max >> 1n) + 1n, max - 1n];
  for (const near of [len, len - 1, len + 1, len - 8, len * 2, 32768, 65535, 65536, 2 ** 31, 2 ** 32]) {
    if (near >= 0) out.push(BigInt(near));
  }
  return out.map((v) => v & max);
}

/** Writes `value` as a `width`-byte integer at `at`, little- or big-endian. */
export function putInt(bytes: Uint8Array, at: number, width: number, value: bigint, littleEndian = true): void {
  for (let i = 0; i < width; i++) {
    const byte = Number((value >> BigInt(8 * i)) & 0xffn);
    bytes[littleEndian ? at + i : at + width - 1 - i] = byte;
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A position biased toward the start and the end, where headers and trailers live. */
function position(rng: Rng, len: number): number {
  const r = rng.below(4);
  if (r === 0) return rng.below(Math.min(len, 64));
  if (r === 1) return Math.max(0, len - 1 - rng.below(Math.min(len, 64)));
  return rng.below(len);
}

const flipBit: Mutator = (b, rng) => {
  if (b.byteLength === 0) return null;
  const out = b.slice();
  const at = position(rng, b.byteLength);
  const bit = rng.below(8);
  out[at]! ^= 1 << bit;
  return { bytes: out, what: `flip bit ${bit} of byte ${at}` };
};

const setByte: Mutator = (b, rng) => {
  if (b.byteLength === 0) return null;
  const out = b.slice();
  const at = position(rng, b.byteLength);
  const v = rng.chance(0.7) ? rng.pick(INTERESTING_BYTES) : rng.below(256);
  out[at] = v;
  return { bytes: out, what: `set byte ${at} to 0x${v.toString(16)}` };
};

const setInt: Mutator = (b, rng) => {
  const width = rng.pick([2, 4, 8] as const);
  if (b.byteLength < width) return null;
  const out = b.slice();
  const at = Math.min(position(rng, b.byteLength), b.byteLength - width);
  const v = rng.pick(interestingInts(width, b.byteLength));
  const le = rng.chance(0.8);
  putInt(out, at, width, v, le);
  return { bytes: out, what: `set ${width}-byte ${le ? "LE" : "BE"} int at ${at} to ${v}` };
};

const truncate: Mutator = (b, rng) => {
  if (b.byteLength === 0) return null;
  const at = rng.chance(0.5) ? rng.below(b.byteLength) : Math.max(0, b.byteLength - 1 - rng.below(Math.min(b.byteLength, 32)));
  return { bytes: b.slice(0, at), what: `truncate to ${at} bytes` };
};

const extend: Mutator = (b, rng) => {
  const n = rng.pick([1, 2, 7, 64, 1000, rng.range(1, 4096)]);
  const fill = rng.below(3);
  const tail = fill === 0 ? new Uint8Array(n) : fill === 1 ? rng.bytes(n) : new Uint8Array(n).fill(0xff);
  return { bytes: concat(b, tail), what: `append ${n} ${["zero", "random", "0xff"][fill]} bytes` };
};

const duplicateChunk: Mutator = (b, rng) => {
  if (b.byteLength === 0) return null;
  const from = rng.below(b.byteLength);
  const len = rng.range(1, Math.min(b.byteLength - from, rng.pick([8, 64, 512, 4096])));
  const to = rng.below(b.byteLength + 1);
  const chunk = b.slice(from, from + len);
  return { bytes: concat(b.subarray(0, to), chunk, b.subarray(to)), what: `copy bytes [${from}, ${from + len}) to ${to}` };
};

const deleteChunk: Mutator = (b, rng) => {
  if (b.byteLength === 0) return null;
  const from = rng.below(b.byteLength);
  const len = rng.range(1, Math.min(b.byteLength - from, rng.pick([1, 4, 64, 512])));
  return { bytes: concat(b.subarray(0, from), b.subarray(from + len)), what: `delete bytes [${from}, ${from + len})` };
};

const insertBytes: Mutator = (b, rng) => {
  const at = rng.below(b.byteLength + 1);
  const n = rng.range(1, 16);
  return { bytes: concat(b.subarray(0, at), rng.bytes(n), b.subarray(at)), what: `insert ${n} random bytes at ${at}` };
};

/** Format-blind mutations, weighted toward the small ones. */
export const GENERIC: readonly Mutator[] = [
  flipBit, flipBit, flipBit, setByte, setByte, setByte, setInt, setInt, truncate, extend, duplicateChunk, deleteChunk, insertBytes,
];

/**
 * Applies 1-4 mutations, each format-aware with probability `awareShare`
 * (falling back to a generic one where it does not apply).
 */
export function mutate(
  seed: Uint8Array,
  rng: Rng,
  aware: readonly Mutator[],
  awareShare = 0.5,
): { bytes: Uint8Array; steps: string[] } {
  let bytes = seed;
  const steps: string[] = [];
  const count = rng.pick([1, 1, 1, 2, 2, 3, 4]);
  for (let s = 0; s < count; s++) {
    let step = aware.length > 0 && rng.chance(awareShare) ? rng.pick(aware)(bytes, rng) : null;
    step ??= rng.pick(GENERIC)(bytes, rng);
    if (step) {
      bytes = step.bytes;
      steps.push(step.what);
    }
  }
  return { bytes, steps };
}
