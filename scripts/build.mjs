// Bundles the CLI and the library entry with esbuild, then writes the
// library's type declarations (tsc, tsconfig.build.json → dist/types).
// Dependencies stay external (webgpu is a native addon; the others resolve
// from node_modules).
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { build } from "esbuild";

const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
};
await build({ ...common, entryPoints: { cli: "src/cli/main.ts", index: "src/index.ts" }, outdir: "dist" });

// Declarations of files since removed must not linger in the package.
rmSync("dist/types", { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" });
