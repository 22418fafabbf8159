// The parameter names and shapes a SegVol model of a given configuration
// has, canonical (no "model."/"module." prefix), in the order PyTorch's
// state_dict() lists them (module registration order; a module's own
// parameters, then its buffers, then its children). Derived from the
// upstream SegVol architecture (tools/segvol_ref/model.py writes it in
// PyTorch): the official config gives the names of the published checkpoint
// exactly; small configs scale every size.
import type { SegVolConfig } from "./config.js";

export function expectedParameters(cfg: SegVolConfig): Map<string, number[]> {
  const p = new Map<string, number[]>();
  const add = (name: string, shape: number[]): void => {
    if (p.has(name)) throw new Error(`expectedParameters: duplicate parameter ${name}`);
    p.set(name, shape);
  };
  const linear = (name: string, inF: number, outF: number, bias = true): void => {
    add(`${name}.weight`, [outF, inF]);
    if (bias) add(`${name}.bias`, [outF]);
  };
  const norm = (name: string, shape: number[]): void => {
    add(`${name}.weight`, shape);
    add(`${name}.bias`, shape);
  };

  const [D, H, W] = cfg.spatial_size;
  const [p1, p2, p3] = cfg.patch_size;
  const grid = [D / p1, H / p2, W / p3];
  const tokens = grid[0]! * grid[1]! * grid[2]!;
  const E = cfg.vit.hidden_size;
  const dim = cfg.decoder.transformer_dim;

  // SegVol registers image_encoder, mask_decoder, prompt_encoder, text_encoder in that order.
  // §2 image encoder: MONAI ViT with a "perceptron" patch embedding.
  const ie = "image_encoder";
  add(`${ie}.patch_embedding.position_embeddings`, [1, tokens, E]);
  linear(`${ie}.patch_embedding.patch_embeddings.1`, p1 * p2 * p3 * cfg.in_channels, E);
  for (let n = 0; n < cfg.vit.num_layers; n++) {
    const b = `${ie}.blocks.${n}`;
    // MONAI TransformerBlock registers mlp, norm1, attn, norm2.
    linear(`${b}.mlp.linear1`, E, cfg.vit.mlp_dim);
    linear(`${b}.mlp.linear2`, cfg.vit.mlp_dim, E);
    norm(`${b}.norm1`, [E]);
    linear(`${b}.attn.out_proj`, E, E);
    linear(`${b}.attn.qkv`, E, 3 * E, false);
    norm(`${b}.norm2`, [E]);
  }
  norm(`${ie}.norm`, [E]);

  // §4 mask decoder (SAM's, 3-D), with SegVol's text alignment layer.
  const md = "mask_decoder";
  const inner = dim / cfg.decoder.attention_downsample_rate;
  const attention = (name: string, internal: number): void => {
    linear(`${name}.q_proj`, dim, internal);
    linear(`${name}.k_proj`, dim, internal);
    linear(`${name}.v_proj`, dim, internal);
    linear(`${name}.out_proj`, internal, dim);
  };
  for (let l = 0; l < cfg.decoder.depth; l++) {
    const b = `${md}.transformer.layers.${l}`;
    attention(`${b}.self_attn`, dim);
    norm(`${b}.norm1`, [dim]);
    attention(`${b}.cross_attn_token_to_image`, inner);
    norm(`${b}.norm2`, [dim]);
    linear(`${b}.mlp.lin1`, dim, cfg.decoder.mlp_dim);
    linear(`${b}.mlp.lin2`, cfg.decoder.mlp_dim, dim);
    norm(`${b}.norm3`, [dim]);
    norm(`${b}.norm4`, [dim]);
    attention(`${b}.cross_attn_image_to_token`, inner);
  }
  attention(`${md}.transformer.final_attn_token_to_image`, inner);
  norm(`${md}.transformer.norm_final_attn`, [dim]);
  const maskTokens = cfg.decoder.num_multimask_outputs + 1;
  add(`${md}.iou_token.weight`, [1, dim]);
  add(`${md}.mask_tokens.weight`, [maskTokens, dim]);
  // ConvTranspose3d weights are [in, out, k, k, k]; the LayerNorm covers the
  // whole upscaled block (channels and the doubled token grid).
  add(`${md}.output_upscaling.0.weight`, [dim, dim / 4, 2, 2, 2]);
  add(`${md}.output_upscaling.0.bias`, [dim / 4]);
  norm(`${md}.output_upscaling.1`, [dim / 4, grid[0]! * 2, grid[1]! * 2, grid[2]! * 2]);
  add(`${md}.output_upscaling.3.weight`, [dim / 4, dim / 8, 2, 2, 2]);
  add(`${md}.output_upscaling.3.bias`, [dim / 8]);
  const mlp = (name: string, inF: number, hidden: number, outF: number, layers: number): void => {
    for (let i = 0; i < layers; i++) {
      linear(`${name}.layers.${i}`, i === 0 ? inF : hidden, i === layers - 1 ? outF : hidden);
    }
  };
  for (let i = 0; i < maskTokens; i++) mlp(`${md}.output_hypernetworks_mlps.${i}`, dim, dim, dim / 8, 3);
  mlp(`${md}.iou_prediction_head`, dim, cfg.decoder.iou_head_hidden_dim, maskTokens, cfg.decoder.iou_head_depth);
  linear(`${md}.txt_align_upscaled_embedding`, dim, dim / 8);

  // §3 prompt encoder (3-D SAM). The Gaussian matrix is a buffer of pe_layer.
  const pe = "prompt_encoder";
  add(`${pe}.pe_layer.positional_encoding_gaussian_matrix`, [3, dim / 2]);
  for (let i = 0; i < 4; i++) add(`${pe}.point_embeddings.${i}.weight`, [1, dim]);
  add(`${pe}.not_a_point_embed.weight`, [1, dim]);
  // mask_downscaling is SAM's 2-D mask branch, kept as-is in the 3-D model:
  // Conv2d(1, c/4, 2, 2), LayerNorm2d(c/4), GELU, Conv2d(c/4, c, 2, 2),
  // LayerNorm2d(c), GELU, Conv2d(c, dim, 1) — 4-D weights. (The published
  // checkpoint's prompt_encoder holds 19,148 values, which only the 2-D
  // shapes add up to; SegVol never feeds a mask, so they are never used.)
  const c = cfg.prompt_encoder.mask_in_chans;
  add(`${pe}.mask_downscaling.0.weight`, [c / 4, 1, 2, 2]);
  add(`${pe}.mask_downscaling.0.bias`, [c / 4]);
  norm(`${pe}.mask_downscaling.1`, [c / 4]);
  add(`${pe}.mask_downscaling.3.weight`, [c, c / 4, 2, 2]);
  add(`${pe}.mask_downscaling.3.bias`, [c]);
  norm(`${pe}.mask_downscaling.4`, [c]);
  add(`${pe}.mask_downscaling.6.weight`, [dim, c, 1, 1]);
  add(`${pe}.mask_downscaling.6.bias`, [dim]);
  add(`${pe}.no_mask_embed.weight`, [1, dim]);

  // §5 text encoder: HF CLIPTextModel plus the projection into the prompt width.
  const t = cfg.text;
  if (t) {
    const tm = "text_encoder.clip_text_model.text_model";
    const th = t.hidden_size;
    add(`${tm}.embeddings.token_embedding.weight`, [t.vocab_size, th]);
    add(`${tm}.embeddings.position_embedding.weight`, [t.max_position_embeddings, th]);
    for (let n = 0; n < t.num_hidden_layers; n++) {
      const b = `${tm}.encoder.layers.${n}`;
      linear(`${b}.self_attn.k_proj`, th, th);
      linear(`${b}.self_attn.v_proj`, th, th);
      linear(`${b}.self_attn.q_proj`, th, th);
      linear(`${b}.self_attn.out_proj`, th, th);
      norm(`${b}.layer_norm1`, [th]);
      linear(`${b}.mlp.fc1`, th, t.intermediate_size);
      linear(`${b}.mlp.fc2`, t.intermediate_size, th);
      norm(`${b}.layer_norm2`, [th]);
    }
    norm(`${tm}.final_layer_norm`, [th]);
    linear("text_encoder.dim_align", th, dim);
  }
  return p;
}

/** Total element count of a parameter map. */
export function parameterCount(params: Map<string, number[]>): number {
  let n = 0;
  for (const s of params.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}
