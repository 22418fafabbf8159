// The Node built-ins the library's shared modules use (files, paths, zlib,
// hashes), in one place. In Node this module is them; the browser build
// (scripts/build.mjs) replaces it with host.browser.ts, whose functions throw
// NodeOnlyError, so that a page's bundle holds no Node built-in and modules
// such as nifti.ts or config.ts serve both: their byte-level parts run in a
// page, their path-level parts (readNifti, loadConfig …) only in Node.
import { constants as bufferConstants } from "node:buffer";

export {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
export { basename, dirname, join, resolve } from "node:path";
export { constants as zlibConstants, gunzipSync, gzipSync } from "node:zlib";
export { homedir, hostname } from "node:os";
export { createHash, randomBytes } from "node:crypto";

/** The largest Buffer this Node.js allocates. */
export const MAX_BUFFER_LENGTH: number = bufferConstants.MAX_LENGTH;

/** Whether the Node built-ins are here (false in the browser build). */
export const HAS_NODE_BUILTINS = true;
