// The building blocks of SegVol's networks, each a thin shell over kernels.
// Layers hold their parameters (owned by the ParamStore) and return new
// tensors from `forward`; callers free intermediates with `scope`.
import type { Activation } from "../kernels/activation.js";
import { attention } from "../kernels/attention.js";
import { add } from "../kernels/elementwise.js";
import { layerNorm } from "../kernels/layernorm.js";
import { matmul } from "../kernels/matmul.js";
import { Tensor } from "../tensor/tensor.js";
import type { ParamStore } from "./params.js";

/** y = x Wᵀ + b (PyTorch nn.Linear), with an optional fused activation. */
export class Linear {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor | undefined,
    readonly act: Activation = "none",
  ) {}

  static load(p: ParamStore, prefix: string, opts: { bias?: boolean; act?: Activation } = {}): Linear {
    const bias = opts.bias === false ? undefined : p.tensor(`${prefix}.bias`);
    return new Linear(p.tensor(`${prefix}.weight`), bias, opts.act ?? "none");
  }

  forward(x: Tensor): Tensor {
    return matmul(x, this.weight, { transB: true, bias: this.bias, act: this.act });
  }
}

/** LayerNorm over the trailing dims of the weight's shape. */
export class LayerNorm {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
    readonly eps = 1e-5,
  ) {}

  static load(p: ParamStore, prefix: string, eps = 1e-5): LayerNorm {
    return new LayerNorm(p.tensor(`${prefix}.weight`), p.tensor(`${prefix}.bias`), eps);
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Linear → activation → Linear (the activation fused into the first matmul). */
export class Mlp {
  constructor(
    readonly fc1: Linear,
    readonly fc2: Linear,
  ) {}

  static load(p: ParamStore, prefix: string, names: [string, string], act: Activation): Mlp {
    return new Mlp(Linear.load(p, `${prefix}.${names[0]}`, { act }), Linear.load(p, `${prefix}.${names[1]}`));
  }

  forward(x: Tensor): Tensor {
    const h = this.fc1.forward(x);
    const y = this.fc2.forward(h);
    h.dispose();
    return y;
  }
}

/**
 * Multi-head attention with separate q/k/v projections (SAM's `Attention`,
 * CLIP's self-attention): inputs [B, N, C], internal dim may be smaller than
 * C (SAM's attention_downsample_rate).
 */
export class MultiHeadAttention {
  constructor(
    readonly q: Linear,
    readonly k: Linear,
    readonly v: Linear,
    readonly out: Linear,
    readonly numHeads: number,
    readonly causal = false,
  ) {}

  static load(p: ParamStore, prefix: string, numHeads: number, causal = false): MultiHeadAttention {
    return new MultiHeadAttention(
      Linear.load(p, `${prefix}.q_proj`),
      Linear.load(p, `${prefix}.k_proj`),
      Linear.load(p, `${prefix}.v_proj`),
      Linear.load(p, `${prefix}.out_proj`),
      numHeads,
      causal,
    );
  }

  forward(q: Tensor, k: Tensor, v: Tensor): Tensor {
    const qp = this.q.forward(q);
    const kp = this.k.forward(k);
    const vp = this.v.forward(v);
    const o = attention(qp, kp, vp, { numHeads: this.numHeads, causal: this.causal });
    qp.dispose();
    kp.dispose();
    vp.dispose();
    const y = this.out.forward(o);
    o.dispose();
    return y;
  }
}

/** x + f(x), disposing f(x). */
export function residual(x: Tensor, fx: Tensor): Tensor {
  const y = add(x, fx);
  fx.dispose();
  return y;
}
