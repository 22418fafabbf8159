// One target's cases, run in this process: the loop the child process of the
// supervisor runs. Each case is regenerated from (run seed, target, index),
// parsed, timed in CPU time (the machine's cores are shared, so wall time
// measures the neighbours) and classified. Progress goes to a heartbeat file
// after every case, so the supervisor knows which case hung or killed the
// process; failures are appended to a JSON-lines file as they happen.
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { getHeapStatistics } from "node:v8";
import { caseSeed, mutate, Rng } from "./mutate.js";
import type { Seed, Target } from "./targets.js";

export interface FuzzCase {
  index: number;
  seed: Seed;
  bytes: Uint8Array;
  steps: string[];
}

export type FailureKind = "raw-error" | "unnamed-file" | "long-message" | "slow" | "memory" | "hang" | "died";

export interface Failure {
  target: string;
  runSeed: number;
  index: number;
  kind: FailureKind;
  seedLabel: string;
  steps: string[];
  /** Error name and message (cut), and the first stack frame. */
  error?: string;
  stackTop?: string;
  cpuMs?: number;
  /** Where the input was saved. */
  input?: string;
}

export function makeCase(target: Target, seeds: readonly Seed[], runSeed: number, index: number): FuzzCase {
  const rng = new Rng(caseSeed(runSeed, target.name, index));
  const seed = rng.pick(seeds);
  const { bytes, steps } = mutate(seed.bytes, rng, target.mutators(seed));
  return { index, seed, bytes, steps };
}

/** Saves a failing case's input beside a description; returns the input's path. */
export function saveCase(outDir: string, target: Target, runSeed: number, c: FuzzCase, failure: Omit<Failure, "input">): string {
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, `${target.name}-seed${runSeed}-case${c.index}`);
  const input = `${base}.${target.ext(c.seed)}`;
  writeFileSync(input, c.bytes);
  writeFileSync(`${base}.json`, `${JSON.stringify({ ...failure, input }, null, 2)}\n`);
  return input;
}

// Heartbeat layout: float64 slots, written as each case starts (its index, the counts so far).
export const HB = { index: 0, done: 1, accepted: 2, rejected: 3, skipped: 4, maxCpuUs: 5, sumCpuUs: 6, maxRssKb: 7, ended: 8, slots: 9 } as const;

/** Where and how to run a range of cases (the child receives this plus the target's name). */
export interface CampaignSpec {
  runSeed: number;
  from: number;
  to: number;
  /** Scratch folder (seeds, the file each case is written to). */
  tmp: string;
  /** Where failing inputs are saved. */
  outDir: string;
  heartbeat: string;
  failures: string;
  /** CPU time above which a case is a failure. */
  slowMs: number;
  /** Peak RSS above which the case that crossed it is a failure. */
  memoryMb: number;
  /**
   * ArrayBuffer memory a case may add (external memory after the case less
   * before it). Linux gives a large typed array zero pages that are not
   * resident until written, so a header-sized allocation that is refused
   * before it is filled never shows in the RSS.
   */
  allocMb: number;
}

export interface CampaignOptions extends CampaignSpec {
  target: Target;
}

const MAX_MESSAGE = 1000;

