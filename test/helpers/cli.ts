// Runs the `segvol` CLI from source (under tsx) as a user's shell would.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const REPO = join(__dirname, "..", "..");

/** `segvol ...args` in cwd; stdout and stderr as a user sees them (Dawn's adapter notices filtered by the CLI). */
export function runSegvol(cwd: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(REPO, "node_modules", "tsx", "dist", "cli.mjs"), join(REPO, "src", "cli", "main.ts"), ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
