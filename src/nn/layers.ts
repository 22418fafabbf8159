// The building blocks of SegVol's networks, each a Module over the
// differentiable ops (src/autograd): the same code runs inference (under
// `noGrad`) and training (on the tape). Every `forward` runs in `scoped`,
// so its intermediates are freed when it returns, whichever way it runs.
import { scoped, type Var } from "../autograd/autograd.js";
import { attention, layerNorm } from "../autograd/attention_ops.js";
import { convTranspose3d } from "../autograd/conv_ops.js";
import { linear } from "../autograd/ops.js";
import type { Activation } from "../kernels/activation.js";
import { Module, type Parameter } from "./module.js";

/** y = act(x Wᵀ + b) (PyTorch nn.Linear; the activation is fused into the matmul). */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly act: Activation;

  constructor(
    inFeatures: number,
    outFeatures: number,
    opts: { bias?: boolean; act?: Activation } = {},
  ) {
    super();
    this.weight = this.param("weight", [outFeatures, inFeatures]);
    this.bias = opts.bias === false ? null : this.param("bias", [outFeatures]);
    this.act = opts.act ?? "none";
  }

  forward(x: Var): Var {
    return linear(x, this.weight.v, this.bias?.v ?? null, this.act);
  }
}

/** LayerNorm over the trailing dims of `shape`. */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(
    shape: readonly number[],
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param("weight", shape);
    this.bias = this.param("bias", shape);
  }

  forward(x: Var): Var {
    return layerNorm(x, this.weight.v, this.bias.v, this.eps);
  }
}

/** A lookup table [count, dim] (nn.Embedding); callers read its rows. */
export class Embedding extends Module {
  readonly weight: Parameter;

  constructor(count: number, dim: number) {
    super();
    this.weight = this.param("weight", [count, dim]);
  }
}

/** Linear → activation → Linear (the activation fused into the first matmul); names as upstream. */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(names: readonly [string, string], dim: number, hidden: number, act: Activation) {
    super();
    this.fc1 = this.child(names[0], new Linear(dim, hidden, { act }));
    this.fc2 = this.child(names[1], new Linear(hidden, dim));
  }

  forward(x: Var): Var {
    return scoped(() => this.fc2.forward(this.fc1.forward(x)));
  }
}

/**
 * Multi-head attention with separate q/k/v projections (SAM's `Attention`,
 * CLIP's self-attention): inputs [B, N, dim], internal width `inner` may be
 * smaller (SAM's attention_downsample_rate). `order` is the upstream
 * registration order of the projections (CLIP registers k, v, q).
 */
export class MultiHeadAttention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly out: Linear;
  readonly causal: boolean;

  constructor(
    dim: number,
    inner: number,
    readonly numHeads: number,
    opts: { causal?: boolean; order?: "qkv" | "kvq" } = {},
  ) {
    super();
    const proj = (name: string) => this.child(`${name}_proj`, new Linear(dim, inner));
    if (opts.order === "kvq") {
      this.k = proj("k");
      this.v = proj("v");
      this.q = proj("q");
    } else {
      this.q = proj("q");
      this.k = proj("k");
      this.v = proj("v");
    }
    this.out = this.child("out_proj", new Linear(inner, dim));
    this.causal = opts.causal ?? false;
  }

  forward(q: Var, k: Var, v: Var): Var {
    return scoped(() => {
      const o = attention(this.q.forward(q), this.k.forward(k), this.v.forward(v), { numHeads: this.numHeads, causal: this.causal });
      return this.out.forward(o);
    });
  }
}

/** ConvTranspose3d with kernel = stride (PyTorch layout: weight [in, out, k, k, k]). */
export class ConvTranspose3d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(
    inChannels: number,
    outChannels: number,
    readonly stride: number,
  ) {
    super();
    this.weight = this.param("weight", [inChannels, outChannels, stride, stride, stride]);
    this.bias = this.param("bias", [outChannels]);
  }

  forward(x: Var): Var {
    return convTranspose3d(x, this.weight.v, this.bias.v, { stride: this.stride });
  }
}

/** A module whose parameters the checkpoint holds but SegVol never runs (e.g. SAM's 2-D mask branch). */
export class Unused extends Module {
  constructor(params: readonly (readonly [string, readonly number[]])[]) {
    super();
    for (const [name, shape] of params) this.param(name, shape);
  }
}
