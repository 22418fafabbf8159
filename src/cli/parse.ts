// Parsing of the CLI's arguments, shared by the commands: every number is
// checked, and errors name the flag and the value.
import { Option } from "commander";

export function parseIntList(flag: string, value: string, count: number): number[] {
  const parts = value.split(",").map((s) => s.trim());
  if (parts.length !== count) throw new Error(`${flag} ${value}: expected ${count} comma-separated integers`);
  return parts.map((s) => {
    const v = Number(s);
    if (s === "" || !Number.isInteger(v)) throw new Error(`${flag} ${value}: "${s}" is not an integer`);
    return v;
  });
}

/** A whole number ≥ 1, as the flag's value (e.g. --max-voxels). */
export function parsePositiveInt(flag: string, value: string): number {
  const v = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(v) || v < 1) throw new Error(`${flag} ${value}: expected a whole number of at least 1`);
  return v;
}

/** Commander collector for repeatable options whose values are kept whole (file names, prefixes, points). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * Commander collector for the name lists (--text, --categories, --labels):
 * the option is repeatable, and one value may also hold several names
 * separated by commas (`--text liver --text spleen` = `--text liver,spleen`).
 */
export function names(flag: string): (value: string, previous?: string[]) => string[] {
  return (value, previous = []) => {
    const list = value.split(",").map((s) => s.trim());
    if (list.some((s) => s === "")) throw new Error(`${flag} ${value}: empty name`);
    return [...previous, ...list];
  };
}

/** A box `lo0,lo1,lo2,hi0,hi1,hi2` (inclusive corners, the axes each command names). */
export function parseBox(flag: string, value: string): [number, number, number, number, number, number] {
  return parseIntList(flag, value, 6) as [number, number, number, number, number, number];
}

/** A point `a,b,c[,label]`: label 1 (positive, the default) or 0 (negative). */
export function parsePoint(flag: string, value: string): { at: [number, number, number]; label: 0 | 1 } {
  const n = value.split(",").length;
  const v = parseIntList(flag, value, n === 4 ? 4 : 3);
  const label = v[3] ?? 1;
  if (label !== 0 && label !== 1) throw new Error(`${flag} ${value}: label must be 1 (positive) or 0 (negative), got ${label}`);
  return { at: [v[0]!, v[1]!, v[2]!], label };
}

/** --precision: the GPU storage precision of weights and activations (SegVolOptions.precision); commander refuses other values. */
export function precisionOption(): Option {
  return new Option("--precision <dtype>", "GPU storage precision of weights and activations: f16 halves the memory (needs shader-f16); arithmetic stays f32").choices(["f32", "f16"]).default("f32");
}
