// Quoting file content in error messages. Names, keys and JSON values come
// from untrusted files and may be megabytes long or hold newlines; an error
// quotes at most QUOTE_MAX characters of them, on one line, and says how
// long the whole was.

/** The most characters of file content one quotation puts into a message. */
export const QUOTE_MAX = 200;

/** `s` itself when short; else its first QUOTE_MAX characters and its length. */
export function excerpt(s: string): string {
  return s.length <= QUOTE_MAX ? s : `${s.slice(0, QUOTE_MAX)}... (${s.length} characters)`;
}

/** A string from a file as a quoted, escaped, cut one-line literal: `"name"`. */
export function quoted(s: string): string {
  return s.length <= QUOTE_MAX ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, QUOTE_MAX))}... (${s.length} characters)`;
}

/** A JSON value from a file (e.g. a shape), rendered and cut. */
export function quotedJson(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    // JSON.stringify recurses: a value nested some thousands of lists deep
    // (which JSON.parse accepts) overflows the stack.
    text = "(a value nested too deeply to print)";
  }
  return excerpt(text);
}

/** A shape or stride list from a file, as `[a, b, c]`, cut. */
export function dims(xs: readonly number[]): string {
  return excerpt(`[${xs.join(", ")}]`);
}
