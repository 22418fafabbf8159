// SegVol's prompt encoder (spec §3). The positional parts are tiny (a
// handful of tokens, one 768×N dense grid computed once), so they are
// computed on the host in float64 and uploaded; the learned embeddings are
// added on the GPU, as rows of one table, so that training reaches them.
// The coordinate swaps inherited from 2-D SAM are kept exactly as the
// checkpoint expects them.
import { constant, scoped, type Var } from "../autograd/autograd.js";
import { add, concat, gather, reshape } from "../autograd/ops.js";
import { cast } from "../kernels/layout.js";
import { Embedding, Unused } from "../nn/layers.js";
import { Module, type Parameter } from "../nn/module.js";
import { keep } from "../tensor/scope.js";
import { Tensor } from "../tensor/tensor.js";
import { readAsFloat32 } from "../weights/safetensors_reader.js";
import type { SegVolConfig } from "./config.js";


export type Vec3 = [number, number, number];

/** Points and box in model-window voxel indices, ordered (d, h, w). */
export interface SpatialPrompt {
  points?: { coords: Vec3[]; labels: number[] };
  box?: [number, number, number, number, number, number];
}

/**
 * One sparse token before its learned part is added: the normalised
 * coordinate to encode (null for a padding point) and which embedding to add
 * (0 negative point, 1 positive point, 2 and 3 the box corners, 4
 * `not_a_point_embed`).
 */
export interface SparseRow {
  coord: Vec3 | null;
  embed: 0 | 1 | 2 | 3 | 4;
}

/**
 * The sparse rows of a spatial prompt in token order: points (+ one padding
 * point when there is no box), then the box corners. Window voxel (d, h, w)
 * is normalised with the swap c = (p0/H, p1/D, p2/W), as upstream.
 */
export function sparseRows(prompt: SpatialPrompt, spatialSize: readonly [number, number, number]): SparseRow[] {
  const [D, H, W] = spatialSize;
  const norm = (p: Vec3): Vec3 => [(p[0] + 0.5) / H, (p[1] + 0.5) / D, (p[2] + 0.5) / W];
  const rows: SparseRow[] = [];
  if (prompt.points) {
    const coords = [...prompt.points.coords];
    const labels = [...prompt.points.labels];
    if (!prompt.box) {
      coords.push([0, 0, 0]);
      labels.push(-1);
    }
    coords.forEach((c, n) => {
      const l = labels[n]!;
      rows.push(l === -1 ? { coord: null, embed: 4 } : { coord: norm(c), embed: l === 1 ? 1 : 0 });
    });
  }
  if (prompt.box) {
    const b = prompt.box;
    rows.push({ coord: norm([b[0], b[1], b[2]]), embed: 2 }, { coord: norm([b[3], b[4], b[5]]), embed: 3 });
  }
  return rows;
}

export class PromptEncoder extends Module {
  /** The Gaussian matrix G [3, C/2] of the random-Fourier positional encoding (a buffer upstream: never trained). */
  readonly gaussian: Parameter;
  readonly pointEmbeddings: Embedding[];
  readonly notAPoint: Embedding;
  readonly noMask: Embedding;
  readonly dim: number;
  readonly grid: Vec3;
  private gaussHost: Float64Array | null = null;
  private denseHost: Float32Array | null = null;
  private denseVar: Var | null = null;

  constructor(readonly cfg: SegVolConfig) {
    super();
    const dim = cfg.decoder.transformer_dim;
    this.dim = dim;
    this.gaussian = this.param("pe_layer.positional_encoding_gaussian_matrix", [3, dim / 2]);
    this.pointEmbeddings = [0, 1, 2, 3].map((i) => this.child(`point_embeddings.${i}`, new Embedding(1, dim)));
    this.notAPoint = this.child("not_a_point_embed", new Embedding(1, dim));
    // SAM's 2-D mask branch, kept as-is in the 3-D model: Conv2d(1, c/4, 2, 2),
    // LayerNorm2d(c/4), GELU, Conv2d(c/4, c, 2, 2), LayerNorm2d(c), GELU,
    // Conv2d(c, dim, 1) — 4-D weights. (The published checkpoint's
    // prompt_encoder holds 19,148 values, which only the 2-D shapes add up
    // to; SegVol never feeds a mask, so they are never used.)
    const c = cfg.prompt_encoder.mask_in_chans;
    this.child(
      "mask_downscaling",
      new Unused([
        ["0.weight", [c / 4, 1, 2, 2]],
        ["0.bias", [c / 4]],
        ["1.weight", [c / 4]],
        ["1.bias", [c / 4]],
        ["3.weight", [c, c / 4, 2, 2]],
        ["3.bias", [c]],
        ["4.weight", [c]],
        ["4.bias", [c]],
        ["6.weight", [dim, c, 1, 1]],
        ["6.bias", [dim]],
      ]),
    );
    this.noMask = this.child("no_mask_embed", new Embedding(1, dim));
    const [D, H, W] = cfg.spatial_size;
    const [p1, p2, p3] = cfg.patch_size;
    this.grid = [D / p1, H / p2, W / p3];
  }

