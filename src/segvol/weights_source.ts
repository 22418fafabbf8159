// Where a converted weights folder's files come from when they are not a
// folder on disk: a URL (fetched; relative URLs resolve against the page),
// or the Files a user picked (an <input type="file" webkitdirectory> or a
// drop). Both read whole files as bytes; load.ts parses and checks them
// exactly as it does a folder's.

/** A weights folder read file by file: config.json, model.safetensors, tokenizer files, categories.json. */
export interface WeightsFiles {
  /** Names the folder in messages. */
  readonly name: string;
  /** The file's bytes; null when the folder has no such file. */
  read(file: string): Promise<Uint8Array | null>;
}

/** What SegVol.fromWeights accepts: a folder path (Node), a URL (absolute or relative to the page), the Files of a folder, or any WeightsFiles. */
export type WeightsSource = string | URL | ArrayLike<File> | Iterable<File> | WeightsFiles;

/** Whether `s` is a URL with a scheme fetch() reads (http, https, blob, data, file). */
export function isUrlLike(s: string): boolean {
  return /^(https?|blob|data|file):/i.test(s);
}

/** The folder at `base` (a trailing slash is added): each file fetched beside it; 404 means absent. */
export function urlFiles(base: string | URL): WeightsFiles {
  const href = typeof base === "string" ? base : base.href;
  const page = (globalThis as { location?: { href?: string } }).location?.href;
  let folder: URL;
  try {
    folder = new URL(href.endsWith("/") ? href : `${href}/`, page);
  } catch {
    throw new Error(`weights: ${href} is not a URL${page ? "" : " (a relative URL needs a page to resolve against)"}`);
  }
  return {
    name: folder.href,
    async read(file) {
      const url = new URL(file, folder);
      let res: Response;
      try {
        res = await fetch(url);
      } catch (e) {
        throw new Error(`weights: cannot fetch ${url.href}: ${(e as Error).message}`);
      }
      if (res.status === 404) return null;
      if (!res.ok) throw new Error(`weights: ${url.href}: HTTP ${res.status} ${res.statusText}`);
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}

/** The Files of a picked weights folder, matched by file name (any subfolder path is ignored). */
export function pickedFiles(files: ArrayLike<File> | Iterable<File>): WeightsFiles {
  const list = Array.from(files as Iterable<File>);
  const byName = new Map<string, File>();
  for (const f of list) {
    if (byName.has(f.name)) throw new Error(`weights: two picked files are named ${f.name}; pick one weights folder`);
    byName.set(f.name, f);
  }
  const folder = (list[0] as (File & { webkitRelativePath?: string }) | undefined)?.webkitRelativePath?.split("/")[0];
  return {
    name: folder ? `picked folder ${folder}` : `${list.length} picked files`,
    async read(file) {
      const f = byName.get(file);
      return f ? new Uint8Array(await f.arrayBuffer()) : null;
    },
  };
}

/** A WeightsFiles for anything but a folder path. */
export function weightsFiles(source: Exclude<WeightsSource, string> | string): WeightsFiles {
  if (typeof source === "string" || source instanceof URL) return urlFiles(source);
  if (typeof (source as WeightsFiles).read === "function" && typeof (source as WeightsFiles).name === "string") return source as WeightsFiles;
  return pickedFiles(source as ArrayLike<File>);
}
