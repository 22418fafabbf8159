// Dawn's two adapter notices never reach a user: the filter drops exactly
// those lines (whole or split across chunks) and passes everything else at
// once; a real command run as a child process prints none of them.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NoticeFilter } from "../../src/cli/quiet_stderr.js";
import { runSegvol } from "../helpers/cli.js";

const NOTICES = ["Uniform", "Storage"].map(
  (kind) => `Warning: maxDynamic${kind}BuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n`,
);

function filtered(chunks: string[]): string {
  const f = new NoticeFilter();
  return chunks.map((c) => f.push(c)).join("") + f.end();
}

describe("NoticeFilter", () => {
  it("drops Dawn's two limit notices and nothing else", () => {
    const other = "Warning: maxDynamicUniformBuffersPerPipelineLayout is 8\nWarning: something else\nsegvol: an error\n";
    expect(filtered([NOTICES[0]! + other + NOTICES[1]!])).toBe(other);
    expect(filtered(["zoom-out 1/1 windows\n", ...NOTICES, "done\n"])).toBe("zoom-out 1/1 windows\ndone\n");
  });

  it("drops a notice split across chunks at any point", () => {
    const text = `a\n${NOTICES[0]}b\n${NOTICES[1]}`;
    for (let cut = 0; cut <= text.length; cut++) expect(filtered([text.slice(0, cut), text.slice(cut)]), `cut ${cut}`).toBe("a\nb\n");
  });

  it("passes a line that cannot be a notice at once, without waiting for its end", () => {
    const f = new NoticeFilter();
    expect(f.push("\rstage [=====     ] 5/10")).toBe("\rstage [=====     ] 5/10");
    expect(f.push("Warn")).toBe("");
    expect(f.push("ing: other\n")).toBe("Warning: other\n");
    expect(f.push("Warning: maxDynamic")).toBe("");
    expect(f.end()).toBe("Warning: maxDynamic");
  });
});

describe("segvol on the GPU", () => {
  const dir = mkdtempSync(join(tmpdir(), "segvol-quiet-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("prints no Dawn notice on stderr, and keeps its output and exit code", () => {
    const r = runSegvol(dir, ["smoke"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^adapter: /);
    expect(r.stderr).not.toMatch(/artificially reduced/);
    expect(r.stderr).toBe("");
    const bad = runSegvol(dir, ["info", "--weights", "no-such-folder"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^segvol: no-such-folder: missing config\.json/);
  });
});
