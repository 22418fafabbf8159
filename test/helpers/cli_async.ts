// runSegvol (test/helpers/cli.ts) without blocking the worker: the DICOM
// tests run several minute-long segmentations per test, and a synchronous
// test that long starves vitest's RPC ("Timeout calling onTaskUpdate",
// test/helpers/yield_to_runner.ts explains).
import { spawn } from "node:child_process";
import { join } from "node:path";

const REPO = join(__dirname, "..", "..");

/** `segvol ...args` in cwd from source under tsx, awaited; stdout and stderr as a user sees them. */
export function runSegvolAsync(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, "node_modules", "tsx", "dist", "cli.mjs"), join(REPO, "src", "cli", "main.ts"), ...args], {
      cwd,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "", stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
