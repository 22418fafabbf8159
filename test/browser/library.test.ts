// The library in real Chromium (see harness.ts): the browser bundle
// (src/browser.ts built as dist/browser.js is) loaded by a page, on the
// page's own WebGPU (SwiftShader: a second WebGPU implementation, 4-lane
// subgroups). It segments the demo phantom like Node does, runs the kernel
// goldens, shows the missing-WebGPU message, and reports a malformed NIfTI in
// the page without breaking it.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import type { Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boundingBox, dice, samplePoints } from "../../src/demo/demo.js";
import { generatePhantom, PHANTOM_LABELS } from "../../src/demo/phantom.js";
import { niftiFromArray, writeNifti } from "../../src/io/nifti.js";
import { SegVol } from "../../src/segvol/model.js";
import type { Target } from "../../src/segvol/pipeline/types.js";
import { releaseGpu } from "../../src/tensor/device.js";
// @ts-expect-error: a plain .mjs module without declarations
import { browserOptions } from "../../scripts/browser-plugin.mjs";
import { REPO, buildPages, fromBase64, launchChromium, openPage, removeDir, serveStatic, type StaticServer } from "./harness.js";

const SEED = 4242;
let dir: string | undefined;
let server: StaticServer | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  const page = (f: string) => join(REPO, "test/browser/pages", f);
  dir = await buildPages({ kernels_page: page("kernels_page.ts") });
  // The library page loads the library bundle as its own file, as a web developer's page would.
  await build({ ...(browserOptions as object), entryPoints: { segvol: join(REPO, "src/browser.ts") }, outdir: dir, logLevel: "error" });
  await build({ ...(browserOptions as object), entryPoints: { lib_page: page("lib_page.ts") }, outdir: dir, external: ["./segvol.js"], logLevel: "error" });
  for (const f of ["lib_page.html", "kernels_page.html"]) writeFileSync(join(dir, f), (await import("node:fs")).readFileSync(page(f)));
  server = await serveStatic({ "/weights/": join(REPO, "weights"), "/fixtures/": join(REPO, "test/fixtures"), "/": dir });
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close().catch(() => {});
  await server?.close();
  removeDir(dir);
  releaseGpu();
});

/** Opens the library page and waits until its script has run (status shown). */
async function libPage(opts: { noWebGpu?: boolean } = {}) {
  const p = await openPage(browser!, `${server!.url}/lib_page.html`, opts);
  await p.page.waitForFunction('document.getElementById("ready")?.textContent === "ready"', { timeout: 60_000 }).catch((e) => {
    throw new Error(`the library page did not start: ${(e as Error).message}\n${p.log.join("\n")}`);
  });
  return p;
}

