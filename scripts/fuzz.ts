// The long fuzz run: `npm run fuzz -- --iterations 1000000 --seed 7`.
// Runs every parser's campaign (or those named with --target) in watched
// child processes and saves each failing input, with a .json describing it,
// to --out. Exits 1 if anything failed. The same harness runs 20,000 cases
// per parser in `npm test` (test/fuzz/fuzz.test.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fuzz, summarizeFailures } from "../test/fuzz/supervisor.js";
import { TARGETS, targetNamed } from "../test/fuzz/targets.js";

const HELP = `usage: npm run fuzz -- [--iterations N] [--seed S] [--target NAME]... [--out DIR]
  --iterations  cases per parser (default 1000000)
  --seed        run seed (default 1); case i of a run is the same on every machine
  --target      ${TARGETS.map((t) => t.name).join(", ")} (default: all)
  --out         folder for failing inputs (default: a new folder in ${tmpdir()})
  --slow-ms     CPU ms per case before it is a failure (default 1000)
  --hang-ms     wall ms per case before the child is killed as hung (default 10000)
  --jobs        parsers fuzzed at once, each in its own process (default: the number of CPUs)`;

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "1000000" },
    seed: { type: "string", default: "1" },
    target: { type: "string", multiple: true },
    out: { type: "string" },
    "slow-ms": { type: "string", default: "1000" },
    "hang-ms": { type: "string", default: "10000" },
    jobs: { type: "string", default: String(availableParallelism()) },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const count = (name: string, s: string): number => {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`fuzz: --${name} must be a non-negative integer, got "${s}"\n${HELP}`);
    process.exit(2);
  }
  return n;
};
let targets = TARGETS;
try {
  if (values.target) targets = values.target.map(targetNamed);
} catch (e) {
  console.error(`fuzz: ${(e as Error).message}`);
  process.exit(2);
}
const outDir = values.out ? resolve(values.out) : mkdtempSync(join(tmpdir(), "segvol-fuzz-failures-"));
const reports = await fuzz({
  targets,
  runSeed: count("seed", values.seed),
  iterations: count("iterations", values.iterations),
  outDir,
  slowMs: count("slow-ms", values["slow-ms"]),
  hangMs: count("hang-ms", values["hang-ms"]),
  memoryMb: 1024,
  killMb: 2048,
  maxRestarts: 1000,
  concurrency: count("jobs", values.jobs),
  log: (line) => console.log(line),
});
const failures = reports.flatMap((r) => r.failures);
if (failures.length > 0) {
  console.log(`\n${failures.length} failures, inputs in ${outDir}:\n${summarizeFailures(failures)}`);
  process.exit(1);
}
if (!values.out) rmSync(outDir, { recursive: true, force: true });
console.log("no failures");
