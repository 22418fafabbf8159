// `npm run bench:browser [-- --json] [-- --filter SUBSTRING] [-- --serve]`:
// the cases of bench/*.bench.ts in headless Chromium, on its WebGPU
// (SwiftShader here), through the bench page (bench/browser_page.ts). Prints
// the table, or with --json the same JSON array as `npm run bench -- --json`
// on stdout (the adapter on stderr). --serve only serves the page on
// 127.0.0.1 for a browser of your own (WebGPU needs localhost or https).
// Left out: tokenizer (reads files with node:fs) and gpu_wait (Dawn's
// polling in Node; a browser has none).
import { mkdtempSync, readdirSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
// @ts-expect-error: a plain .mjs module without declarations
import { browserOptions } from "../scripts/browser-plugin.mjs";
import { launchChromium, openPage, serveStatic } from "../test/browser/harness.js";
import { table, type BenchRecord } from "./harness.js";

const NODE_ONLY = new Set(["tokenizer.bench.ts", "gpu_wait.bench.ts"]);
const args = process.argv.slice(2);
const json = args.includes("--json");
const fi = args.indexOf("--filter");
const filter = fi >= 0 ? args[fi + 1]! : "";
const here = resolve(import.meta.dirname);

/** Builds the page with every browser-safe bench file into `dir`. */
async function buildBench(dir: string): Promise<void> {
  const files = readdirSync(here).filter((f) => f.endsWith(".bench.ts") && !NODE_ONLY.has(f)).sort();
  const entry = join(dir, "entry.ts");
  const imports = files.map((f, i) => `import { cases as c${i} } from ${JSON.stringify(join(here, f))};`);
  const suites = files.map((f, i) => `{ file: ${JSON.stringify(f)}, cases: c${i} }`);
  writeFileSync(
    entry,
    `${imports.join("\n")}\nimport { runBench } from ${JSON.stringify(join(here, "browser_page.ts"))};\n` +
      `const suites = [${suites.join(", ")}];\n` +
      `Object.assign(globalThis, { segvolBench: (filter: string) => runBench(suites, filter) });\n` +
      `const auto = new URLSearchParams(location.search);\n` +
      `if (!auto.has("manual")) void (globalThis as any).segvolBench(auto.get("filter") ?? "");\n`,
  );
  await build({ ...(browserOptions as object), entryPoints: { bench: entry }, outdir: dir, logLevel: "error" });
  copyFileSync(join(here, "browser_page.html"), join(dir, "index.html"));
}

const dir = mkdtempSync(join(tmpdir(), "segvol-bench-"));
try {
  await buildBench(dir);
  const server = await serveStatic({ "/": dir });
  if (args.includes("--serve")) {
    process.stderr.write(`bench page: ${server.url}/ (Ctrl-C stops)\n`);
    await new Promise(() => {});
  }
  const browser = await launchChromium();
  try {
    const { page, log } = await openPage(browser, `${server.url}/index.html?manual`);
    const out = (await page.evaluate((f) => (globalThis as any).segvolBench(f), filter).catch((e: Error) => {
      throw new Error(`${e.message}\n${log.join("\n")}`);
    })) as { adapter: string; records: BenchRecord[] };
    process.stderr.write(`adapter: ${out.adapter} (headless Chromium)\n`);
    process.stdout.write((json ? JSON.stringify(out.records, null, 1) : table(out.records)) + "\n");
  } finally {
    await browser.close();
    await server.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
