// A queued segmentation: one `segvol segment` call as data. `segvol submit`
// builds it from segment's own flags (src/cli/submit.ts), a worker turns it
// back into those flags and runs segment's checks, pipeline and writers
// (src/cli/worker.ts). What travels through Redis is this plain JSON, checked
// again by the worker (parseJob): a job is data from the network, and a
// malformed one fails at once, without retries.
//
// Paths are absolute: the worker runs elsewhere (another machine sharing the
// volume, or another folder), so a relative path would mean something else.

/** The schema's version, stored in every job (`v`); a worker refuses others. */
export const JOB_VERSION = 1;

/**
 * Where a job's image comes from: a NIfTI file, or a folder of DICOM files
 * (`series`: the SeriesInstanceUID to read when it holds several, segment's
 * --series). A new kind goes in this union and INPUT_KINDS, with its reader
 * (src/queue/inputs.ts for a NIfTI, the worker's segment_dicom path for
 * DICOM). A DICOMweb study is not a job input: its credentials would travel
 * through Redis.
 */
export type JobInput = { kind: "nifti"; path: string } | { kind: "dicom"; path: string; series?: string };

/** The input kinds, with the field that holds each one's location and the optional fields each takes. */
export const INPUT_KINDS: Readonly<Record<JobInput["kind"], { field: "path"; optional: readonly "series"[]; what: string }>> = {
  nifti: { field: "path", optional: [], what: "a NIfTI file (.nii or .nii.gz)" },
  dicom: { field: "path", optional: ["series"], what: "a folder of DICOM files, with its series' UID when it holds several" },
};

/** One segment call's prompts, as segment's flags give them (unparsed: the worker parses them as segment does). */
export interface JobPrompts {
  text?: string[];
  box?: string;
  point?: string[];
  allowUnknownText?: boolean;
}

/** Where the results go: segment's --out (a mask, or a label map and its .json sidecar) and --logits. */
export interface JobOutputs {
  out: string;
  logits?: string;
}

/** segment's run options that belong to the request (the weights are the worker's). */
export interface JobOptions {
  zoomIn: boolean;
  overlap: string;
  maxVoxels: string;
}

export interface SegmentJob {
  v: typeof JOB_VERSION;
  input: JobInput;
  prompts: JobPrompts;
  outputs: JobOutputs;
  options: JobOptions;
}

/** What a worker reports on a running job (BullMQ's job progress). */
export interface JobProgress {
  stage: string;
  /** Windows done of `total` in this stage. */
  done: number;
  total: number;
}

/**
 * A job that cannot succeed however often it is tried: a malformed job, an
 * input that cannot be read, a prompt or output the checks refuse. The
 * worker fails it at once with this message as its reason, and BullMQ does
 * not retry it.
 */
export class JobInputError extends Error {
  override name = "JobInputError";
}

type Fields = Record<string, unknown>;

function object(value: unknown, where: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new JobInputError(`job: ${where} must be an object`);
  return value as Fields;
}

/** Refuses keys the schema does not know (a typo would otherwise be dropped silently). */
function onlyKeys(o: Fields, where: string, keys: readonly string[]): void {
  const extra = Object.keys(o).filter((k) => !keys.includes(k));
  if (extra.length > 0) throw new JobInputError(`job: ${where} has unknown field${extra.length > 1 ? "s" : ""} ${extra.join(", ")} (known: ${keys.join(", ")})`);
}

function string(o: Fields, key: string, where: string, optional: true): string | undefined;
function string(o: Fields, key: string, where: string, optional?: false): string;
function string(o: Fields, key: string, where: string, optional = false): string | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== "string" || v === "") throw new JobInputError(`job: ${where}.${key} must be a non-empty string`);
  return v;
}

function absolutePath(o: Fields, key: string, where: string, optional = false): string | undefined {
  const v = optional ? string(o, key, where, true) : string(o, key, where);
  if (v !== undefined && !v.startsWith("/")) throw new JobInputError(`job: ${where}.${key} ${v}: must be an absolute path`);
  return v;
}

function strings(o: Fields, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string" || s === "")) throw new JobInputError(`job: ${where}.${key} must be a list of non-empty strings`);
  return v as string[];
}

function parseInput(value: unknown): JobInput {
  const o = object(value, "input");
  const kinds = Object.keys(INPUT_KINDS);
  if (typeof o.kind !== "string" || !kinds.includes(o.kind)) {
    throw new JobInputError(`job: input.kind ${JSON.stringify(o.kind)}: this worker reads ${kinds.map((k) => `"${k}" (${INPUT_KINDS[k as JobInput["kind"]].what})`).join(", ")}`);
  }
  const kind = o.kind as JobInput["kind"];
  const { field, optional } = INPUT_KINDS[kind];
  onlyKeys(o, "input", ["kind", field, ...optional]);
  const input: Record<string, string> = { kind, [field]: absolutePath(o, field, "input")! };
  for (const key of optional) {
    const v = string(o, key, "input", true);
    if (v !== undefined) input[key] = v;
  }
  return input as unknown as JobInput;
}

function parsePrompts(value: unknown): JobPrompts {
  const o = object(value, "prompts");
  onlyKeys(o, "prompts", ["text", "box", "point", "allowUnknownText"]);
  const p: JobPrompts = {};
  const text = strings(o, "text", "prompts");
  const box = string(o, "box", "prompts", true);
  const point = strings(o, "point", "prompts");
  if (text) p.text = text;
  if (box !== undefined) p.box = box;
  if (point) p.point = point;
  if (o.allowUnknownText !== undefined) {
    if (typeof o.allowUnknownText !== "boolean") throw new JobInputError("job: prompts.allowUnknownText must be true or false");
    p.allowUnknownText = o.allowUnknownText;
  }
  return p;
}

function parseOutputs(value: unknown): JobOutputs {
  const o = object(value, "outputs");
  onlyKeys(o, "outputs", ["out", "logits"]);
  const logits = absolutePath(o, "logits", "outputs", true);
  return { out: absolutePath(o, "out", "outputs")!, ...(logits !== undefined ? { logits } : {}) };
}

function parseOptions(value: unknown): JobOptions {
  const o = object(value, "options");
  onlyKeys(o, "options", ["zoomIn", "overlap", "maxVoxels"]);
  if (typeof o.zoomIn !== "boolean") throw new JobInputError("job: options.zoomIn must be true or false");
  return { zoomIn: o.zoomIn, overlap: string(o, "overlap", "options"), maxVoxels: string(o, "maxVoxels", "options") };
}

/**
 * Checks a job's data as it arrives from Redis and returns it typed. The
 * prompt and option values themselves are checked by segment's own parsing
 * when the worker runs the job (the same messages as `segvol segment`).
 */
export function parseJob(data: unknown): SegmentJob {
  const o = object(data, "the job");
  onlyKeys(o, "the job", ["v", "input", "prompts", "outputs", "options"]);
  if (o.v !== JOB_VERSION) throw new JobInputError(`job: schema version ${JSON.stringify(o.v)}: this worker reads version ${JOB_VERSION} (update the worker or the submitter)`);
  return { v: JOB_VERSION, input: parseInput(o.input), prompts: parsePrompts(o.prompts), outputs: parseOutputs(o.outputs), options: parseOptions(o.options) };
}

/** The job's input, as a person reads it: a path, and a DICOM folder's series. */
export function describeInput(input: JobInput): string {
  return input.kind === "dicom" && input.series !== undefined ? `${input.path} (series ${input.series})` : input.path;
}
