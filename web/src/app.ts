// The SegVol web app: a NiiVue viewer (axial, coronal, sagittal, 3-D), a
// volume from a picked or dropped .nii/.nii.gz or the built-in phantom,
// text/point/box prompts, segmentation in a Web Worker (worker.ts) with
// progress and Cancel, coloured overlays with a legend, and the mask or label
// map as .nii.gz in the input's geometry. Nothing leaves the machine.
import { NVImage, Niivue, SHOW_RENDER, SLICE_TYPE } from "@niivue/niivue";
import { NO_WEBGPU_HELP, encodeNifti, niftiFromArray, parseNifti, type NiftiVolume } from "../../src/browser.js";
import { generatePhantom } from "../../src/demo/phantom.js";
import type { Target } from "../../src/segvol/pipeline/types.js";
import type { FromWorker, ToWorker, WorkerTarget } from "./protocol.js";

type Vec3 = [number, number, number];
const COLOURS: [string, string][] = [["red", "#f33"], ["green", "#3c3"], ["blue", "#48f"], ["violet", "#c6f"], ["warm", "#fa3"]];
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const state = {
  volume: null as NiftiVolume | null,
  name: "",
  points: [] as { ijk: Vec3; label: 0 | 1 }[],
  box: [] as Vec3[],
  result: null as { targets: WorkerTarget[]; labels: Int16Array } | null,
  busy: false,
};
let worker: Worker;
let overlays: NVImage[] = [];

// A yellow crosshair: red is the first overlay colour.
const nv = new Niivue({ backColor: [0.05, 0.05, 0.05, 1], crosshairColor: [1, 0.85, 0, 1], show3Dcrosshair: true, multiplanarShowRender: SHOW_RENDER.ALWAYS, dragAndDropEnabled: false });

function showError(e: unknown): void {
  $("error").textContent = e instanceof Error ? e.message : String(e);
}

/** Runs an event handler; its error is shown in the page, which keeps working. */
function guard(fn: () => Promise<void> | void): () => void {
  return () => {
    $("error").textContent = "";
    Promise.resolve()
      .then(fn)
      .catch(showError);
  };
}

function startWorker(): void {
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => onWorker(ev.data);
  worker.onerror = (ev) => {
    showError(`the segmentation worker failed: ${ev.message}`);
    setBusy(false);
  };
}

const send = (m: ToWorker, transfer: Transferable[] = []) => worker.postMessage(m, transfer);

function onWorker(m: FromWorker): void {
  if (m.type === "progress") {
    ($("progress") as HTMLProgressElement).value = m.total > 0 ? m.done / m.total : 0;
    $("stage").textContent = `${m.stage}: ${m.done} of ${m.total}`;
  } else if (m.type === "loaded") {
    $("model").textContent = `model: ${m.source}`;
    $("categories").textContent = m.categories ? `knows: ${m.categories.join(", ")}` : "";
  } else if (m.type === "error") {
    showError(m.message);
    setBusy(false);
  } else {
    state.result = { targets: m.targets, labels: m.labels };
    $("stage").textContent = `done in ${m.seconds.toFixed(1)} s`;
    ($("progress") as HTMLProgressElement).value = 1;
    setBusy(false);
    void showResult().catch(showError);
  }
}

function setBusy(busy: boolean): void {
  state.busy = busy;
  ($("segment") as HTMLButtonElement).disabled = busy || !state.volume || !navigator.gpu;
  ($("cancel") as HTMLButtonElement).disabled = !busy;
  ($("download") as HTMLButtonElement).disabled = busy || !state.result;
}