/** The innermost stack frame in a source file (not Node's own code, nor a dependency's). */
function stackTop(e: unknown): string {
  const lines = e instanceof Error && e.stack ? e.stack.split("\n").slice(1) : [];
  const ours = lines.find((l) => /\/[^:()]+\.[cm]?[jt]s:\d+/.test(l) && !l.includes("/node_modules/")) ?? lines[0] ?? "";
  return ours.trim().replace(/^at /, "").replace(/\(?file:\/\/|\(/, "").replace(/\)$/, "");
}

/** Why a thrown value is a failure, or null if it is the parser's own error, naming the file, briefly. */
function judge(thrown: unknown, target: Target, path: string): Pick<Failure, "kind" | "error" | "stackTop"> | null {
  const own = target.errors.some((E) => thrown instanceof E);
  const name = thrown instanceof Error ? thrown.name : typeof thrown;
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  const stack = stackTop(thrown);
  if (!own) return { kind: "raw-error", error: `${name}: ${message.slice(0, 500)}`, stackTop: stack };
  if (!message.includes(path)) return { kind: "unnamed-file", error: `${name}: ${message.slice(0, 500)}`, stackTop: stack };
  if (message.length > MAX_MESSAGE) {
    return { kind: "long-message", error: `${name}: message of ${message.length} characters: ${message.slice(0, 200)}…`, stackTop: stack };
  }
  return null;
}

/**
 * This process's peak resident memory (kB) since it started. Not
 * getrusage's maxRSS: Linux carries that across exec, so a child inherits
 * the peak of the process it was forked from (a vitest worker that has run
 * the GPU tests: 375 MB before its first case). VmHWM belongs to the
 * process's own address space.
 */
function peakRssKb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]);
  } catch {
    // not Linux: fall back to getrusage
  }
  return process.resourceUsage().maxRSS;
}

export function runCampaign(o: CampaignOptions): void {
  const seeds = o.target.seeds(o.tmp);
  const hb = new Float64Array(HB.slots);
  const hbFd = openSync(o.heartbeat, "w");
  const beat = (): void => {
    writeSync(hbFd, hb, 0, hb.byteLength, 0);
  };
  let memoryReported = false;
  try {
    for (let i = o.from; i < o.to; i++) {
      hb[HB.index] = i;
      beat();
      const c = makeCase(o.target, seeds, o.runSeed, i);
      const path = join(o.tmp, `case.${o.target.ext(c.seed)}`);
      let skipped = false;
      const ext0 = getHeapStatistics().external_memory;
      const t0 = process.cpuUsage();
      let verdict: ReturnType<typeof judge> = null;
      let threw = false;
      try {
        o.target.run(c.bytes, c.seed, { path, skippedLarge: () => (skipped = true) });
      } catch (e) {
        threw = true;
        verdict = judge(e, o.target, path);
      }
      const t = process.cpuUsage(t0);
      const cpuUs = t.user + t.system;
      const addedMb = (getHeapStatistics().external_memory - ext0) / 2 ** 20;
      const rssKb = peakRssKb();
      hb[HB.maxCpuUs] = Math.max(hb[HB.maxCpuUs]!, cpuUs);
      hb[HB.sumCpuUs]! += cpuUs;
      hb[HB.maxRssKb] = rssKb;
      hb[HB.ended]! += 1;
      if (skipped) hb[HB.skipped]! += 1;
      if (!threw) hb[HB.accepted]! += 1;
      else if (!verdict) hb[HB.rejected]! += 1;

      const base = { target: o.target.name, runSeed: o.runSeed, index: i, seedLabel: c.seed.label, steps: c.steps, cpuMs: cpuUs / 1000 };
      const found: Omit<Failure, "input">[] = verdict ? [{ ...base, ...verdict }] : [];
      if (cpuUs / 1000 > o.slowMs) found.push({ ...base, kind: "slow", error: `took ${(cpuUs / 1000).toFixed(0)} ms of CPU (limit ${o.slowMs})` });
      if (!memoryReported && rssKb / 1024 > o.memoryMb) {
        memoryReported = true;
        found.push({ ...base, kind: "memory", error: `peak RSS reached ${(rssKb / 1024).toFixed(0)} MB (limit ${o.memoryMb})` });
      } else if (addedMb > o.allocMb) {
        found.push({ ...base, kind: "memory", error: `ArrayBuffers grew by ${addedMb.toFixed(0)} MB during the case (limit ${o.allocMb}; allocated, if not resident)` });
      }
      for (const f of found) {
        const input = saveCase(o.outDir, o.target, o.runSeed, c, f);
        appendFileSync(o.failures, `${JSON.stringify({ ...f, input })}\n`);
      }
    }
    hb[HB.index] = o.to;
    hb[HB.done] = 1;
    beat();
  } finally {
    closeSync(hbFd);
  }
}
