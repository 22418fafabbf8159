// host.node.ts's stand-in in the browser build (scripts/build.mjs maps every
// `*.node.js` import of src/ to its `*.browser.ts` sibling): the same names,
// each throwing NodeOnlyError, since a page has no files by path, no zlib and
// no Node crypto. What a page calls instead: SegVol.fromWeights(URL or Files),
// parseNifti(bytes), encodeNifti(...).
import type * as host from "./host.node.js";

export class NodeOnlyError extends Error {
  override name = "NodeOnlyError";
}

function nodeOnly<T>(name: string): T {
  return (() => {
    throw new NodeOnlyError(
      `${name} needs Node.js: in a browser, load weights with SegVol.fromWeights(url or Files), ` +
        `read NIfTI with parseNifti(bytes) and write it with encodeNifti(...)`,
    );
  }) as T;
}

type Host = typeof host;
export const closeSync = nodeOnly<Host["closeSync"]>("closeSync");
export const existsSync = nodeOnly<Host["existsSync"]>("existsSync");
export const fstatSync = nodeOnly<Host["fstatSync"]>("fstatSync");
export const fsyncSync = nodeOnly<Host["fsyncSync"]>("fsyncSync");
export const lstatSync = nodeOnly<Host["lstatSync"]>("lstatSync");
export const mkdirSync = nodeOnly<Host["mkdirSync"]>("mkdirSync");
export const openSync = nodeOnly<Host["openSync"]>("openSync");
export const readFileSync = nodeOnly<Host["readFileSync"]>("readFileSync");
export const readSync = nodeOnly<Host["readSync"]>("readSync");
export const readdirSync = nodeOnly<Host["readdirSync"]>("readdirSync");
export const readlinkSync = nodeOnly<Host["readlinkSync"]>("readlinkSync");
export const renameSync = nodeOnly<Host["renameSync"]>("renameSync");
export const rmSync = nodeOnly<Host["rmSync"]>("rmSync");
export const statSync = nodeOnly<Host["statSync"]>("statSync");
export const unlinkSync = nodeOnly<Host["unlinkSync"]>("unlinkSync");
export const writeSync = nodeOnly<Host["writeSync"]>("writeSync");
export const basename = nodeOnly<Host["basename"]>("path.basename");
export const dirname = nodeOnly<Host["dirname"]>("path.dirname");
export const join = nodeOnly<Host["join"]>("path.join");
export const resolve = nodeOnly<Host["resolve"]>("path.resolve");
export const gunzipSync = nodeOnly<Host["gunzipSync"]>("zlib.gunzipSync");
export const gzipSync = nodeOnly<Host["gzipSync"]>("zlib.gzipSync");
export const zlibConstants = {} as Host["zlibConstants"];
export const hostname = nodeOnly<Host["hostname"]>("os.hostname");
export const homedir = nodeOnly<Host["homedir"]>("os.homedir");
export const createHash = nodeOnly<Host["createHash"]>("crypto.createHash");
export const randomBytes = nodeOnly<Host["randomBytes"]>("crypto.randomBytes");
/** The largest ArrayBuffer to attempt in a page (V8 allows up to 2^32 bytes on 64-bit). */
export const MAX_BUFFER_LENGTH: Host["MAX_BUFFER_LENGTH"] = 2 ** 32;
export const HAS_NODE_BUILTINS = false;

// The two modules must keep the same exports.
({}) as Record<keyof Host, unknown> satisfies Record<Exclude<keyof typeof import("./host.browser.js"), "NodeOnlyError">, unknown>;