/** Shows a volume (its file bytes for NiiVue, its parsed voxels for SegVol) and forgets the previous one's prompts and result. */
async function showVolume(bytes: Uint8Array, name: string, vol: NiftiVolume): Promise<void> {
  const image = await NVImage.loadFromUrl({ url: bytes.slice().buffer, name });
  for (const v of [...nv.volumes]) nv.removeVolume(v);
  nv.addVolume(image);
  overlays = [];
  state.volume = vol;
  state.name = name.replace(/\.nii(\.gz)?$/i, "");
  state.points = [];
  state.box = [];
  state.result = null;
  renderClicks();
  renderLegend();
  $("status").textContent = `${name}: ${vol.dims.join("×")} voxels, ${vol.spacing.map((s) => s.toFixed(2)).join("×")} mm`;
  setBusy(false);
}

async function openFile(file: File): Promise<void> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const vol = await parseNifti(bytes, file.name);
  await showVolume(bytes, /\.nii(\.gz)?$/i.test(file.name) ? file.name : `${file.name}.nii`, vol);
}

async function openPhantom(seed = 4242): Promise<void> {
  const ph = generatePhantom(seed);
  const like = niftiFromArray(ph.dims, new Float32Array(ph.image.length), { affine: ph.affine, spacing: ph.spacing });
  const bytes = await encodeNifti(like, ph.image, "int16", { gzip: false, descrip: `segvol phantom ${seed}` });
  await showVolume(bytes, `phantom_${seed}.nii`, await parseNifti(bytes, `phantom_${seed}.nii`));
}

function targetsFromPrompts(): Target[] {
  const texts = ($("text") as HTMLInputElement).value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const targets: Target[] = texts.map((t) => ({ name: t, text: t }));
  if (state.box.length === 2) {
    const [a, b] = state.box as [Vec3, Vec3];
    const box = [0, 1, 2].map((i) => Math.min(a[i]!, b[i]!)).concat([0, 1, 2].map((i) => Math.max(a[i]!, b[i]!))) as Target["box"];
    targets.push({ name: "box", box, ...(state.points.length > 0 ? { points: state.points } : {}) });
  } else if (state.points.length > 0) {
    targets.push({ name: "points", points: state.points });
  }
  return targets;
}

function segment(): void {
  const vol = state.volume;
  if (!vol) throw new Error("open a volume first (a .nii / .nii.gz, or the demo phantom)");
  const targets = targetsFromPrompts();
  if (targets.length === 0) throw new Error("give a prompt: a text (e.g. liver), points or a box");
  setBusy(true);
  $("stage").textContent = "starting";
  send({ type: "segment", dims: vol.dims, data: vol.data.slice(), targets });
}

function cancel(): void {
  worker.terminate();
  startWorker();
  setBusy(false);
  $("stage").textContent = "cancelled";
}

/** The overlays (one colour per target) and the legend. */
async function showResult(): Promise<void> {
  const { volume: vol, result } = state;
  if (!vol || !result) return;
  for (const o of overlays) nv.removeVolume(o);
  overlays = [];
  for (const [k, t] of result.targets.entries()) {
    const bytes = await encodeNifti(vol, t.mask, "uint8", { gzip: false });
    const colormap = COLOURS[k % COLOURS.length]![0];
    const img = await NVImage.loadFromUrl({ url: bytes.buffer as ArrayBuffer, name: `${t.name}.nii`, colormap, opacity: 0.55, cal_min: 0.5, cal_max: 1 });
    nv.addVolume(img);
    overlays.push(img);
  }
  renderLegend();
}

function renderLegend(): void {
  const body = $("legend").querySelector("tbody")!;
  body.replaceChildren();
  const vol = state.volume;
  for (const [k, t] of (state.result?.targets ?? []).entries()) {
    const ml = vol ? (t.voxels * vol.spacing[0] * vol.spacing[1] * vol.spacing[2]) / 1000 : 0;
    const row = document.createElement("tr");
    row.innerHTML = `<td><span class="swatch" style="background:${COLOURS[k % COLOURS.length]![1]}"></span></td><td></td><td>${t.voxels}</td><td class="ml">${ml.toFixed(1)}</td>`;
    row.children[1]!.textContent = t.name;
    body.append(row);
  }
}

