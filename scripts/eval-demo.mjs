#!/usr/bin/env node
// `npm run eval:demo [-- --weights DIR --seeds A-B --json]`: scores a demo
// weights folder on held-out phantoms the way the demo does, one
// `segvol demo --json` per seed (from source, with tsx), and prints the mean
// Dice per prompt kind and organ over the seeds, plus each seed's row.
// The held-out seeds (default 5000-5019) must lie outside the weights'
// training seeds (recipe.json's trainSeeds, written by scripts/train-demo.mjs). This is the table of issue 7's targets:
// text ≥ 0.90 for each organ, box ≥ 0.90, points ≥ 0.85.
// It runs under tsx (npm run eval:demo) to read the training seeds with the
// demo's own reader (src/demo/demo.ts).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { trainingSeeds } from "../src/demo/demo.ts";
import { repo, segvolArgv } from "./segvol-source.mjs";

function parseArgs(argv) {
  const o = { weights: join(repo, "weights", "demo"), seeds: "5000-5019", json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") o.json = true;
    else if (a === "--weights" || a === "--seeds") {
      if (i + 1 >= argv.length) throw new Error(`eval:demo: ${a} needs a value`);
      o[a.slice(2)] = argv[++i];
    } else throw new Error(`eval:demo: unknown flag ${a}\nusage: npm run eval:demo [-- --weights DIR --seeds A-B --json]`);
  }
  const m = /^(\d+)-(\d+)$/.exec(o.seeds);
  if (!m || Number(m[1]) > Number(m[2])) throw new Error(`eval:demo: --seeds ${o.seeds}: expected A-B with A ≤ B`);
  const [a, b] = [Number(m[1]), Number(m[2])];
  o.weights = resolve(o.weights);
  const [first, last] = trainingSeeds(o.weights);
  if (a <= last && b >= first) throw new Error(`eval:demo: --seeds ${o.seeds} overlaps the training seeds ${first}-${last}`);
  o.seedList = Array.from({ length: b - a + 1 }, (_, k) => a + k);
  return o;
}

/** `segvol demo --json` for one seed; resolves with its parsed summary. */
function demo(weights, seed, out) {
  const args = segvolArgv(["demo", "--json", "--weights", weights, "--seed", String(seed), "--out", out]);
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, args, { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", rej);
    child.on("exit", (code) => {
      if (code !== 0) return rej(new Error(`segvol demo --seed ${seed} failed (exit ${code}):\n${stderr.trim().split("\n").slice(-5).join("\n")}`));
      try {
        res(JSON.parse(stdout));
      } catch {
        rej(new Error(`segvol demo --seed ${seed}: stdout is not JSON: ${stdout.slice(0, 200)}`));
      }
    });
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const scratch = mkdtempSync(join(tmpdir(), "segvol-eval-"));
  const rows = [];
  try {
    for (const seed of o.seedList) {
      const r = await demo(o.weights, seed, join(scratch, String(seed)));
      rows.push({ seed, ...r });
      if (!o.json) console.error(`seed ${seed}: ${r.targets.map((t) => `${t.prompt}:${t.name} ${t.dice.toFixed(3)}`).join("  ")}  (${r.seconds.toFixed(1)} s)`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  // Mean per (prompt, organ) and per prompt kind over all its targets.
  const groups = new Map();
  const addTo = (key, d) => {
    const g = groups.get(key) ?? [];
    g.push(d);
    groups.set(key, g);
  };
  for (const r of rows) for (const t of r.targets) {
    addTo(`${t.prompt}:${t.name}`, t.dice);
    addTo(`${t.prompt}:all`, t.dice);
  }
  const summary = [...groups].map(([key, ds]) => {
    const [prompt, organ] = key.split(":");
    const mean = ds.reduce((s, d) => s + d, 0) / ds.length;
    return { prompt, organ, n: ds.length, mean, min: Math.min(...ds) };
  });
  const seconds = rows.map((r) => r.seconds);
  if (o.json) {
    process.stdout.write(JSON.stringify({ weights: o.weights, seeds: o.seedList, summary, rows }) + "\n");
    return;
  }
  console.log(`weights ${o.weights}; ${rows.length} held-out phantoms (seeds ${o.seeds})`);
  console.log("prompt  organ         n   mean Dice  min Dice");
  for (const s of summary) console.log(`${s.prompt.padEnd(6)}  ${s.organ.padEnd(12)}  ${String(s.n).padStart(2)}  ${s.mean.toFixed(3).padStart(9)}  ${s.min.toFixed(3).padStart(8)}`);
  console.log(`demo time per phantom: mean ${(seconds.reduce((a, b) => a + b, 0) / seconds.length).toFixed(1)} s, max ${Math.max(...seconds).toFixed(1)} s`);
}

main().catch((e) => {
  console.error(e.message);
  process.exitCode = 1;
});