describe("the library in Chromium", () => {
  it("tells a page without WebGPU which browsers and flags have it", async () => {
    const { page } = await libPage({ noWebGpu: true });
    const status = await page.$eval("#status", (e) => e.textContent ?? "");
    expect(status).toMatch(/exposes no WebGPU/);
    expect(status).toMatch(/Chrome/);
    expect(status).toMatch(/--enable-unsafe-webgpu/);
    expect(status).toMatch(/Firefox/);
    await page.close();
  });

  it("shows a malformed NIfTI's error in the page, and still reads the next file", async () => {
    const { page, log } = await libPage();
    expect(await page.$eval("#status", (e) => e.textContent)).toMatch(/^WebGPU ready/);
    const tmp = dir!;
    const good = join(tmp, "small.nii.gz");
    writeNifti(good, niftiFromArray([5, 4, 3], new Float32Array(60).fill(2)), new Int16Array(60).fill(7), "int16");
    const bad = join(tmp, "broken.nii.gz");
    writeFileSync(bad, Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8]));
    const input = (await page.$("#file"))!;
    await input.uploadFile(bad);
    await page.waitForFunction('document.getElementById("error").textContent !== ""', { timeout: 30_000 });
    expect(await page.$eval("#error", (e) => e.textContent)).toMatch(/broken\.nii\.gz: .*gzip data is truncated or corrupt/);
    await input.uploadFile(good);
    await page.waitForFunction('document.getElementById("volume").textContent !== ""', { timeout: 30_000 });
    expect(await page.$eval("#volume", (e) => e.textContent)).toBe("small.nii.gz: 5×4×3 int16");
    expect(await page.$eval("#error", (e) => e.textContent)).toBe("");
    expect(log.filter((l) => l.startsWith("pageerror"))).toEqual([]);
    await page.close();
  });

  it("loads the model at precision f16 where the page's adapter has shader-f16, and otherwise says it needs it", async () => {
    const { page, log } = await libPage();
    const out = (await page
      .evaluate(async () => {
        const lib = (globalThis as any).segvolTest.lib;
        const hasF16 = (await lib.initGpu()).hasF16 as boolean;
        const loaded = await lib.SegVol.fromWeights("weights/demo", { precision: "f16" }).then(
          (m: { precision: string; dispose(): void }) => {
            m.dispose();
            return m.precision;
          },
          (e: Error) => `error: ${e.message}`,
        );
        return { hasF16, loaded };
      })
      .catch((e: Error) => {
        throw new Error(`${e.message}\n${log.join("\n")}`);
      })) as { hasF16: boolean; loaded: string };
    // SwiftShader (this suite's Chromium) has no shader-f16; a browser on a GPU has.
    if (out.hasF16) expect(out.loaded).toBe("f16");
    else expect(out.loaded).toMatch(/^error: fromWeights: precision f16 needs the shader-f16 feature, which this device does not have/);
    await page.close();
  }, 120_000);

  it("passes the kernel goldens (matmul, attention, LayerNorm, softmax, ConvTranspose3d, resample) on the page's WebGPU", async () => {
    const { page, log } = await openPage(browser!, `${server!.url}/kernels_page.html`);
    await page.waitForFunction('document.getElementById("ready")?.textContent === "ready"', { timeout: 60_000 });
    const names = ["matmul", "attention", "layernorm", "softmax", "conv_transpose3d", "resample"];
    const out = (await page.evaluate((n) => (globalThis as any).segvolKernels.runKernelGoldens(n), names).catch((e: Error) => {
      throw new Error(`${e.message}\n${log.join("\n")}`);
    })) as { subgroups: [number, number]; rows: { suite: string; name: string; err: number; tol: number; shapeOk: boolean }[] };
    for (const s of names) expect(out.rows.filter((r) => r.suite === s).length, s).toBeGreaterThanOrEqual(6);
    const failed = out.rows.filter((r) => !r.shapeOk || !(r.err <= r.tol));
    expect(failed, JSON.stringify(failed)).toEqual([]);
    // SwiftShader's subgroups are 4 lanes: the portable variants, not lavapipe's 8-lane ones.
    console.log(`kernel goldens in Chromium: ${out.rows.length} cases, subgroups ${out.subgroups.join("-")} lanes`);
    await page.close();
  }, 600_000);

  it("segments the demo phantom by text, box and points as Node does (Dice ≥ 0.999, logits within 1e-3)", async () => {
    const ph = generatePhantom(SEED);
    const organ = (name: string) => Uint8Array.from(ph.labels, (l) => (l === PHANTOM_LABELS.indexOf(name) ? 1 : 0));
    const targets: Target[] = [
      { name: "text:liver", text: "liver" },
      { name: "box:liver", box: boundingBox(organ("liver"), ph.dims) },
      { name: "points:spleen", points: samplePoints(organ("spleen"), ph.dims).map((ijk) => ({ ijk, label: 1 as const })) },
    ];
    const model = await SegVol.fromWeights(join(REPO, "weights/demo"));
    const t0 = performance.now();
    const node = await model.segment({ dims: ph.dims, data: Float32Array.from(ph.image) }, targets);
    const nodeSeconds = (performance.now() - t0) / 1000;
    model.dispose();
    releaseGpu();

    const { page, log } = await libPage();
    const out = (await page
      .evaluate((seed, t) => (globalThis as any).segvolTest.segmentPhantom(seed, "weights/demo", t), SEED, targets)
      .catch((e: Error) => {
        throw new Error(`${e.message}\n${log.join("\n")}`);
      })) as { loadSeconds: number; segmentSeconds: number; targets: { name: string; voxels: number; mask: string; logits: string }[] };
    console.log(`demo phantom ${SEED}, ${targets.length} targets: Node ${nodeSeconds.toFixed(1)} s, Chromium ${out.segmentSeconds.toFixed(1)} s (+${out.loadSeconds.toFixed(1)} s load)`);
    expect(out.targets.map((t) => t.name)).toEqual(targets.map((t) => t.name));
    out.targets.forEach((t, i) => {
      const ref = node.targets[i]!;
      const mask = fromBase64(t.mask);
      const b = fromBase64(t.logits);
      const logits = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      expect(ref.voxels, t.name).toBeGreaterThan(1000);
      expect(dice(mask, ref.mask), t.name).toBeGreaterThanOrEqual(0.999);
      let worst = 0;
      for (let v = 0; v < logits.length; v++) worst = Math.max(worst, Math.abs(logits[v]! - ref.logits[v]!));
      expect(logits.length).toBe(ref.logits.length);
      expect(worst, `${t.name}: largest logit difference`).toBeLessThanOrEqual(1e-3);
    });
    await page.close();
  }, 900_000);
});