function renderClicks(): void {
  const list = $("clicks");
  list.replaceChildren(
    ...state.points.map((p) => Object.assign(document.createElement("li"), { textContent: `${p.label ? "+" : "−"} point ${p.ijk.join(", ")}` })),
    ...state.box.map((c, i) => Object.assign(document.createElement("li"), { textContent: `box corner ${i + 1}: ${c.join(", ")}` })),
  );
}

/** A click on a slice in point or box mode adds a prompt at the clicked voxel. */
function onLocation(loc: unknown): void {
  const mode = (document.querySelector('input[name="mode"]:checked') as HTMLInputElement | null)?.value ?? "none";
  const vox = (loc as { vox?: number[] }).vox;
  if (mode === "none" || !vox || !state.volume) return;
  const ijk = vox.slice(0, 3).map((v) => Math.round(v)) as Vec3;
  if (mode === "box") state.box = state.box.length >= 2 ? [ijk] : [...state.box, ijk];
  else state.points.push({ ijk, label: mode === "pos" ? 1 : 0 });
  renderClicks();
}

async function download(): Promise<void> {
  const { volume: vol, result } = state;
  if (!vol || !result) return;
  const single = result.targets.length === 1;
  const bytes = single ? await encodeNifti(vol, result.targets[0]!.mask, "uint8") : await encodeNifti(vol, result.labels, "int16");
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "application/gzip" }));
  a.download = `${state.name || "segvol"}_${single ? "mask" : "labels"}.nii.gz`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function wireDrop(): void {
  const viewer = $("viewer");
  viewer.addEventListener("dragover", (e) => {
    e.preventDefault();
    viewer.classList.add("dragging");
  });
  viewer.addEventListener("dragleave", () => viewer.classList.remove("dragging"));
  viewer.addEventListener("drop", (e) => {
    e.preventDefault();
    viewer.classList.remove("dragging");
    const file = e.dataTransfer?.files[0];
    if (file) guard(() => openFile(file))();
  });
}

function wire(): void {
  const file = $<HTMLInputElement>("file");
  file.addEventListener("change", guard(async () => {
    const f = file.files?.[0];
    file.value = "";
    if (f) await openFile(f);
  }));
  const weights = $<HTMLInputElement>("weights");
  weights.addEventListener("change", guard(() => {
    const files = Array.from(weights.files ?? []);
    if (files.length > 0) send({ type: "weights", files });
  }));
  $("demo").addEventListener("click", guard(() => openPhantom()));
  $("segment").addEventListener("click", guard(segment));
  $("cancel").addEventListener("click", guard(cancel));
  $("download").addEventListener("click", guard(download));
  $("clear").addEventListener("click", guard(() => {
    state.points = [];
    state.box = [];
    renderClicks();
  }));
  for (const b of document.querySelectorAll<HTMLButtonElement>("[data-view]")) {
    b.addEventListener("click", () => nv.setSliceType(Number(b.dataset.view) as SLICE_TYPE));
  }
  wireDrop();
}

/** The voxel (i, j, k) under a canvas pixel (device pixels), or null off the slices; for tests. */
function voxelAt(x: number, y: number): Vec3 | null {
  const frac = nv.canvasPos2frac([x, y]);
  if (!frac || frac[0]! < 0) return null;
  const v = nv.frac2vox(frac);
  return [Math.round(v[0]!), Math.round(v[1]!), Math.round(v[2]!)];
}

await nv.attachToCanvas($<HTMLCanvasElement>("gl"));
nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
nv.onLocationChange = onLocation;
wire();
startWorker();
if (!navigator.gpu) showError(NO_WEBGPU_HELP);
setBusy(false);
Object.assign(globalThis, { segvolApp: { nv, state, voxelAt, openPhantom } });
document.body.dataset.ready = "1";