  /** Reads the Gaussian matrix to the host once (the positional encodings are computed there). */
  async prepare(): Promise<void> {
    if (this.gaussHost) return;
    this.gaussHost = Float64Array.from(await readAsFloat32(this.gaussian.v.value));
  }

  /** pe(c) = [sin(2π(2c−1)G), cos(2π(2c−1)G)] written at out[offset..offset+C). */
  private pe(c: Vec3, out: Float32Array, offset: number): void {
    const g = this.gaussHost;
    if (!g) throw new Error("prompt encoder: call prepare() before encoding prompts");
    const half = this.dim / 2;
    const x = 2 * c[0] - 1;
    const y = 2 * c[1] - 1;
    const z = 2 * c[2] - 1;
    for (let f = 0; f < half; f++) {
      const a = 2 * Math.PI * (x * g[f]! + y * g[half + f]! + z * g[2 * half + f]!);
      out[offset + f] = Math.sin(a);
      out[offset + half + f] = Math.cos(a);
    }
  }

  /**
   * Dense positional encoding, token-major [N, C], on the host: for grid
   * cell (i, j, k), c = ((j+0.5)/g1, (i+0.5)/g0, (k+0.5)/g2) — the first
   * component runs along the second grid axis (SAM's x/y swap).
   */
  densePositional(): Float32Array {
    if (this.denseHost) return this.denseHost;
    const [g0, g1, g2] = this.grid;
    const out = new Float32Array(g0 * g1 * g2 * this.dim);
    for (let i = 0; i < g0; i++) {
      for (let j = 0; j < g1; j++) {
        for (let k = 0; k < g2; k++) {
          const t = (i * g1 + j) * g2 + k;
          this.pe([(j + 0.5) / g1, (i + 0.5) / g0, (k + 0.5) / g2], out, t * this.dim);
        }
      }
    }
    this.denseHost = out;
    return out;
  }

  /** The dense positional encoding [1, N, C] on the GPU (a constant, made once and owned here). */
  dense(): Var {
    if (!this.denseVar) {
      const pe = this.densePositional();
      this.denseVar = constant(keep(this.upload(pe, [1, pe.length / this.dim, this.dim])));
    }
    return this.denseVar;
  }

  /**
   * Sparse tokens [B, T, C] of prompts that share one token layout, in the
   * order points (+ one padding point when there is no box), box corners,
   * then the text embedding: row b of `texts` [B, C] when given. Each
   * point token is its host positional part plus a row of the table
   * [point_embeddings.0..3, not_a_point_embed]. Null when there are none.
   */
  sparse(prompts: readonly SpatialPrompt[], texts: Var | null): Var | null {
    return scoped(() => {
      const C = this.dim;
      const B = prompts.length;
      const rows = prompts.flatMap((p) => sparseRows(p, this.cfg.spatial_size));
      const parts: Var[] = [];
      if (rows.length > 0) {
        const T = rows.length / B;
        const pe = new Float32Array(rows.length * C);
        rows.forEach((r, n) => {
          if (r.coord) this.pe(r.coord, pe, n * C);
        });
        const table = concat([...this.pointEmbeddings, this.notAPoint].map((e) => e.weight.v), 0);
        const learned = reshape(gather(table, rows.map((r) => r.embed)), [B, T, C]);
        parts.push(add(constant(this.upload(pe, [B, T, C])), learned));
      }
      if (texts) parts.push(reshape(texts, [B, 1, C]));
      if (parts.length === 0) return null;
      return parts.length === 1 ? parts[0]! : concat(parts, 1);
    });
  }

  /** Host values (computed in f32) on the GPU in the weights' precision: the network runs in the dtype its parameters are bound in. */
  private upload(values: Float32Array, shape: readonly number[]): Tensor {
    const t = Tensor.from(values, shape);
    const dtype = this.noMask.weight.v.value.dtype;
    if (dtype !== "f16") return t;
    const half = cast(t, "f16");
    t.dispose();
    return half;
  }

  /** Frees the cached dense encoding (the parameters belong to the network). */
  disposeCaches(): void {
    this.denseVar?.dispose();
    this.denseVar = null;
  }
}
