// A parser with planted bugs, for the harness's own test: whether the
// supervisor sees each kind of failure, names the case and saves an input
// that reproduces it. Which bug an input meets is chosen by its CRC, so the
// cases that meet each one are fixed by the run seed.
import { crc32 } from "node:zlib";
import type { Target } from "./targets.js";

export class PlantedError extends Error {
  override name = "PlantedError";
}

/** CRC % 50 → the bug planted there; other inputs are refused properly or parsed. */
export const PLANTED: Record<number, string> = {
  0: "hang", 1: "exit", 2: "bomb", 3: "memory", 4: "slow", 5: "raw-error", 6: "raw-error", 7: "unnamed-file", 8: "long-message",
};

/** Spends `ms` of CPU time (user + system, as the campaign measures it). */
function burn(ms: number): void {
  const cpu = (): number => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const end = cpu() + ms * 1000;
  let x = 0;
  while (cpu() < end) for (let i = 0; i < 100_000; i++) x += Math.sqrt(i);
  if (x < 0) throw new Error("unreachable");
}

const seed = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff);

export const TARGETS: readonly Target[] = [
  {
    name: "planted",
    errors: [PlantedError],
    seeds: () => [{ label: "64 bytes", bytes: seed }],
    mutators: () => [],
    ext: () => "bin",
    run(input, _seed, ctx) {
      const bug = PLANTED[(crc32(input) >>> 0) % 50];
      if (bug === "hang") for (;;);
      if (bug === "exit") process.exit(3);
      if (bug === "bomb") {
        // Held until the supervisor kills the process for its resident memory.
        const held = Buffer.alloc(700 * 1024 * 1024, 1);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000);
        held.fill(0);
      }
      if (bug === "memory") Buffer.alloc(250 * 1024 * 1024, 1);
      if (bug === "slow") burn(300);
      if (bug === "raw-error") new DataView(input.buffer, input.byteOffset, input.byteLength).getUint32(input.byteLength);
      if (bug === "unnamed-file") throw new PlantedError("bad input (no file named)");
      if (bug === "long-message") throw new PlantedError(`${ctx.path}: ${"x".repeat(5000)}`);
      if (input[0] !== seed[0]) throw new PlantedError(`${ctx.path}: first byte ${input[0]}, expected ${seed[0]}`);
    },
  },
];
