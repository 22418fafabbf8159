// Bundles the CLI and the library entry with esbuild. Dependencies stay
// external (webgpu is a native addon; the others resolve from node_modules).
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
