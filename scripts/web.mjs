// `npm run web`: builds the web app (web/) into plain static files and
// serves them on 127.0.0.1. The output folder (default dist-web/) holds
// index.html, app.js, worker.js, app.css and the demo model (weights/demo/);
// any static host serves it as it is (WebGPU needs https:// or localhost).
//
//   node scripts/web.mjs [--out DIR] [--port N] [--build-only]
import { cpSync, mkdirSync, readFileSync, rmSync, statSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { browserOptions } from "./browser-plugin.mjs";

const ROOT = resolve(fileURLToPath(import.meta.url), "..", "..");
const DEMO_FILES = ["config.json", "model.safetensors", "categories.json", "vocab.json", "merges.txt", "tokenizer.json"];

/** Builds the app into `out` (emptied first); returns the bundles' sizes in bytes. */
export async function buildWeb(out, { minify = true } = {}) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "weights", "demo"), { recursive: true });
  const result = await build({
    ...browserOptions,
    entryPoints: { app: join(ROOT, "web/src/app.ts"), worker: join(ROOT, "web/src/worker.ts") },
    outdir: out,
    minify,
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning",
  });
  for (const f of ["index.html", "app.css"]) cpSync(join(ROOT, "web", f), join(out, f));
  for (const f of DEMO_FILES) {
    const src = join(ROOT, "weights/demo", f);
    if (existsSync(src)) cpSync(src, join(out, "weights/demo", f));
  }
  return Object.fromEntries(Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith(".js")).map(([f, o]) => [f, o.bytes]));
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css", ".json": "application/json", ".map": "application/json" };

/** Serves `dir` on 127.0.0.1:`port` (0: a free one); resolves to the server and its URL. */
export function serveDir(dir, port = 0) {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = normalize(join(root, path.endsWith("/") ? `${path}index.html` : path));
    if ((file === root || file.startsWith(root + sep)) && existsSync(file) && statSync(file).isFile()) {
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(readFileSync(file));
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end(`not found: ${path}`);
    }
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", () => ok({ server, url: `http://127.0.0.1:${server.address().port}/` }));
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const out = resolve(opt("--out", join(ROOT, "dist-web")));
  const sizes = await buildWeb(out);
  for (const [f, b] of Object.entries(sizes)) console.log(`${f}: ${(b / 1024).toFixed(0)} KiB`);
  if (!args.includes("--build-only")) {
    const { url } = await serveDir(out, Number(opt("--port", "8080")));
    console.log(`SegVol web app: ${url} (Chrome/Edge 113+; on Linux start Chromium with --enable-unsafe-webgpu). Ctrl-C stops.`);
  }
}
