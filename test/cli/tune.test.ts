// `segvol tune` on a small config: it times the config's attention shapes
// (--ops attention keeps the test to a few pipelines), writes the adapter's
// cache in --cache-dir, prints the winners, and a later process (this one)
// loads them into its profile; with --precision f16 the winners serve f16
// calls only. Plus the model's shape list and the flags' errors.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { registerTune } from "../../src/cli/tune.js";
import { chooseAttentionVariant } from "../../src/kernels/attention.js";
import { deviceProfile, setDeviceProfile } from "../../src/kernels/profile.js";
import { DEFAULT_CONFIG, parseConfigText } from "../../src/segvol/config.js";
import { modelTuneShapes } from "../../src/segvol/tune_shapes.js";
import { initGpu, releaseGpu } from "../../src/tensor/device.js";
import { loadTunedChoices } from "../../src/tune/cache.js";
import { shapeTitle } from "../../src/tune/jobs.js";
import type { TuneResult } from "../../src/tune/tuner.js";
import { readNpy, writeNpy } from "../../src/io/npy.js";
import { convertCheckpoint } from "../../src/segvol/convert.js";
import { runSegvol } from "../helpers/cli.js";
import { loadFixture, relError } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "segvol-tune-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 8 tokens of 64 features, 4 heads: a model small enough to tune in seconds. */
const SMALL = {
  spatial_size: [8, 32, 32],
  patch_size: [4, 16, 16],
  in_channels: 1,
  vit: { hidden_size: 64, mlp_dim: 64, num_layers: 1, num_heads: 4 },
  decoder: { transformer_dim: 64, depth: 1, num_heads: 4, mlp_dim: 64, num_multimask_outputs: 3, iou_head_depth: 3, iou_head_hidden_dim: 16, attention_downsample_rate: 2 },
  prompt_encoder: { mask_in_chans: 4 },
  text: null,
};

