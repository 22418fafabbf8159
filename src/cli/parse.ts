// Parsing of prompt arguments shared by the CLI commands: every number is
// checked, and errors name the flag and the value.

export function parseIntList(flag: string, value: string, count: number): number[] {
  const parts = value.split(",").map((s) => s.trim());
  if (parts.length !== count) throw new Error(`${flag} ${value}: expected ${count} comma-separated integers`);
  return parts.map((s) => {
    const v = Number(s);
    if (s === "" || !Number.isInteger(v)) throw new Error(`${flag} ${value}: "${s}" is not an integer`);
    return v;
  });
}

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
