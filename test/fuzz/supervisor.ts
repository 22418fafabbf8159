// Runs fuzz campaigns in child processes and watches them. A parser that
// hangs cannot be interrupted from inside its own (synchronous) call, and a
// decompression bomb would take the test runner down with it; a child can be
// killed. The supervisor reads the child's heartbeat file every 50 ms: a case
// that stays current longer than the hang budget, or a child whose resident
// memory passes the kill limit, is killed and recorded (its input regenerated
// and saved here), and a fresh child resumes at the next case.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { HB, makeCase, saveCase, type CampaignSpec, type Failure, type FailureKind } from "./campaign.js";
import type { Target } from "./targets.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, "..", "..");
const CHILD = join(HERE, "child.ts");
// Each case is written to a scratch file: on a memory file system where there
// is one, since truncating and rewriting a file on ext4 costs more than most parses.
const SCRATCH = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

export interface FuzzOptions {
  /** The targets to run (in this order), from `targetsModule`'s TARGETS. */
  targets: readonly Target[];
  /** The module the child imports the targets from (default: targets.ts). */
  targetsModule?: string;
  runSeed: number;
  iterations: number;
  /** Cases for some targets (by name) instead of `iterations`: those much slower per case. */
  casesOf?: Readonly<Record<string, number>>;
  /** Where failing inputs are saved. */
  outDir: string;
  /** CPU milliseconds one case may take before it is a "slow" failure. */
  slowMs: number;
  /** Wall milliseconds one case may stay current before the child is killed as hung. */
  hangMs: number;
  /** Peak RSS (MB) of the child above which a case is a "memory" failure. */
  memoryMb: number;
  /** Resident memory (MB) at which the child is killed at once. */
  killMb: number;
  /** ArrayBuffer memory (MB) one case may add, resident or not (default half of memoryMb). */
  allocMb?: number;
  /** Hangs and deaths of one target after which it is given up. */
  maxRestarts: number;
  /** Cases one child runs before a fresh one takes over (default CASES_PER_CHILD). */
  casesPerChild?: number;
  /** Targets run at once, each in its own child (default 1). */
  concurrency?: number;
  log?: (line: string) => void;
}

/** What the child receives (as one JSON argument). */
export interface ChildOptions extends CampaignSpec {
  /** The module whose TARGETS holds the target. */
  targetsModule: string;
  target: string;
}

export interface TargetReport {
  target: string;
  /** Cases run to their end (those killed are in failures only). */
  cases: number;
  /** Parsed without error. */
  accepted: number;
  /** Refused with one of the target's own errors, naming the file. */
  rejected: number;
  /** Cases where a tensor was not read because its declared size is over the read cap. */
  skippedLarge: number;
  failures: Failure[];
  maxCpuMs: number;
  meanCpuMs: number;
  /** The largest peak RSS of the target's child processes. */
  maxRssMb: number;
  wallMs: number;
  /** Set if the target was given up after too many hangs or deaths. */
  stoppedEarly?: string;
}

function readHeartbeat(path: string): Float64Array {
  const b = readFileSync(path);
  const hb = new Float64Array(HB.slots);
  new Uint8Array(hb.buffer).set(b.subarray(0, hb.byteLength));
  return hb;
}

/** Resident memory of a process in MB (Linux), 0 where /proc does not say. */
function residentMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

interface ChildEnd {
  /** How it ended: on its own (finished or died), or killed by the watch. */
  outcome: "exited" | "hang" | "memory";
  code: number | null;
  signal: string | null;
  outputTail: string;
}

const STARTUP_MS = 120_000;
/**
 * A fresh child every so many cases. Node 20's zlib keeps the output buffer
 * of every synchronous call that fails (gunzipSync on a corrupt stream: its
 * chunkSize, never freed, even by a full GC), so a child's memory grows with
 * the corrupt .nii.gz streams it has seen: the NIfTI campaign's one child
 * passed 1 GB at case 76,000. Memory is judged per input, so children are
 * recycled long before.
 */
export const CASES_PER_CHILD = 20_000;

function runChild(opts: ChildOptions, hangMs: number, killMb: number): Promise<ChildEnd> {
  const hb = new Float64Array(HB.slots);
  hb[HB.index] = -1; // starting: the hang budget applies from the first case on
  writeFileSync(opts.heartbeat, hb);
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(opts)], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (d: Buffer): void => {
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  return new Promise((resolve) => {
    let outcome: ChildEnd["outcome"] = "exited";
    let current = -2;
    let since = Date.now();
    const timer = setInterval(() => {
      const index = readHeartbeat(opts.heartbeat)[HB.index]!;
      const now = Date.now();
      if (index !== current) {
        current = index;
        since = now;
      } else if (now - since > (index < 0 ? STARTUP_MS : hangMs)) {
        outcome = "hang";
        child.kill("SIGKILL");
      }
      if (child.pid !== undefined && residentMb(child.pid) > killMb) {
        outcome = "memory";
        child.kill("SIGKILL");
      }
    }, 50);
    child.on("close", (code, signal) => {
      clearInterval(timer);
      resolve({ outcome, code, signal, outputTail: output });
    });
  });
}

