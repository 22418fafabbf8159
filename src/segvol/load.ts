// Reading a weights folder written by `segvol convert` (or a training
// checkpoint), once for inference and training: config.json, the
// tokenizer and categories of a model with a text tower, and
// model.safetensors, every expected key and shape checked before any GPU
// work starts. Then binding the file's tensors to a network's parameters.
import { existsSync, join } from "../node/host.node.js";
import { constant } from "../autograd/autograd.js";
import type { Precision } from "../kernels/precision.js";
import { keep } from "../tensor/scope.js";
import { shapeStr } from "../tensor/tensor.js";
import { SafetensorsFile } from "../weights/safetensors.js";
import { SafetensorsReader, loadTensorToGpu } from "../weights/safetensors_reader.js";
import { CATEGORIES_FILE, parseCategories, readCategories } from "./categories.js";
import { loadConfig, parseConfigText, type SegVolConfig } from "./config.js";
import { SegVolNetwork } from "./network.js";
import { ClipTokenizer, MAX_TOKENIZER_FILE_BYTES, TokenizerError, hasVocabulary, tokenizerFilesIn } from "./tokenizer.js";
import type { WeightsFiles } from "./weights_source.js";

export interface WeightsFolder {
  /** The folder path, or the URL or picked files' name. */
  readonly dir: string;
  readonly config: SegVolConfig;
  /** The model's tokenizer; null for a model without a text tower. */
  readonly tokenizer: ClipTokenizer | null;
  /** The categories the folder states (categories.json); null when it states none. */
  readonly categories: readonly string[] | null;
  readonly file: SafetensorsReader;
  /** The network the configuration describes, its parameters not yet bound. */
  readonly network: SegVolNetwork;
}

/** Opens and checks a weights folder; throws naming the first problem (a missing file, a key or shape that contradicts config.json). */
export function openWeightsFolder(dir: string): WeightsFolder {
  for (const f of ["config.json", "model.safetensors"]) {
    if (!existsSync(join(dir, f))) throw new Error(`${dir}: missing ${f} (expected a folder written by \`segvol convert\`)`);
  }
  const config = loadConfig(join(dir, "config.json"));
  const categories = readCategories(dir);
  let tokenizer: ClipTokenizer | null = null;
  if (config.text) {
    if (!hasVocabulary(tokenizerFilesIn(dir))) {
      throw new Error(`${dir}: the model has a text tower but no tokenizer (tokenizer.json or vocab.json + merges.txt)`);
    }
    tokenizer = ClipTokenizer.fromDir(dir);
  }
  const file = SafetensorsFile.open(join(dir, "model.safetensors"));
  const network = new SegVolNetwork(config);
  checkWeights(file, network.parameterShapes());
  return { dir, config, tokenizer, categories, file, network };
}

/**
 * Reads and checks a weights folder given as files (a URL's or a user's
 * pick) with the same parsers and checks as openWeightsFolder; the
 * safetensors file is held in memory.
 */
export async function openWeights(files: WeightsFiles): Promise<WeightsFolder> {
  const dir = files.name;
  const need = async (f: string) => {
    const b = await files.read(f);
    if (!b) throw new Error(`${dir}: missing ${f} (expected a folder written by \`segvol convert\`)`);
    return b;
  };
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const config = parseConfigText(text(await need("config.json")), `${dir}/config.json`);
  const cats = await files.read(CATEGORIES_FILE);
  const categories = cats ? parseCategories(text(cats), `${dir}/${CATEGORIES_FILE}`) : null;
  const tokenizer = config.text ? await tokenizerFrom(files) : null;
  const file = SafetensorsReader.fromBytes(await need("model.safetensors"), `${dir}/model.safetensors`);
  const network = new SegVolNetwork(config);
  checkWeights(file, network.parameterShapes());
  return { dir, config, tokenizer, categories, file, network };
}

/** tokenizer.json, else vocab.json + merges.txt, each refused over MAX_TOKENIZER_FILE_BYTES as ClipTokenizer.fromDir does. */
async function tokenizerFrom(files: WeightsFiles): Promise<ClipTokenizer> {
  const read = async (f: string) => {
    const b = await files.read(f);
    if (b && b.byteLength > MAX_TOKENIZER_FILE_BYTES) {
      throw new TokenizerError(`ClipTokenizer: ${files.name}/${f} is ${b.byteLength} bytes, over the ${MAX_TOKENIZER_FILE_BYTES}-byte limit for a tokenizer file`);
    }
    return b && new TextDecoder().decode(b);
  };
  const fast = await read("tokenizer.json");
  if (fast !== null) return ClipTokenizer.fromTokenizerJson(fast, `${files.name}/tokenizer.json`);
  const [vocab, merges] = [await read("vocab.json"), await read("merges.txt")];
  if (vocab !== null && merges !== null) return ClipTokenizer.fromVocabJson(vocab, merges, `${files.name}/vocab.json`);
  throw new Error(`${files.name}: the model has a text tower but no tokenizer (tokenizer.json or vocab.json + merges.txt)`);
}

/** Every expected parameter present with its shape; names what is wrong. */
function checkWeights(file: SafetensorsReader, expected: Map<string, number[]>): void {
  const keys = new Set(file.keys());
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    if (!keys.has(name)) {
      problems.push(`missing ${name}`);
      continue;
    }
    const got = file.info(name).shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      problems.push(`${name} has shape ${shapeStr(got)}, config.json implies ${shapeStr(shape)}`);
    }
  }
  if (problems.length > 0) {
    const more = problems.length > 8 ? ` (and ${problems.length - 8} more)` : "";
    throw new Error(`${file.path}: the weights contradict config.json: ${problems.slice(0, 8).join("; ")}${more}`);
  }
}

/**
 * Binds every parameter to its tensor in the file as a frozen constant in
 * `dtype` (whatever the file stores), uploaded on first use: weights no
 * forward reads (the unused mask branch and hypernetworks) never reach the
 * GPU.
 */
export function bindFrozen(network: SegVolNetwork, file: SafetensorsReader, dtype: Precision = "f32"): void {
  for (const [name, p] of network.namedParameters()) p.setLazy(() => constant(keep(loadTensorToGpu(file, name, dtype))));
}