describe("segvol tune", () => {
  it("lists the official window's shapes: encoder and decoder, each bucket once", () => {
    const titles = modelTuneShapes(DEFAULT_CONFIG).map((s) => shapeTitle(s));
    expect(titles).toEqual(
      expect.arrayContaining([
        "gemm 2048×768×1024", // patch embedding
        "matmul 2048×768×768",
        "matmul 2048×3072×768",
        "matmul 2048×768×3072",
        "attention 2048×2048×64×64",
        "attention 8×2048×48×48", // decoder, token to image
        "attention 2048×8×48×48",
        "gemm 1536×2048×768", // upscaling
        "gemm 768×16384×192",
      ]),
    );
    expect(new Set(titles).size).toBe(titles.length);
  });

  it("tunes a small config's attention, caches the winners, and a later run loads them", { timeout: 600_000 }, async () => {
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify(SMALL));
    const cache = join(dir, "cache");
    const r = runSegvol(dir, ["tune", "--config", config, "--ops", "attention", "--reps", "2", "--cache-dir", cache, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as TuneResult[];
    const shapes = modelTuneShapes(parseConfigText(JSON.stringify(SMALL), "small")).filter((s) => s.op === "attention");
    expect(results.map((x) => x.title)).toEqual(shapes.map((s) => shapeTitle(s)));
    expect(r.stderr).toContain(`tune 1/${shapes.length}: ${shapeTitle(shapes[0]!)}`);
    expect(r.stderr).toMatch(/winners cached in /);
    expect(readdirSync(cache)).toHaveLength(1);

    await initGpu();
    try {
      const prev = setDeviceProfile({ tuned: {} });
      expect(await loadTunedChoices({ location: { dir: cache } })).toBe(results.length);
      for (const [i, s] of shapes.entries()) expect(chooseAttentionVariant(deviceProfile(), s)).toEqual(results[i]!.winner);
      setDeviceProfile(prev);
    } finally {
      releaseGpu();
    }
  });

  it("--precision f16 times f16 tensors and caches winners that f16 calls take and f32 calls do not", { timeout: 600_000 }, async (ctx) => {
    await initGpu();
    const hasF16 = deviceProfile().f16;
    releaseGpu();
    ctx.skip(!hasF16, "the adapter lacks shader-f16");
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify(SMALL));
    const cache = join(dir, "cache-f16");
    const r = runSegvol(dir, ["tune", "--config", config, "--ops", "attention", "--reps", "1", "--precision", "f16", "--cache-dir", cache, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as TuneResult[];
    const shapes = modelTuneShapes(parseConfigText(JSON.stringify(SMALL), "small")).filter((s) => s.op === "attention");
    expect(results.map((x) => [x.title, x.precision])).toEqual(shapes.map((s) => [shapeTitle(s, "f16"), "f16"]));
    await initGpu();
    try {
      const prev = setDeviceProfile({ tuned: {} });
      expect(await loadTunedChoices({ location: { dir: cache } })).toBe(results.length);
      for (const [i, s] of shapes.entries()) {
        expect(chooseAttentionVariant(deviceProfile(), s, "f16")).toEqual(results[i]!.winner);
        expect(chooseAttentionVariant(deviceProfile(), s, "f32")).toEqual(chooseAttentionVariant({ ...deviceProfile(), tuned: {} }, s, "f32"));
      }
      setDeviceProfile(prev);
    } finally {
      releaseGpu();
    }
  });

  it("prints the winners as a table", { timeout: 600_000 }, () => {
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify(SMALL));
    const r = runSegvol(dir, ["tune", "--config", config, "--ops", "attention", "--reps", "1", "--cache-dir", join(dir, "cache2")]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^shape +candidates +heuristic ms +winner +winner ms +GFLOP\/s +speed-up\n/);
    expect(r.stdout).toMatch(/attention 8×8×16×16 +\d+ +[\d.]+ +lanes=\d+/);
  });

  it("segvol forward reads the cache of --weights' shapes: its logits stay the goldens'; a corrupt cache is a warning", { timeout: 900_000 }, () => {
    const FIX = join(__dirname, "..", "fixtures", "model");
    convertCheckpoint({ checkpoint: join(FIX, "config_a.bin"), outDir: join(dir, "w"), config: join(FIX, "config_a.json") });
    const goldens = loadFixture("model/goldens_a");
    const window = goldens.find((c) => c.name === "encoder")!.inputs.window!;
    const box = goldens.find((c) => c.name === "box")!;
    writeNpy(join(dir, "window.npy"), window.data as Float32Array, window.shape);
    const cache = join(dir, "cache-a");
    const t = runSegvol(dir, ["tune", "--weights", "w", "--ops", "attention", "--reps", "1", "--cache-dir", cache]);
    expect(t.code, t.stderr).toBe(0);
    const forward = () => {
      process.env.SEGVOL_CACHE_DIR = cache;
      try {
        return runSegvol(dir, ["forward", "--weights", "w", "--image", "window.npy", "--box", Array.from(box.inputs.box!.data).join(","), "--out", "logits.npy"]);
      } finally {
        delete process.env.SEGVOL_CACHE_DIR;
      }
    };
    const r = forward();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/tune cache/);
    expect(relError(readNpy(join(dir, "logits.npy")).data as Float32Array, box.outputs.logits!.data)).toBeLessThanOrEqual(1e-3);
    const [file] = readdirSync(cache);
    writeFileSync(join(cache, file!), "{ not json");
    const c = forward();
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/segvol: the tune cache is not JSON .*; ignored/);
  });

  it("refuses bad flags, naming them, before touching the GPU or the cache", async () => {
    const cache = join(dir, "never");
    const cases: [string[], RegExp][] = [
      [["--ops", "softmax"], /--ops softmax: expected one of matmul, attention, gemm/],
      [["--ops", "matmul,"], /--ops matmul,: empty name/],
      [["--reps", "0"], /--reps 0: expected a whole number of at least 1/],
      [["--precision", "f64"], /--precision.*f64.*Allowed choices are f32, f16/],
      [["--config", "a.json", "--weights", "w"], /give --config or --weights, not both/],
      [["--config", join(dir, "missing.json")], /missing\.json: cannot read/],
    ];
    for (const [args, why] of cases) {
      const program = new Command().exitOverride();
      registerTune(program);
      await expect(program.parseAsync(["tune", ...args, "--cache-dir", cache], { from: "user" }), args.join(" ")).rejects.toThrow(why);
    }
    expect(existsSync(cache)).toBe(false);
    // Through the command line: one line on stderr, exit status 1.
    const r = runSegvol(dir, ["tune", "--reps", "x", "--cache-dir", cache]);
    expect([r.code, r.stderr.trim()]).toEqual([1, "segvol: --reps x: expected a whole number of at least 1"]);
  });
});