async function fuzzTarget(target: Target, o: FuzzOptions): Promise<TargetReport> {
  const t0 = Date.now();
  const work = mkdtempSync(join(SCRATCH, `segvol-fuzz-${target.name}-`));
  const failuresPath = join(work, "failures.jsonl");
  const report: TargetReport = {
    target: target.name, cases: 0, accepted: 0, rejected: 0, skippedLarge: 0, failures: [], maxCpuMs: 0, meanCpuMs: 0, maxRssMb: 0, wallMs: 0,
  };
  const killed: Failure[] = [];
  let sumCpuUs = 0;
  let seeds: ReturnType<Target["seeds"]> | null = null;
  try {
    let from = 0;
    let restarts = 0;
    const iterations = o.casesOf?.[target.name] ?? o.iterations;
    while (from < iterations) {
      const to = Math.min(iterations, from + (o.casesPerChild ?? CASES_PER_CHILD));
      const opts: ChildOptions = {
        targetsModule: o.targetsModule ?? join(HERE, "targets.ts"),
        target: target.name, runSeed: o.runSeed, from, to, tmp: work, outDir: o.outDir,
        heartbeat: join(work, "heartbeat"), failures: failuresPath, slowMs: o.slowMs, memoryMb: o.memoryMb, allocMb: o.allocMb ?? o.memoryMb / 2,
      };
      const end = await runChild(opts, o.hangMs, o.killMb);
      const hb = readHeartbeat(opts.heartbeat);
      report.cases += hb[HB.ended]!;
      report.accepted += hb[HB.accepted]!;
      report.rejected += hb[HB.rejected]!;
      report.skippedLarge += hb[HB.skipped]!;
      report.maxCpuMs = Math.max(report.maxCpuMs, hb[HB.maxCpuUs]! / 1000);
      report.maxRssMb = Math.max(report.maxRssMb, hb[HB.maxRssKb]! / 1024);
      sumCpuUs += hb[HB.sumCpuUs]!;
      if (hb[HB.done] === 1) {
        from = to;
        continue;
      }
      const index = hb[HB.index]!;
      if (index < 0) throw new Error(`fuzz ${target.name}: the child process failed to start (${end.code ?? end.signal}):\n${end.outputTail}`);
      // The case that was running when the child hung, blew up or died.
      seeds ??= target.seeds(work);
      const c = makeCase(target, seeds, o.runSeed, index);
      const kind: FailureKind = end.outcome === "exited" ? "died" : end.outcome;
      const error =
        kind === "hang" ? `still running after ${o.hangMs} ms; killed`
        : kind === "memory" ? `resident memory passed ${o.killMb} MB; killed`
        : `the process ended (${end.signal ?? `exit code ${end.code}`}): ${end.outputTail.trim().split("\n").slice(-3).join(" | ")}`;
      const f = { target: target.name, runSeed: o.runSeed, index, kind, seedLabel: c.seed.label, steps: c.steps, error };
      killed.push({ ...f, input: saveCase(o.outDir, target, o.runSeed, c, f) });
      o.log?.(`fuzz ${target.name}: case ${index} ${kind}: ${error}`);
      from = index + 1;
      if (++restarts > o.maxRestarts) {
        report.stoppedEarly = `given up at case ${index} after ${restarts} hangs or deaths`;
        break;
      }
    }
    const logged = existsSync(failuresPath)
      ? readFileSync(failuresPath, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as Failure)
      : [];
    report.failures = [...logged, ...killed].sort((a, b) => a.index - b.index);
    report.meanCpuMs = report.cases > 0 ? sumCpuUs / 1000 / report.cases : 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  report.wallMs = Date.now() - t0;
  return report;
}

/** Runs the targets, `concurrency` children at a time; reports in the targets' order. */
export async function fuzz(o: FuzzOptions): Promise<TargetReport[]> {
  const reports: TargetReport[] = new Array(o.targets.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < o.targets.length) {
      const i = next++;
      reports[i] = await fuzzTarget(o.targets[i]!, o);
      o.log?.(describeReport(reports[i]!));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 1) }, worker));
  return reports;
}

export function describeReport(r: TargetReport): string {
  return (
    `fuzz ${r.target}: ${r.cases} cases in ${(r.wallMs / 1000).toFixed(1)} s: ${r.accepted} parsed, ${r.rejected} refused, ` +
    `${r.failures.length} failures; CPU per case mean ${r.meanCpuMs.toFixed(2)} ms, max ${r.maxCpuMs.toFixed(0)} ms; peak RSS ${r.maxRssMb.toFixed(0)} MB` +
    (r.skippedLarge > 0 ? `; ${r.skippedLarge} with a tensor over the read cap` : "") +
    (r.stoppedEarly ? `; ${r.stoppedEarly}` : "")
  );
}

/**
 * Failures grouped by kind, error type and stack top, each with its count
 * and first case: one line per distinct bug rather than one per input.
 */
export function summarizeFailures(failures: readonly Failure[]): string {
  const groups = new Map<string, Failure[]>();
  for (const f of failures) {
    const errorType = f.error?.split(":")[0] ?? "";
    const key = `${f.target} ${f.kind} ${f.kind === "raw-error" || f.kind === "unnamed-file" || f.kind === "long-message" ? errorType : ""} @ ${f.stackTop ?? ""}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.values()]
    .map((g) => {
      const f = g[0]!;
      return (
        `${f.target} ${f.kind} ×${g.length}: ${f.error ?? ""}\n` +
        `    at ${f.stackTop ?? "?"}\n` +
        `    first: seed ${f.runSeed} case ${f.index} (${f.seedLabel}; ${f.steps.join("; ")})\n` +
        `    input: ${f.input ?? "?"}`
      );
    })
    .join("\n");
}
