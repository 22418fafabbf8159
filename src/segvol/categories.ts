// The categories a weights folder knows, and the check of text prompts
// against them. A text prompt the model was never trained on still gives a
// mask (CLIP embeds any words), usually of some other organ, so a prompt
// outside the folder's list is refused unless open-vocabulary use is asked
// for explicitly.
//
// Matching: a prompt names a category when the two are equal after trimming,
// collapsing runs of whitespace to one space and lower-casing ("Left  Kidney "
// names "left kidney"). Nothing else is guessed: "kidney" does not name
// "left kidney", and "left_kidney" names nothing.
import { existsSync, join, readFileSync } from "../node/host.node.js";

/** The file in a weights folder that lists its categories (a JSON array of names). */
export const CATEGORIES_FILE = "categories.json";
/** A `segvol train` checkpoint's state, whose options.categories name what it was trained on. */
const TRAINER_STATE = "trainer_state.json";

/**
 * The categories of the official SegVol checkpoint, as its authors publish
 * them: the 13 predefined anatomical categories of the SegVol web demo
 * (github.com/BAAI-DCAI/SegVol), then "kidney", which the repository's
 * inference demo (config/config_demo.json, AbdomenCT-1k) adds to liver,
 * spleen and pancreas. `segvol convert` writes this list into its output.
 */
export const OFFICIAL_CATEGORIES: readonly string[] = Object.freeze([
  "liver",
  "right kidney",
  "spleen",
  "pancreas",
  "aorta",
  "inferior vena cava",
  "right adrenal gland",
  "left adrenal gland",
  "gallbladder",
  "esophagus",
  "stomach",
  "duodenum",
  "left kidney",
  "kidney",
]);

export class UnknownCategoryError extends Error {
  override name = "UnknownCategoryError";
}

/** The matching form of a name: trimmed, whitespace runs as one space, lower case. */
export function normalizeCategory(name: string): string {
  return name.trim().replace(/\s+/g, " ").toLowerCase();
}

function checkList(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((c) => typeof c === "string" && c.trim() !== "")) {
    throw new Error(`${where}: categories must be a non-empty JSON list of names, got ${JSON.stringify(value)?.slice(0, 200)}`);
  }
  const seen = new Set<string>();
  for (const c of value as string[]) {
    const key = normalizeCategory(c);
    if (seen.has(key)) throw new Error(`${where}: category "${c}" is listed twice`);
    seen.add(key);
  }
  return value as string[];
}

function readJson(file: string): unknown {
  return parseJsonText(readFileSync(file, "utf8"), file);
}

function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message})`);
  }
}

/** The categories of a categories.json's text (a non-empty list of distinct names); `where` names it in errors. */
export function parseCategories(text: string, where = CATEGORIES_FILE): string[] {
  return checkList(parseJsonText(text, where), where);
}

/**
 * The categories a weights folder states: `categories.json`, else the
 * categories a `segvol train` checkpoint was trained on (trainer_state.json);
 * null when it states none.
 */
export function readCategories(dir: string): string[] | null {
  const list = join(dir, CATEGORIES_FILE);
  if (existsSync(list)) return checkList(readJson(list), list);
  const state = join(dir, TRAINER_STATE);
  if (existsSync(state)) {
    const cats = (readJson(state) as { options?: { categories?: unknown } } | null)?.options?.categories;
    if (cats !== undefined) return checkList(cats, state);
  }
  return null;
}

export interface TextCheck {
  /** The folder's categories (readCategories); null when it states none. */
  categories: readonly string[] | null;
  /** Pass any text through unchecked (open-vocabulary use). */
  allowUnknown?: boolean;
  /** Names the weights folder in errors. */
  source?: string;
  /** How a caller allows unknown text, for the error message (default: the library option). */
  allowHint?: string;
}

/**
 * The text to give the model for a prompt: the listed spelling of the
 * category it names, or the text itself when unknown text is allowed.
 * Throws UnknownCategoryError naming the known categories otherwise.
 */
export function resolveText(text: string, check: TextCheck): string {
  const key = normalizeCategory(text);
  const hit = check.categories?.find((c) => normalizeCategory(c) === key);
  if (hit !== undefined) return hit;
  if (check.allowUnknown) return text;
  const where = check.source ?? "the model";
  const allow = check.allowHint ?? "allowUnknownText: true";
  if (check.categories === null) {
    throw new UnknownCategoryError(
      `text prompt "${text}": ${where} does not state its categories (no ${CATEGORIES_FILE}), so the prompt cannot be checked; ` +
        `add ${CATEGORIES_FILE} (a JSON list of names) to the weights folder, or use ${allow} for open-vocabulary text`,
    );
  }
  throw new UnknownCategoryError(
    `text prompt "${text}" is not a category of ${where}; known categories: ${check.categories.join(", ")} ` +
      `(case and spacing are ignored; use ${allow} for open-vocabulary text, which may segment another structure)`,
  );
}
