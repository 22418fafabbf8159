// No function in src/ has a body longer than 100 lines: a long function is
// split into named stages, whose names say what each step does. Parses every
// src/**/*.ts with the TypeScript compiler API and names each offender as
// file:line and function.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const MAX_BODY_LINES = 100;

/**
 * Functions allowed a longer body, as "file:name" (the name `longFunctions` reports).
 */
const ALLOWED: readonly string[] = [
  // The unpickler's opcode switch: one case per pickle opcode, read best as one table.
  "src/weights/unpickle.ts:unpickle",
];

interface LongFunction {
  file: string;
  line: number;
  name: string;
  lines: number;
}

/** A function-like node's name as a reader finds it: its own, its variable's or property's, or "<anonymous>". */
function functionName(node: ts.FunctionLikeDeclaration): string {
  if (ts.isConstructorDeclaration(node)) return "constructor";
  if (node.name && !ts.isComputedPropertyName(node.name)) return node.name.getText();
  const parent = node.parent;
  if ((ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && parent.name) {
    return parent.name.getText();
  }
  return "<anonymous>";
}

/** The function-like nodes of `source` whose body spans more than `max` lines. */
function longFunctions(source: ts.SourceFile, file: string, max = MAX_BODY_LINES): LongFunction[] {
  const found: LongFunction[] = [];
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line;
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const body = node.body as ts.Node;
      // The lines between the braces (an arrow's expression body: its own lines).
      const lines = ts.isBlock(body) ? lineOf(body.getEnd()) - lineOf(body.getStart(source)) - 1 : lineOf(body.getEnd()) - lineOf(body.getStart(source)) + 1;
      if (lines > max) {
        found.push({ file, line: lineOf(node.getStart(source)) + 1, name: functionName(node as ts.FunctionLikeDeclaration), lines });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

function parse(file: string, text: string): ts.SourceFile {
  return ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

describe("function length", () => {
  it(`no function in src/ has a body over ${MAX_BODY_LINES} lines`, () => {
    const files = sourceFiles(join(ROOT, "src"));
    expect(files.length).toBeGreaterThan(50);
    const long = files.flatMap((path) => {
      const file = relative(ROOT, path).split("\\").join("/");
      return longFunctions(parse(file, readFileSync(path, "utf8")), file);
    });
    const offenders = long.filter((f) => !ALLOWED.includes(`${f.file}:${f.name}`));
    const stale = ALLOWED.filter((a) => !long.some((f) => `${f.file}:${f.name}` === a));
    const list = offenders.map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`);
    expect(list, `functions over ${MAX_BODY_LINES} lines: split them into named stages\n  ${list.join("\n  ")}\n`).toEqual([]);
    expect(stale, `allowed long functions that are no longer long: remove them from ALLOWED\n  ${stale.join("\n  ")}\n`).toEqual([]);
  });

  it("flags every kind of long function, and only long ones", () => {
    const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join("\n");
    const source = parse(
      "src/x.ts",
      [
        `export function long() {\n${body(101)}\n}`,
        `export function fits() {\n${body(100)}\n}`,
        `const arrow = () => {\n${body(101)}\n};`,
        `class C {\n  method() {\n${body(101)}\n  }\n  constructor() {\n${body(101)}\n  }\n}`,
        `export function outer() {\n  const inner = function () {\n${body(101)}\n  };\n}`,
      ].join("\n"),
    );
    expect(longFunctions(source, "src/x.ts").map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`)).toEqual([
      "src/x.ts:1 long (101 lines)",
      "src/x.ts:206 arrow (101 lines)",
      "src/x.ts:310 method (101 lines)",
      "src/x.ts:413 constructor (101 lines)",
      "src/x.ts:517 outer (103 lines)",
      "src/x.ts:518 inner (101 lines)",
    ]);
  });
});
