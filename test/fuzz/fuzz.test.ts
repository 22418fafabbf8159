// The fuzz harness in `npm test`: 20,000 mutated inputs for each parser
// (NIfTI, npy, safetensors, torch checkpoints, tokenizer JSON; DICOM, slower
// per case, gets 4,000), run in
// watched child processes. Every input must parse or be refused with the
// parser's own error naming the file; none may hang, take over a second of
// CPU, or take the process past 1 GB. `npm run fuzz` runs the same campaigns
// for millions of inputs (scripts/fuzz.ts). First, the harness itself must
// catch each kind of failure, on a parser with planted bugs.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCase, type FailureKind } from "./campaign.js";
import { PLANTED, TARGETS as PLANTED_TARGETS } from "./planted.js";
import { describeReport, fuzz, summarizeFailures, type FuzzOptions, type TargetReport } from "./supervisor.js";
import { TARGETS } from "./targets.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ITERATIONS = 20_000;
/** Targets whose cases cost much more: a DICOM case reads a series (1.5 ms of CPU on average, against 0.05-0.25 ms). */
const CASES_OF: Record<string, number> = { dicom: 4_000 };
const cases = (target: string) => CASES_OF[target] ?? ITERATIONS;
const RUN_SEED = 18;

const outDir = mkdtempSync(join(tmpdir(), "segvol-fuzz-failures-"));
let failed = false;
afterAll(() => {
  if (failed) console.log(`fuzz: failing inputs kept in ${outDir}`);
  else rmSync(outDir, { recursive: true, force: true });
});

const LIMITS: Omit<FuzzOptions, "targets" | "runSeed" | "iterations"> = {
  outDir,
  // Measured: a case takes 0.05-0.4 ms of CPU on average, 35 ms at most.
  slowMs: 1000,
  hangMs: 10_000,
  memoryMb: 1024,
  killMb: 2048,
  // A parser that hangs this often is broken; do not spend minutes on it.
  maxRestarts: 2,
  // The two cores of the test machine.
  concurrency: 2,
};

describe("the fuzz harness", () => {
  it("catches hangs, exits, bombs, memory, slow cases, raw errors, unnamed files and long messages, and saves each input", async () => {
    const target = PLANTED_TARGETS[0]!;
    const iterations = 60;
    const runSeed = 60; // a seed whose first 60 cases meet every planted bug, hang, exit and bomb once
    const plantedDir = mkdtempSync(join(tmpdir(), "segvol-fuzz-planted-"));
    try {
      const [r] = await fuzz({
        ...LIMITS, targets: [target], targetsModule: join(HERE, "planted.ts"), runSeed, iterations, outDir: plantedDir,
        slowMs: 150, hangMs: 5000, memoryMb: 200, killMb: 600, maxRestarts: 10, concurrency: 1,
      });
      const seeds = target.seeds(plantedDir);
      const planted = new Map<number, FailureKind>();
      const as: Record<string, FailureKind> = { exit: "died", bomb: "memory" };
      for (let i = 0; i < iterations; i++) {
        const bug = PLANTED[(crc32(makeCase(target, seeds, runSeed, i).bytes) >>> 0) % 50];
        if (bug) planted.set(i, (as[bug] ?? bug) as FailureKind);
      }
      const found = (i: number): FailureKind[] => r!.failures.filter((f) => f.index === i).map((f) => f.kind);
      // Each failure is at a planted bug; each bug is found as its kind (a
      // memory bug may be slow too, and is found once per child: peak RSS only grows).
      expect(r!.failures.filter((f) => !planted.has(f.index))).toEqual([]);
      expect([...planted].filter(([i, kind]) => kind !== "memory" && !found(i).includes(kind))).toEqual([]);
      expect([...planted].some(([i, kind]) => kind === "memory" && found(i).includes("memory"))).toBe(true);
      expect(new Set(r!.failures.map((f) => f.kind))).toEqual(new Set(["hang", "died", "memory", "slow", "raw-error", "unnamed-file", "long-message"]));
      // Every case is accounted for: run to its end, or killed.
      const killed = r!.failures.filter((f) => f.kind === "hang" || f.kind === "died" || f.error?.includes("killed")).length;
      expect(r!.cases + killed).toBe(iterations);
      // The saved input is the case's input, and reproduces the failure.
      const raw = r!.failures.find((f) => f.kind === "raw-error")!;
      expect(raw.error).toMatch(/^RangeError: Offset is outside the bounds of the DataView/);
      expect(raw.stackTop).toMatch(/planted\.ts/);
      const saved = new Uint8Array(readFileSync(raw.input!));
      expect(saved).toEqual(makeCase(target, seeds, runSeed, raw.index).bytes);
      expect(() => target.run(saved, seeds[0]!, { path: "x", skippedLarge: () => undefined })).toThrow(RangeError);
      expect(summarizeFailures(r!.failures)).toMatch(/planted raw-error ×\d+: RangeError/);
    } finally {
      rmSync(plantedDir, { recursive: true, force: true });
    }
  });
});

describe(`fuzz: ${ITERATIONS} mutated inputs per parser (DICOM ${CASES_OF.dicom}), seed ${RUN_SEED}`, () => {
  const reports = new Map<string, TargetReport>();
  beforeAll(async () => {
    for (const r of await fuzz({ ...LIMITS, targets: TARGETS, runSeed: RUN_SEED, iterations: ITERATIONS, casesOf: CASES_OF, log: (l) => console.log(l) })) {
      reports.set(r.target, r);
    }
  }, 900_000);

  for (const t of TARGETS) {
    it(`${t.name}: every input parses or is refused with its own error naming the file; no hang, no slow case, under 1 GB`, () => {
      const r = reports.get(t.name)!;
      if (r.failures.length > 0) failed = true;
      expect(summarizeFailures(r.failures), describeReport(r)).toBe("");
      expect(r.cases).toBe(cases(t.name));
      expect(r.maxRssMb).toBeLessThan(1024);
      // Both outcomes occur: the mutations neither break everything nor nothing.
      expect(r.accepted).toBeGreaterThan(cases(t.name) / 100);
      expect(r.rejected).toBeGreaterThan(cases(t.name) / 2);
    });
  }
});
