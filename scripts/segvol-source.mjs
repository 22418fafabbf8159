// The `segvol` CLI run from this checkout's source (tsx), for the repo
// scripts: they must use the code they sit beside, not a stale dist/ build.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Node arguments that run `segvol ARGS` from source: spawn(process.execPath, segvolArgv(args), { cwd: repo }). */
export function segvolArgv(args) {
  return [join(repo, "node_modules", "tsx", "dist", "cli.mjs"), join(repo, "src", "cli", "main.ts"), ...args];
}
