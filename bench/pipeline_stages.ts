// Host-side cost of the volume pipeline at full size (`npx tsx bench/pipeline_stages.ts [I J K] [targets]`):
// a synthetic CT-like 512×512×120 volume through preprocessing and
// zoom-out-zoom-in with the official window [32, 256, 256] and a cheap fake
// window model, so the numbers are the pipeline's own (crop, resizes,
// prompt maps, averaging, pasting), not the network's.
import { preprocess } from "../src/segvol/pipeline/preprocess.js";
import { segmentVolume } from "../src/segvol/pipeline/segment.js";
import type { Target, Vec3 } from "../src/segvol/pipeline/types.js";
import { FakeSegmenter } from "../test/pipeline/fake-segmenter.js";

const args = process.argv.slice(2).map(Number);
const dims: Vec3 = [args[0] || 512, args[1] || 512, args[2] || 120];
const nTargets = args[3] || 4;
const [I, J, K] = dims;
const data = new Float32Array(I * J * K);
let seed = 7;
const noise = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 30;
for (let k = 0, x = 0; k < K; k++)
  for (let j = 0; j < J; j++)
    for (let i = 0; i < I; i++, x++) {
      const body = ((i - I / 2) / (0.45 * I)) ** 2 + ((j - J / 2) / (0.4 * J)) ** 2 <= 1;
      const organ = ((i - 0.6 * I) / (0.12 * I)) ** 2 + ((j - 0.45 * J) / (0.1 * J)) ** 2 + ((k - K / 2) / (0.3 * K)) ** 2 <= 1;
      data[x] = Math.round(body ? (organ ? 600 : 30) + noise() : -1000 + noise() / 6);
    }
const volume = { dims, data };

// The machine may be shared: report process CPU time beside wall time.
const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e3;
};
let t = performance.now();
let c = process.cpuUsage();
const pre = preprocess(volume);
console.log(`volume ${dims.join("×")}: preprocess alone ${(performance.now() - t).toFixed(0)} ms wall, ${cpuMs(c).toFixed(0)} ms CPU; crop ${JSON.stringify(pre.cropBox)}`);

const names = ["liver", "spleen", "left kidney", "right kidney", "aorta", "pancreas"];
const targets: Target[] = Array.from({ length: nTargets }, (_, n) => ({ name: names[n % names.length]!, text: names[n % names.length]! }));
const fake = new FakeSegmenter([32, 256, 256]);
// CPU time inside the fake model, to subtract: what remains is the pipeline's own.
let modelCpu = 0;
const timed = <T>(f: () => Promise<T>) => async () => {
  const c0 = process.cpuUsage();
  try {
    return await f();
  } finally {
    modelCpu += cpuMs(c0);
  }
};
const model = {
  spatialSize: fake.spatialSize,
  encode: (w: Float32Array) => timed(() => fake.encode(w))(),
  decode: (e: unknown, p: Parameters<typeof fake.decode>[1]) => timed(() => fake.decode(e, p))(),
  release: (e: unknown) => fake.release(e),
};
t = performance.now();
c = process.cpuUsage();
const res = await segmentVolume(model, volume, targets);
const total = performance.now() - t;
const totalCpu = cpuMs(c);
const s = res.stats;
console.log(
  `segment ${nTargets} targets: total ${total.toFixed(0)} ms (preprocess ${(s.seconds.preprocess * 1e3).toFixed(0)}, zoom-out ${(s.seconds.zoomOut * 1e3).toFixed(0)}, zoom-in ${(s.seconds.zoomIn * 1e3).toFixed(0)} ms incl. fake model)`,
);
console.log(`CPU: ${totalCpu.toFixed(0)} ms in all, ${modelCpu.toFixed(0)} ms of it in the fake model → pipeline ${(totalCpu - modelCpu).toFixed(0)} ms`);
console.log(`encodes ${s.encodes} (upstream would run ${nTargets * (1 + s.zoomInWindows / nTargets)}), decodes ${s.decodes}, zoom-in windows per target ${res.targets.map((r) => r.windows - 1).join(", ")}`);
