// The web app end to end in real Chromium: built by scripts/web.mjs as
// `npm run web` builds it, served on 127.0.0.1; open the demo phantom, type
// "liver", Segment, wait, read the legend's volume, take a screenshot, and
// check that the overlay's pixels sit on the phantom's liver.
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import type { Browser, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePhantom, PHANTOM_LABELS } from "../../src/demo/phantom.js";
import { readNifti } from "../../src/io/nifti.js";
// @ts-expect-error: a plain .mjs module without declarations
import { buildWeb, serveDir } from "../../scripts/web.mjs";
import { launchChromium, openPage, peakRss, removeDir } from "./harness.js";

const SEED = 4242;
let dir: string | undefined;
let server: { server: import("node:http").Server; url: string } | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "segvol-web-"));
  await buildWeb(dir);
  server = await serveDir(dir, 0);
  // NiiVue draws with WebGL2: SwiftShader's, headless.
  browser = await launchChromium(["--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--window-size=1280,800"]);
}, 180_000);

afterAll(async () => {
  await browser?.close().catch(() => {});
  await new Promise<void>((ok) => (server ? server.server.close(() => ok()) : ok()));
  removeDir(dir);
});

const text = (page: Page, sel: string) => page.$eval(sel, (e) => e.textContent ?? "");

describe("the web app in Chromium", () => {
  it("segments the liver of the demo phantom: legend volume, overlay on the liver", async () => {
    const { page, log } = await openPage(browser!, server!.url);
    await page.setViewport({ width: 1280, height: 800 });
    const fail = (what: string) => (e: Error) => {
      throw new Error(`${what}: ${e.message}\nerror: ${log.join("\n")}`);
    };
    await page.waitForFunction('document.body.dataset.ready === "1"', { timeout: 60_000 }).catch(fail("the app did not start"));
    // A malformed file: an error in the page, which keeps working.
    const broken = join(dir!, "broken.nii");
    writeFileSync(broken, "not a NIfTI file at all");
    await (await page.$("#file"))!.uploadFile(broken);
    await page.waitForFunction('document.getElementById("error").textContent !== ""', { timeout: 30_000 }).catch(fail("no error for a malformed file"));
    expect(await text(page, "#error")).toMatch(/broken\.nii/);
    await page.click("#demo");
    await page.waitForFunction('document.getElementById("status").textContent.startsWith("phantom_4242")', { timeout: 60_000 }).catch(fail("the phantom did not open"));
    await checkPointClick(page);
    await page.type("#text", "liver");
    await checkCancel(page, fail);
    const memory = peakRss(browser!.process()!.pid!);
    const t0 = performance.now();
    await page.click("#segment");
    await page
      .waitForFunction('document.querySelector("#legend tbody tr") !== null || document.getElementById("error").textContent !== ""', { timeout: 900_000, polling: 500 })
      .catch(fail("no result"));
    const peak = memory.stop();
    console.log(`app: liver of phantom ${SEED} in ${((performance.now() - t0) / 1000).toFixed(1)} s (${await text(page, "#stage")}); Chromium's peak RSS (all its processes) ${(peak / 2 ** 20).toFixed(0)} MiB`);
    expect(await text(page, "#error")).toBe("");
    expect(log.filter((l) => l.startsWith("pageerror"))).toEqual([]);
    const row = await page.$$eval("#legend tbody tr td", (tds) => tds.map((t) => t.textContent ?? ""));
    expect(row[1]).toBe("liver");
    const voxels = Number(row[2]);
    const ml = Number(row[3]);
    const ph = generatePhantom(SEED);
    const liver = PHANTOM_LABELS.indexOf("liver");
    const truth = ph.labels.reduce((n, l) => n + (l === liver ? 1 : 0), 0);
    const voxelMl = (ph.spacing[0] * ph.spacing[1] * ph.spacing[2]) / 1000;
    expect(voxels / truth).toBeGreaterThan(0.85);
    expect(voxels / truth).toBeLessThan(1.15);
    expect(ml).toBeCloseTo(voxels * voxelMl, 0);
    await checkDownload(page, voxels, ph.dims, ph.affine);

    // The axial slice through the liver's centre, then a screenshot of the canvas.
    await page.click('[data-view="0"]');
    const centre = centreOf(ph.labels, liver, ph.dims);
    await page.evaluate((c) => {
      const app = (globalThis as any).segvolApp;
      app.nv.scene.crosshairPos = app.nv.vox2frac(c);
      app.nv.drawScene();
    }, centre);
    const canvas = (await page.$("#gl"))!;
    const shot = await canvas.screenshot({ type: "png" });
    const out = mkdtempSync(join(tmpdir(), "segvol-app-shot-"));
    writeFileSync(join(out, "app.png"), shot);
    const png = PNG.sync.read(Buffer.from(shot));
    const red: [number, number][] = [];
    for (let y = 0; y < png.height; y += 2) {
      for (let x = 0; x < png.width; x += 2) {
        const o = 4 * (y * png.width + x);
        if (png.data[o]! > 120 && png.data[o]! > 2 * png.data[o + 1]! && png.data[o]! > 2 * png.data[o + 2]!) red.push([x, y]);
      }
    }
    expect(red.length, `red overlay pixels in ${join(out, "app.png")}`).toBeGreaterThan(200);
    const dpr = (await page.evaluate("devicePixelRatio")) as number;
    const voxelsAt = (await page.evaluate(
      (pts: [number, number][], r: number) => pts.map(([x, y]) => (globalThis as any).segvolApp.voxelAt(x * r, y * r)),
      red,
      dpr,
    )) as ([number, number, number] | null)[];
    const [ni, nj] = ph.dims;
    let inside = 0, mapped = 0;
    for (const v of voxelsAt) {
      if (!v) continue;
      mapped++;
      if (nearLabel(ph.labels, liver, ph.dims, v)) inside++;
    }
    expect(mapped).toBeGreaterThan(red.length * 0.9);
    expect(inside / mapped, `overlay pixels on the liver (of ${mapped}); ${ni}×${nj}`).toBeGreaterThan(0.95);
    removeDir(out); // kept only when a check above fails, for its message
    await page.close();
  }, 1_200_000);
});

