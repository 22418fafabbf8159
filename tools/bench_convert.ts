// Peak host memory of `segvol convert` on a full-size checkpoint.
//
//   /usr/bin/python3 tools/fixtures/gen_ckpt_fullsize.py /tmp/segvol-bench/pytorch_model.bin
//   npx tsx tools/bench_convert.ts /tmp/segvol-bench/pytorch_model.bin [--dtype f16]
//
// Converts into a temp folder (removed afterwards), spot-checks tensors
// against the checkpoint bit for bit, and prints one JSON line: time, the
// process's peak RSS (getrusage maxrss) and the RSS before converting, to
// compare with the checkpoint size (streaming means peak ≪ 2 × file size).
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCheckpoint } from "../src/weights/checkpoint.js";
import { convertCheckpoint } from "../src/segvol/convert.js";
import { SafetensorsFile } from "../src/weights/safetensors.js";

const args = process.argv.slice(2);
const ckpt = args.find((a) => !a.startsWith("--")) ?? "/tmp/segvol-bench/pytorch_model.bin";
const dtype = args.includes("--dtype") ? (args[args.indexOf("--dtype") + 1] as "f32" | "f16") : "f32";
const mb = (b: number): number => Math.round(b / 1e5) / 10;

const rssBefore = process.memoryUsage().rss;
const out = join(mkdtempSync(join(tmpdir(), "segvol-bench-convert-")), "weights");
const t0 = performance.now();
const r = convertCheckpoint({ checkpoint: ckpt, outDir: out, dtype });
const seconds = (performance.now() - t0) / 1000;
const peak = process.resourceUsage().maxRSS * 1024; // kB → bytes

// Spot check: the largest tensor and a few others, bit for bit (f32 only).
let checked = 0;
if (dtype === "f32") {
  const ck = openCheckpoint(ckpt);
  const st = SafetensorsFile.open(join(out, "model.safetensors"));
  const names = ck.names();
  for (const name of [names[0]!, names[names.length - 1]!, "text_encoder.clip_text_model.text_model.embeddings.token_embedding.weight"]) {
    if (!ck.has(name)) continue;
    if (!Buffer.from(ck.readRaw(name)).equals(Buffer.from(st.readRaw(name)))) throw new Error(`bench_convert: ${name} differs after convert`);
    checked++;
  }
  ck.close();
  st.close();
}
const outBytes = statSync(join(out, "model.safetensors")).size;
rmSync(join(out, ".."), { recursive: true, force: true });
console.log(
  JSON.stringify({
    checkpoint: ckpt,
    checkpoint_mb: mb(statSync(ckpt).size),
    dtype,
    tensors: r.tensors,
    parameters: r.parameters,
    output_mb: mb(outBytes),
    seconds: Math.round(seconds * 10) / 10,
    rss_before_mb: mb(rssBefore),
    peak_rss_mb: mb(peak),
    spot_checked_bit_identical: checked,
  }),
);
