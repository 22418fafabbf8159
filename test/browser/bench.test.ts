// `npm run bench:browser`: the bench page in headless Chromium prints the
// records `npm run bench -- --json` prints (op, shape, median_ms, min_ms, gflops).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { REPO } from "./harness.js";

describe("the bench page", () => {
  it("prints bench JSON records for the browser's WebGPU", async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", join(REPO, "bench/browser.ts"), "--json", "--filter", "matmul_narrow"], {
      cwd: REPO,
      timeout: 300_000,
      maxBuffer: 1 << 24,
    });
    expect(stderr).toMatch(/adapter: .*swiftshader/i);
    const records = JSON.parse(stdout) as Record<string, unknown>[];
    expect(records.length).toBeGreaterThanOrEqual(1);
    for (const r of records) {
      expect(r.op).toBe("matmul_narrow");
      expect(typeof r.shape).toBe("string");
      expect(r.median_ms).toBeGreaterThan(0);
      expect(r.min_ms).toBeGreaterThan(0);
      expect(r.min_ms as number).toBeLessThanOrEqual(r.median_ms as number);
      expect(r.gflops).toBeGreaterThan(0);
      expect(Object.keys(r).every((k) => ["op", "shape", "median_ms", "min_ms", "gflops", "gbps"].includes(k))).toBe(true);
    }
  }, 300_000);
});
