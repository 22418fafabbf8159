// Growing a trained model deeper. `deepenImageEncoder` adds ViT blocks that
// start as the identity: each new block's attention output projection and
// second MLP layer are zero, so both of its residual branches add exactly
// nothing and the grown model computes what the trained one did, bit for
// bit. Their other weights are copies of the existing blocks in turn, so
// the branches see useful features from the first step; training then puts
// the new blocks to use (the zero layers get gradients at once, the rest as
// soon as those move). Parameter names follow the checkpoint (spec §2).
import { expectedParameters } from "../segvol/params.js";
import type { SegVolConfig } from "../segvol/config.js";

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

const BLOCK = "image_encoder.blocks.";
/** The parts of a block whose output feeds a residual add: zero in a new block. */
const ZEROED = ["attn.out_proj.weight", "attn.out_proj.bias", "mlp.linear2.weight", "mlp.linear2.bias"];

/** The config with `layers` ViT blocks, and every tensor of it: the old ones as they were, the new blocks as above. */
export function deepenImageEncoder(cfg: SegVolConfig, tensors: ReadonlyMap<string, HostTensor>, layers: number): { config: SegVolConfig; tensors: Map<string, HostTensor> } {
  const old = cfg.vit.num_layers;
  if (!Number.isInteger(layers) || layers <= old) throw new Error(`grow: --vit-layers ${layers} must be an integer above the model's ${old} image encoder blocks`);
  const config: SegVolConfig = JSON.parse(JSON.stringify(cfg));
  config.vit.num_layers = layers;
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of expectedParameters(config)) {
    const m = name.startsWith(BLOCK) ? /^(\d+)\.(.*)$/.exec(name.slice(BLOCK.length)) : null;
    const n = m ? Number(m[1]) : -1;
    const from = m && n >= old ? `${BLOCK}${n % old}.${m[2]}` : name;
    const src = tensors.get(from);
    if (!src) throw new Error(`grow: the weights have no ${from}`);
    if (src.shape.length !== shape.length || src.shape.some((d, a) => d !== shape[a])) {
      throw new Error(`grow: ${from} is [${src.shape.join(", ")}], the config says [${shape.join(", ")}]`);
    }
    const zero = m && n >= old && ZEROED.includes(m[2]!);
    out.set(name, { shape: [...shape], data: zero ? new Float32Array(src.data.length) : Float32Array.from(src.data) });
  }
  return { config, tensors: out };
}
