// SegVol's prompt encoder (spec §3). Everything here is tiny (a handful of
// tokens, one 768×N dense grid computed once), so it is computed on the host
// in float64 and uploaded; the coordinate swaps inherited from 2-D SAM are
// kept exactly as the checkpoint expects them.
import type { ParamStore } from "../nn/params.js";
import type { SegVolConfig } from "./config.js";

const P = "prompt_encoder";

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

export class PromptEncoder {
  /** Gaussian matrix G [3, C/2], row-major. */
  private readonly gauss: Float64Array;
  private readonly pointEmbed: Float32Array[];
  private readonly notAPoint: Float32Array;
  readonly dim: number;
  readonly grid: Vec3;
  private densePe: Float32Array | null = null;

  constructor(
    p: ParamStore,
    readonly cfg: SegVolConfig,
  ) {
    this.dim = cfg.decoder.transformer_dim;
    this.gauss = Float64Array.from(p.host(`${P}.pe_layer.positional_encoding_gaussian_matrix`));
    this.pointEmbed = [0, 1, 2, 3].map((i) => p.host(`${P}.point_embeddings.${i}.weight`));
    this.notAPoint = p.host(`${P}.not_a_point_embed.weight`);
    const [D, H, W] = cfg.spatial_size;
    const [p1, p2, p3] = cfg.patch_size;
    this.grid = [D / p1, H / p2, W / p3];
  }

  /** pe(c) = [sin(2π(2c−1)G), cos(2π(2c−1)G)] written at out[offset..offset+C). */
  private pe(c: Vec3, out: Float32Array, offset: number): void {
    const half = this.dim / 2;
    const g = this.gauss;
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
   * Dense positional encoding, token-major [N, C]: for grid cell (i, j, k),
   * c = ((j+0.5)/g1, (i+0.5)/g0, (k+0.5)/g2) — the first component runs along
   * the second grid axis (SAM's x/y swap).
   */
  densePositional(): Float32Array {
    if (this.densePe) return this.densePe;
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
    this.densePe = out;
    return out;
  }

  /**
   * Sparse tokens [T, C] in the order points (+ one padding point when there
   * is no box), box corners, then the text embedding when given.
   */
  sparseTokens(prompt: SpatialPrompt, text?: Float32Array): { data: Float32Array; count: number } {
    const C = this.dim;
    const rows = sparseRows(prompt, this.cfg.spatial_size).map((r) => {
      if (!r.coord) return this.notAPoint;
      const row = new Float32Array(C);
      this.pe(r.coord, row, 0);
      const e = this.pointEmbed[r.embed]!;
      for (let f = 0; f < C; f++) row[f] = row[f]! + e[f]!;
      return row;
    });
    if (text) rows.push(text);
    const data = new Float32Array(rows.length * C);
    rows.forEach((r, n) => data.set(r, n * C));
    return { data, count: rows.length };
  }
}
