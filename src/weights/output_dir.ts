// Whether an existing folder is a previous output of one of our weight
// writers (`segvol convert`, `init`, `grow`): only the files such a folder
// holds, with a model.safetensors whose metadata names the same producer.
// Writers replace such a folder and refuse any other, so a mistyped --out
// never deletes a user's data; and they refuse a folder holding one of their
// own inputs, so no command replaces or deletes a file it reads.
import { existsSync, lstatSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { SafetensorsFile } from "./safetensors.js";

/** Writing the output folder would replace or delete one of the command's inputs. */
export class OutputReplacesInputError extends Error {
  override name = "OutputReplacesInputError";
}

/**
 * Throws OutputReplacesInputError when writing `outDir` would replace or
 * delete a file or folder in `inputs`: a writer swaps the whole folder out
 * and deletes it, so an input that is the folder, lies inside it (however
 * named: real paths are compared, so symlinks do not hide it) or is a hard
 * link of a file in it, is refused. Inputs that do not exist are skipped.
 */
export function assertSparesInputs(outDir: string, inputs: readonly string[], what: string): void {
  if (!existsSync(outDir)) return;
  const out = realpathSync(outDir);
  const files = statSync(out).isDirectory()
    ? readdirSync(out)
        .map((e) => lstatSync(join(out, e)))
        .filter((st) => st.isFile())
    : [];
  for (const input of inputs) {
    if (!existsSync(input)) continue;
    const real = realpathSync(input);
    const st = statSync(real);
    const inside = real === out || real.startsWith(out.endsWith(sep) ? out : out + sep);
    const linked = st.isFile() && files.some((f) => f.dev === st.dev && f.ino === st.ino);
    if (inside || linked) {
      throw new OutputReplacesInputError(
        `${what}: refusing to write ${outDir}: it would replace or delete ${input}${real !== resolve(input) ? ` (${real})` : ""}, which this command reads; choose another --out`,
      );
    }
  }
}

/** The folder's entries outside `files` (empty when none), and whether it is a previous output of `producer`. */
export function previousOutput(dir: string, files: ReadonlySet<string>, producer: string): { ours: boolean; foreign: string[] } {
  const entries = readdirSync(dir);
  const foreign = entries.filter((e) => !files.has(e));
  if (foreign.length > 0 || !entries.includes("model.safetensors")) return { ours: false, foreign };
  try {
    const f = SafetensorsFile.open(join(dir, "model.safetensors"));
    const ours = f.metadata.producer === producer;
    f.close();
    return { ours, foreign };
  } catch {
    return { ours: false, foreign };
  }
}
