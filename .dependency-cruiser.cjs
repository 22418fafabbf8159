// The layering of src/, checked by test/architecture/layers.test.ts
// (`npx depcruise src` prints the same violations). Rules are over src/'s
// top-level folders; type-only imports count, since they tie the layers
// together as much as value imports do.
//
//   index.ts, exports/                the package's entries (root and subpaths)
//   cli, demo, queue                  on top: nothing else imports them
//   train                             training: the model, data, optimisers
//   segvol                            the model and its volume pipeline
//   nn, autograd, weights, io, dicom, image, node
//   tune                              the autotuner: times the kernels' variants, caches winners
//   kernels                           WGSL kernels
//   tensor                            device, tensors, pools, scopes

/** A path pattern for these top-level folders of src/. */
const folders = (...names) => `^src/(${names.join("|")})/`;

const BELOW_SEGVOL = ["tensor", "kernels", "tune", "autograd", "nn", "weights", "io", "dicom", "image", "node"];

const rules = [
  {
    name: "kernels-import-only-tensor",
    comment: "The kernels are the engine's ops: they sit on tensor and on nothing else of src/.",
    from: { path: folders("kernels") },
    to: { path: "^src/", pathNot: folders("kernels", "tensor") },
  },
  {
    name: "tensor-imports-nothing",
    comment: "tensor is the bottom layer: device, tensors, pools and scopes.",
    from: { path: folders("tensor") },
    to: { path: "^src/", pathNot: folders("tensor") },
  },
  {
    name: "tune-imports-only-tensor-kernels-io-node",
    comment: "The autotuner times the kernels' variants and caches the winners (files through io and node): it knows no layer above the kernels.",
    from: { path: folders("tune") },
    to: { path: "^src/", pathNot: folders("tune", "tensor", "kernels", "io", "node") },
  },
  {
    name: "autograd-imports-only-tensor-kernels",
    comment: "The tape and the differentiable ops sit on the tensors and the kernels.",
    from: { path: folders("autograd") },
    to: { path: "^src/", pathNot: folders("autograd", "tensor", "kernels") },
  },
  {
    name: "nn-imports-only-tensor-kernels-autograd-weights",
    comment: "The generic layers use tensors, kernels, the tape and the weight formats: nothing of the model.",
    from: { path: folders("nn") },
    to: { path: "^src/", pathNot: folders("nn", "tensor", "kernels", "autograd", "weights") },
  },
  {
    name: "nothing-below-segvol-imports-segvol",
    comment: "segvol is the model: the engine, the formats and the I/O under it know nothing of it.",
    from: { path: folders(...BELOW_SEGVOL) },
    to: { path: folders("segvol") },
  },
  {
    name: "model-never-imports-train",
    comment: "The model runs without the training stack: training builds on the model, not the reverse.",
    from: { path: folders("nn", "segvol") },
    to: { path: folders("train") },
  },
  {
    name: "cli-and-demo-on-top",
    comment:
      "The command line, the demo and the job queue are applications of the library: no other folder " +
      "imports them (cli may run the demo and the queue).",
    // The package's entry files (src/index.ts and the subpath entries in
    // src/exports/) publish the API, the demo's included: they are no layer.
    from: { path: "^src/", pathNot: folders("cli", "demo", "queue", "exports") + "|^src/[^/]+$" },
    to: { path: folders("cli", "demo", "queue") },
  },
  {
    name: "queue-under-cli",
    comment: "The job queue is run by the CLI's worker; it takes the segmenting as a function, so it imports neither cli nor demo.",
    from: { path: folders("queue") },
    to: { path: folders("cli", "demo") },
  },
  {
    name: "demo-does-not-import-cli",
    comment: "The demo is library code that the CLI runs, not the other way round.",
    from: { path: folders("demo") },
    to: { path: folders("cli") },
  },
  {
    name: "no-folder-cycles",
    comment: "The top-level folders of src/ form layers: arrows between them go one way.",
    scope: "folder",
    // A folder's own subfolders (src/segvol/pipeline) are part of it.
    from: { path: "^src/([^/]+)" },
    to: { path: "^src/", pathNot: "^src/$1(/|$)", circular: true },
  },
];

for (const rule of rules) rule.severity = "error";

/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
  forbidden: rules,
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist)/" },
    includeOnly: "^src/",
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js", ".mjs", ".cjs", ".json"] },
  },
};
