// Kernel profiles for the whole-model benches (`--profile N`): the GPU time
// of the last N steps (Gpu.startKernelProfile), summed per kernel family
// (kernelFamily: the pipeline key's op and variant, not its sizes), per
// step, longest first, as JSON rows and a table on stderr; then the longest
// single launches (a pipeline over one workgroup grid, which tells a
// kernel's call sizes apart).
import type { KernelTime } from "../src/tensor/kernel_profile.js";
import { kernelFamily } from "../src/tensor/kernel_profile.js";

export interface KernelProfileRow {
  family: string;
  calls_per_step: number;
  ms_per_step: number;
  /** Fraction of the profiled GPU time. */
  share: number;
}

export function profileRows(profile: KernelTime[], steps: number): KernelProfileRow[] {
  const families = new Map<string, { calls: number; ms: number }>();
  for (const k of profile) {
    const f = families.get(kernelFamily(k.kernel)) ?? { calls: 0, ms: 0 };
    f.calls += k.calls;
    f.ms += k.ms;
    families.set(kernelFamily(k.kernel), f);
  }
  const total = profile.reduce((s, k) => s + k.ms, 0) || 1;
  return [...families]
    .map(([family, f]) => ({
      family,
      calls_per_step: Math.round((f.calls / steps) * 10) / 10,
      ms_per_step: Math.round((f.ms / steps) * 1000) / 1000,
      share: Math.round((f.ms / total) * 1000) / 1000,
    }))
    .sort((a, b) => b.ms_per_step - a.ms_per_step);
}

/** The rows as a table, the longest `top` and the rest summed into one line. */
export function profileTable(rows: KernelProfileRow[], top = 25): string {
  const shown = rows.slice(0, top);
  const rest = rows.slice(top);
  const lines = [["kernel family", "calls/step", "GPU ms/step", "share"]];
  for (const r of shown) lines.push([r.family, r.calls_per_step.toFixed(1), r.ms_per_step.toFixed(2), `${(100 * r.share).toFixed(1)}%`]);
  if (rest.length > 0) {
    const sum = (f: (r: KernelProfileRow) => number) => rest.reduce((s, r) => s + f(r), 0);
    lines.push([`(${rest.length} more)`, sum((r) => r.calls_per_step).toFixed(1), sum((r) => r.ms_per_step).toFixed(2), `${(100 * sum((r) => r.share)).toFixed(1)}%`]);
  }
  const total = rows.reduce((s, r) => s + r.ms_per_step, 0);
  lines.push(["total", rows.reduce((s, r) => s + r.calls_per_step, 0).toFixed(1), total.toFixed(2), "100%"]);
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
}

export interface KernelLaunchRow {
  kernel: string;
  grid: string;
  calls_per_step: number;
  ms_per_step: number;
}

/** The `top` longest (pipeline key, workgroup grid) pairs, per step. */
export function launchRows(profile: KernelTime[], steps: number, top = 15): KernelLaunchRow[] {
  return profile
    .flatMap((k) => k.grids.map((g) => ({ kernel: k.kernel, grid: g.grid, calls_per_step: Math.round((g.calls / steps) * 10) / 10, ms_per_step: Math.round((g.ms / steps) * 1000) / 1000 })))
    .sort((a, b) => b.ms_per_step - a.ms_per_step)
    .slice(0, top);
}

export function launchTable(rows: KernelLaunchRow[]): string {
  const lines = [["pipeline", "workgroups", "calls/step", "GPU ms/step"]];
  for (const r of rows) lines.push([r.kernel.length > 60 ? r.kernel.slice(0, 57) + "..." : r.kernel, r.grid, r.calls_per_step.toFixed(1), r.ms_per_step.toFixed(2)]);
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
}
