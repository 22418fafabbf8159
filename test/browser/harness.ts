// Real Chromium for the browser tests: Debian's chromium (scripts/setup.sh
// installs it) driven by puppeteer-core, pages bundled with the browser
// build's esbuild options (scripts/browser-plugin.mjs) and served by a tiny
// static server on 127.0.0.1 (a free port). WebGPU needs a secure context,
// which http://127.0.0.1 is (about:blank and file:// are not); headless
// Chromium here then offers SwiftShader's Vulkan (4-lane subgroups) with
// --enable-unsafe-webgpu alone.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve, sep } from "node:path";
import { build } from "esbuild";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
// @ts-expect-error: a plain .mjs module without declarations
import { browserOptions } from "../../scripts/browser-plugin.mjs";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** The flags under which headless Chromium offers WebGPU on this machine (SwiftShader). */
export const CHROMIUM_FLAGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-dev-shm-usage"];
export const REPO = resolve(import.meta.dirname, "..", "..");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
};

/** Bundles page entries (name → source file) into a temporary folder; returns it. */
export async function buildPages(entries: Record<string, string>, extra: Record<string, string> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "segvol-pages-"));
  await build({ ...(browserOptions as object), entryPoints: entries, outdir: dir, sourcemap: "inline", logLevel: "error" });
  const { writeFileSync } = await import("node:fs");
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  return dir;
}

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Serves URL prefixes from folders (first match wins); nothing outside them, on 127.0.0.1 at a free port. */
export async function serveStatic(routes: Record<string, string>): Promise<StaticServer> {
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    for (const [prefix, dir] of Object.entries(routes)) {
      if (!path.startsWith(prefix)) continue;
      const root = resolve(dir);
      const file = normalize(join(root, path.slice(prefix.length) || "index.html"));
      if (file !== root && !file.startsWith(root + sep)) break;
      if (!existsSync(file) || !statSync(file).isFile()) break;
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
      res.end(readFileSync(file));
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end(`not found: ${path}`);
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

/** Launches headless Chromium with WebGPU; says how to install it when it is missing. */
export async function launchChromium(extraFlags: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; scripts/setup.sh does) or set CHROMIUM_PATH`);
  }
  return puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_FLAGS, ...extraFlags], protocolTimeout: 600_000 });
}

/** Opens `url` and records the page's console and uncaught errors (read them in a failing test's message). */
export async function openPage(browser: Browser, url: string, opts: { noWebGpu?: boolean } = {}): Promise<{ page: Page; log: string[] }> {
  const page = await browser.newPage();
  const log: string[] = [];
  page.on("console", (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`pageerror: ${(e as Error).message}`));
  if (opts.noWebGpu) {
    // A browser without WebGPU: navigator.gpu is undefined, as in Chromium without the flag on Linux.
    await page.evaluateOnNewDocument(
      `Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined, configurable: true });`,
    );
  }
  await page.goto(url, { waitUntil: "load" });
  return { page, log };
}

/** Removes a temporary folder made by buildPages. */
export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Base64 → bytes (the pages return typed arrays as base64). */
export function fromBase64(b64: string): Uint8Array {
  return new Uint8Array(Buffer.from(b64, "base64"));
}

/** Resident memory (bytes) of process `pid` and all its descendants, from /proc (Linux); 0 where /proc is missing. */
export function treeRss(pid: number): number {
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return 0;
  }
  const parent = new Map<number, number>();
  for (const d of entries) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // the process ended meanwhile
    }
  }
  const tree = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, pp] of parent) if (!tree.has(p) && tree.has(pp)) (tree.add(p), (grew = true));
  }
  let total = 0;
  for (const p of tree) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

/** Samples treeRss(pid) every `ms` until stopped; returns the peak. */
export function peakRss(pid: number, ms = 250): { stop(): number } {
  let peak = treeRss(pid);
  const timer = setInterval(() => (peak = Math.max(peak, treeRss(pid))), ms);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, treeRss(pid));
    },
  };
}
