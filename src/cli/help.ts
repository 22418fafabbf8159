// How every command's help reads: required options say so, defaults print
// as a user would type them (a number, not a quoted string of 16 digits),
// and each command ends with examples.
import type { Help, Option } from "commander";

/** A default as shown in help: as typed, but long fractions (2/3 as a string) rounded to 4 significant digits; whole numbers exact. */
export function formatDefault(value: unknown): string {
  const text = Array.isArray(value) ? value.join(",") : String(value);
  const n = typeof value === "number" || typeof value === "string" ? Number(value) : NaN;
  if (text.trim() !== "" && Number.isFinite(n) && !Number.isInteger(n) && text.length > 8) return String(Number(n.toPrecision(4)));
  return text;
}

/** Option descriptions with "required" and plain defaults; for `program.configureHelp`. */
export const helpConfig: Partial<Help> = {
  optionDescription(option: Option): string {
    const text = option.mandatory ? `(required) ${option.description}` : option.description;
    // Boolean and --no-* defaults say nothing a user types.
    if (option.defaultValue === undefined || !(option.required || option.optional)) return text;
    return `${text} (default: ${option.defaultValueDescription ?? formatDefault(option.defaultValue)})`;
  },
};

/** The "Examples:" block that ends a command's help. */
export function examples(lines: readonly string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`;
}