/** A click on a slice in "+ point" mode adds a positive point at the voxel under the cursor; Clear removes it. */
async function checkPointClick(page: Page): Promise<void> {
  await page.click('input[name="mode"][value="pos"]');
  const box = (await (await page.$("#gl"))!.boundingBox())!;
  const [x, y] = [box.x + box.width * 0.25, box.y + box.height * 0.25];
  const dpr = (await page.evaluate("devicePixelRatio")) as number;
  const want = await page.evaluate((px: number, py: number) => (globalThis as any).segvolApp.voxelAt(px, py), (x - box.x) * dpr, (y - box.y) * dpr);
  await page.mouse.click(x, y);
  await page.waitForFunction('document.querySelectorAll("#clicks li").length === 1', { timeout: 10_000 });
  expect(want).not.toBeNull();
  expect(await text(page, "#clicks li")).toBe(`+ point ${(want as number[]).join(", ")}`);
  await page.click("#clear");
  expect(await page.$$eval("#clicks li", (l) => l.length)).toBe(0);
  await page.click('input[name="mode"][value="none"]');
}

/** Segment, then Cancel as soon as the worker reports: the run stops and Segment is offered again. */
async function checkCancel(page: Page, fail: (what: string) => (e: Error) => never): Promise<void> {
  await page.click("#segment");
  await page.waitForFunction('!document.getElementById("cancel").disabled && /of/.test(document.getElementById("stage").textContent)', { timeout: 120_000 }).catch(fail("no progress"));
  await page.click("#cancel");
  expect(await text(page, "#stage")).toBe("cancelled");
  expect(await page.$eval("#segment", (b) => (b as unknown as { disabled: boolean }).disabled)).toBe(false);
  expect(await page.$eval("#cancel", (b) => (b as unknown as { disabled: boolean }).disabled)).toBe(true);
}

/** Download gives the mask as .nii.gz in the phantom's geometry, with the legend's voxel count. */
async function checkDownload(page: Page, voxels: number, dims: number[], affine: number[][]): Promise<void> {
  const into = mkdtempSync(join(tmpdir(), "segvol-app-download-"));
  const cdp = await page.browser().target().createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: into });
  await page.click("#download");
  const file = join(into, `phantom_${SEED}_mask.nii.gz`);
  const deadline = Date.now() + 60_000;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`no download in ${into}: ${readdirSync(into).join(", ")}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
  const mask = readNifti(file);
  expect(mask.dims).toEqual(dims);
  mask.affine.forEach((row, r) => row.forEach((v, c) => expect(v).toBeCloseTo(affine[r]![c]!, 4)));
  expect(Array.from(mask.data).filter((v) => v !== 0).length).toBe(voxels);
  removeDir(into);
}

/** The label's centre voxel (rounded mean of its voxels). */
function centreOf(labels: Uint8Array, l: number, dims: [number, number, number]): [number, number, number] {
  const [ni, nj] = dims;
  const s = [0, 0, 0];
  let n = 0;
  for (let v = 0; v < labels.length; v++) {
    if (labels[v] !== l) continue;
    s[0] += v % ni;
    s[1] += Math.floor(v / ni) % nj;
    s[2] += Math.floor(v / (ni * nj));
    n++;
  }
  return s.map((x) => Math.round(x / n)) as [number, number, number];
}

/** Whether voxel v or one of its in-plane neighbours has label l (a screen pixel can fall on a mask's edge). */
function nearLabel(labels: Uint8Array, l: number, dims: [number, number, number], v: [number, number, number]): boolean {
  const [ni, nj, nk] = dims;
  for (let dj = -1; dj <= 1; dj++) {
    for (let di = -1; di <= 1; di++) {
      const i = v[0] + di, j = v[1] + dj, k = v[2];
      if (i < 0 || j < 0 || k < 0 || i >= ni || j >= nj || k >= nk) continue;
      if (labels[i + ni * (j + nj * k)] === l) return true;
    }
  }
  return false;
}
