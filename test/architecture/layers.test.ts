// The layering of src/ (.dependency-cruiser.cjs holds the rules): kernels
// import only tensor, the tuner only tensor, kernels, io and node, nothing
// below segvol imports it, nn and segvol never
// import train, cli and demo sit on top, no cycles between folders. Runs
// dependency-cruiser's CLI, as `npx depcruise src` does, and prints each
// violation as "rule: from → to".
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CONFIG = join(ROOT, ".dependency-cruiser.cjs");
const DEPCRUISE = join(ROOT, "node_modules/dependency-cruiser/bin/dependency-cruise.mjs");

/**
 * Violations that exist today in code whose owners are rewriting it, as
 * "rule: from → to" (the form `violations` prints). Each goes when that work
 * lands; the test fails on an exception that no longer occurs, so the list
 * cannot go stale. Add none without a comment that says why and who removes it.
 */
const KNOWN_EXCEPTIONS: readonly string[] = [];

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
  cycle?: { name: string }[];
}

/** The violations that dependency-cruiser finds under `dir`/src with the project's rules, one line each. */
function violations(dir: string): string[] {
  const run = spawnSync(process.execPath, [DEPCRUISE, "src", "--config", CONFIG, "--output-type", "json"], {
    cwd: dir,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  if (run.error) throw run.error;
  // It exits with the number of violations: the JSON on stdout is what counts.
  let result: { summary: { violations: Violation[]; totalCruised: number } };
  try {
    result = JSON.parse(run.stdout);
  } catch {
    throw new Error(`dependency-cruiser failed (exit ${run.status}):\n${run.stderr}`);
  }
  expect(result.summary.totalCruised, "dependency-cruiser found no modules").toBeGreaterThan(0);
  return result.summary.violations.map(describeViolation).sort();
}

function describeViolation(v: Violation): string {
  // A cycle is reported from each folder on it: its path shows the loop.
  const path = v.cycle && v.cycle.length > 0 ? [v.from, ...v.cycle.map((c) => c.name)].join(" → ") : `${v.from} → ${v.to}`;
  return `${v.rule.name}: ${path}`;
}

/** A temp folder holding `files` (path → text), removed after this file. */
function tempTree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "segvol-layers-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe("src/ layering", () => {
  it("src/ keeps its layers", () => {
    const found = violations(ROOT);
    const unexpected = found.filter((v) => !KNOWN_EXCEPTIONS.includes(v));
    const stale = KNOWN_EXCEPTIONS.filter((e) => !found.includes(e));
    expect(unexpected, `layering violations (rules in .dependency-cruiser.cjs):\n  ${unexpected.join("\n  ")}\n`).toEqual([]);
    expect(stale, `known exceptions that no longer occur: remove them from KNOWN_EXCEPTIONS:\n  ${stale.join("\n  ")}\n`).toEqual([]);
  });

  it("the rules catch forbidden imports and folder cycles", () => {
    // A small tree that breaks each rule once, checked with the same config.
    const dir = tempTree({
      "tsconfig.json": JSON.stringify({ compilerOptions: { module: "ESNext", moduleResolution: "Bundler", strict: true } }),
      "src/index.ts": 'export * from "./demo/demo.js";\n',
      "src/tensor/tensor.ts": 'import "../weights/format.js";\nexport const t = 1;\n',
      "src/weights/format.ts": 'import { t } from "../tensor/tensor.js";\nexport const f = t;\n',
      "src/kernels/matmul.ts": 'import type { Model } from "../segvol/model.js";\nexport type K = Model;\n',
      "src/autograd/tape.ts": 'import "../nn/layers.js";\n',
      "src/tune/tuner.ts": 'import "../autograd/tape.js";\n',
      "src/nn/layers.ts": 'import "../kernels/matmul.js";\nimport "../train/loss.js";\n',
      "src/segvol/model.ts": "export interface Model { x: number }\n",
      "src/segvol/pipeline/segment.ts": 'import "../../train/loss.js";\n',
      "src/train/loss.ts": 'import "../segvol/model.js";\n',
      "src/io/nifti.ts": 'import "../cli/main.js";\n',
      "src/cli/main.ts": 'import "../demo/demo.js";\n',
      "src/demo/demo.ts": 'import "../cli/main.js";\n',
      "src/queue/job.ts": 'import "../demo/demo.js";\n',
    });
    const found = violations(dir);
    const rules = new Set(found.map((v) => v.split(":")[0]));
    expect(found).toEqual(
      expect.arrayContaining([
        "tensor-imports-nothing: src/tensor/tensor.ts → src/weights/format.ts",
        "kernels-import-only-tensor: src/kernels/matmul.ts → src/segvol/model.ts",
        "nothing-below-segvol-imports-segvol: src/kernels/matmul.ts → src/segvol/model.ts",
        "autograd-imports-only-tensor-kernels: src/autograd/tape.ts → src/nn/layers.ts",
        "tune-imports-only-tensor-kernels-io-node: src/tune/tuner.ts → src/autograd/tape.ts",
        "nn-imports-only-tensor-kernels-autograd-weights: src/nn/layers.ts → src/train/loss.ts",
        "model-never-imports-train: src/nn/layers.ts → src/train/loss.ts",
        "model-never-imports-train: src/segvol/pipeline/segment.ts → src/train/loss.ts",
        "cli-and-demo-on-top: src/io/nifti.ts → src/cli/main.ts",
        "demo-does-not-import-cli: src/demo/demo.ts → src/cli/main.ts",
        "queue-under-cli: src/queue/job.ts → src/demo/demo.ts",
        "no-folder-cycles: src/tensor → src/weights → src/tensor",
      ]),
    );
    // Every rule of the config fired; the package entry (src/index.ts) may re-export the demo.
    const config = createRequire(import.meta.url)(CONFIG) as { forbidden: { name: string }[] };
    expect([...rules].sort()).toEqual(config.forbidden.map((r) => r.name).sort());
    expect(found.filter((v) => v.includes("src/index.ts"))).toEqual([]);
  });
});
