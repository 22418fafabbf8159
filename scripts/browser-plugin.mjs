// The esbuild plugin of every browser build (the library's dist/browser.js,
// the web app, the test and bench pages): an import of `./x.node.js` inside
// src/ resolves to its sibling `./x.browser.ts`, which has the same exports
// without Node (src/node/host.node.ts: files, zlib …; src/tensor/dawn.node.ts:
// the Dawn addon). Any other Node built-in or the `webgpu` addon reached from
// a page's entry fails the build: esbuild cannot resolve `node:*` for the
// browser platform, and `webgpu` is refused here by name.
import { existsSync } from "node:fs";
import { join } from "node:path";

/** @type {import("esbuild").Plugin} */
export const nodeToBrowser = {
  name: "segvol-node-to-browser",
  setup(build) {
    build.onResolve({ filter: /\.node\.js$/ }, (args) => {
      const target = join(args.resolveDir, args.path.replace(/\.node\.js$/, ".browser.ts"));
      if (!existsSync(target)) return { errors: [{ text: `${args.path} (imported by ${args.importer}) is Node-only and has no .browser.ts sibling` }] };
      return { path: target };
    });
    build.onResolve({ filter: /^webgpu$/ }, (args) => ({
      errors: [{ text: `the Dawn addon \`webgpu\` is Node-only (imported by ${args.importer}); a page's device comes from navigator.gpu` }],
    }));
  },
};

/** esbuild options shared by the browser builds. */
export const browserOptions = {
  bundle: true,
  platform: "browser",
  format: "esm",
  target: ["chrome113", "firefox141", "safari26"],
  plugins: [nodeToBrowser],
  logLevel: "warning",
};
