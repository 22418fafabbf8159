// `npm run eval:demo` (scripts/eval-demo.mjs): bad flags and training seeds
// are refused, naming them; one held-out seed gives a summary whose means
// are that seed's own Dice values from `segvol demo --json`.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const script = join(repo, "scripts", "eval-demo.mjs");

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  // As `npm run eval:demo` runs it: under tsx.
  const r = spawnSync(process.execPath, [join(repo, "node_modules", "tsx", "dist", "cli.mjs"), script, ...args], { cwd: repo, encoding: "utf8", timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("eval:demo script", () => {
  it("refuses unknown flags, bad ranges and training seeds", () => {
    expect(run(["--bogus"]).stderr).toMatch(/eval:demo: unknown flag --bogus/);
    expect(run(["--seeds", "9-3"]).stderr).toMatch(/--seeds 9-3: expected A-B with A ≤ B/);
    const t = run(["--seeds", "990-1001"]);
    expect(t.code).toBe(1);
    const [first, last] = JSON.parse(readFileSync(join(repo, "weights", "demo", "recipe.json"), "utf8")).trainSeeds;
    expect(t.stderr).toContain(`--seeds 990-1001 overlaps the training seeds ${first}-${last}`);
  });

  it("summarises one held-out seed: each mean is that seed's Dice", () => {
    const r = run(["--seeds", "5003-5003", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.seeds).toEqual([5003]);
    expect(j.rows).toHaveLength(1);
    const targets: { name: string; prompt: string; dice: number }[] = j.rows[0].targets;
    expect(targets).toHaveLength(6);
    for (const t of targets) {
      const s = j.summary.find((x: { prompt: string; organ: string }) => x.prompt === t.prompt && x.organ === t.name);
      expect(s, `${t.prompt}:${t.name}`).toBeDefined();
      expect(s.n).toBe(1);
      expect(s.mean).toBe(t.dice);
      expect(s.min).toBe(t.dice);
    }
    const text = j.summary.find((x: { prompt: string; organ: string }) => x.prompt === "text" && x.organ === "all");
    expect(text.n).toBe(4);
  });
});
