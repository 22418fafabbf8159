#!/usr/bin/env node
// The `segvol` command: runs the esbuild bundle (built by `npm run build`,
// which scripts/setup.sh runs).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const bundle = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
if (!existsSync(bundle)) {
  console.error("segvol: the CLI is not built yet; run `npm run build` (or bash scripts/setup.sh) in the package folder.");
  process.exit(1);
}
await import(bundle);
