// Whether an existing folder is a previous output of one of our weight
// writers (`segvol convert`, `init`, `grow`): only the files such a folder
// holds, with a model.safetensors whose metadata names the same producer.
// Writers replace such a folder and refuse any other, so a mistyped --out
// never deletes a user's data.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile } from "./safetensors.js";

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
