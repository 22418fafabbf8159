// `segvol info`: a weights folder's categories, parameter count, dtype and
// configuration, read from its files (no GPU).
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { weightsInfo } from "../../src/cli/info.js";
import { loadConfig } from "../../src/segvol/config.js";
import { expectedParameters } from "../../src/segvol/params.js";
import { runSegvol } from "../helpers/cli.js";

const DEMO = join(__dirname, "..", "..", "weights", "demo");
const dir = mkdtempSync(join(tmpdir(), "segvol-info-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("segvol info", () => {
  it("describes the demo folder: its categories, parameters (those config.json implies), dtype and config", () => {
    const config = loadConfig(join(DEMO, "config.json"));
    const parameters = [...expectedParameters(config).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    const i = weightsInfo(DEMO);
    expect(i.categories).toEqual(["liver", "spleen", "left kidney", "right kidney"]);
    expect(i.parameters).toBe(parameters);
    expect(i.dtype).toBe("F32");
    expect(i.bytes).toBe(4 * parameters);
    expect(i.config).toEqual(config);

    const r = runSegvol(dir, ["info", "--weights", DEMO, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(JSON.stringify(i)));
    const text = runSegvol(dir, ["info", "--weights", DEMO]);
    expect(text.stdout).toContain("categories: liver, spleen, left kidney, right kidney");
    expect(text.stdout).toContain(`parameters: ${parameters.toLocaleString("en-US")} (F32,`);
  });

  it("says when a folder states no categories", () => {
    for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(DEMO, f), join(dir, f));
    expect(weightsInfo(dir).categories).toBeNull();
    const r = runSegvol(dir, ["info", "--weights", "."]);
    expect(r.stdout).toMatch(/categories: not stated \(no categories\.json\): text prompts need --allow-unknown-text/);
  });
});
