// Bundles the CLI and the library entry with esbuild, then writes the
// library's type declarations (tsc, tsconfig.build.json → dist/types).
// Dependencies stay external (webgpu is a native addon; the others resolve
// from node_modules).
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { build } from "esbuild";
import { browserOptions } from "./browser-plugin.mjs";

const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
};
// The package's entries (package.json "exports") and the CLI. Splitting puts
// the modules they share in chunks, so every entry sees one Tensor class,
// one device and one pipeline cache.
rmSync("dist/chunks", { recursive: true, force: true });
await build({
  ...common,
  entryPoints: {
    cli: "src/cli/main.ts",
    index: "src/index.ts",
    engine: "src/exports/engine.ts",
    train: "src/exports/train.ts",
    demo: "src/exports/demo.ts",
    queue: "src/exports/queue.ts",
  },
  outdir: "dist",
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
});

// The root entry for browsers (package.json "exports" condition `browser`):
// one self-contained ES module, no Node built-in, no `webgpu` addon (see
// scripts/browser-plugin.mjs), which a web developer bundles as it is.
await build({ ...browserOptions, entryPoints: { browser: "src/browser.ts" }, outdir: "dist", sourcemap: true });

// Declarations of files since removed must not linger in the package.
rmSync("dist/types", { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" });
