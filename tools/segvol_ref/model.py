"""Plain-PyTorch reference of SegVol (the upstream architecture, sections 2-5 of the project's SegVol spec).

Written from the spec, not from MONAI / segment-anything / transformers, with
module attribute names chosen so that `state_dict()` keys equal the official
checkpoint's keys (without the `model.` prefix). Every size comes from the
issue-3 config dict (tools/segvol_ref/config.py), so the tiny test
configurations run through exactly the same code as the official one.

Entry point: `SegVol(config).forward_window(image, points=, box=, text_ids=)`
returning a dict of intermediates (see its docstring).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import grid_size, make_config

LN_EPS = 1e-5  # every LayerNorm of the image encoder and decoder


# ---------------------------------------------------------------------------
# Image encoder: MONAI-0.9-style ViT with a "perceptron" patch embedding.


class PatchRearrange(nn.Module):
    """`b c (d p1) (h p2) (w p3) -> b (d h w) (p1 p2 p3 c)`; parameter-free
    (it is index `.0` of `patch_embeddings`, so the Linear is `.1`)."""

    def __init__(self, patch_size):
        super().__init__()
        self.patch_size = list(patch_size)

    def forward(self, x):
        b, c, D, H, W = x.shape
        p1, p2, p3 = self.patch_size
        d, h, w = D // p1, H // p2, W // p3
        x = x.reshape(b, c, d, p1, h, p2, w, p3)
        # -> b, d, h, w, p1, p2, p3, c   (c fastest inside a patch vector)
        x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)
        return x.reshape(b, d * h * w, p1 * p2 * p3 * c)


class PatchEmbedding(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden = cfg["vit"]["hidden_size"]
        p = cfg["patch_size"]
        n_tokens = math.prod(grid_size(cfg))
        patch_dim = p[0] * p[1] * p[2] * cfg["in_channels"]
        # registered before the Sequential, as in MONAI, so it comes first in state_dict order
        self.position_embeddings = nn.Parameter(torch.zeros(1, n_tokens, hidden))
        self.patch_embeddings = nn.Sequential(PatchRearrange(p), nn.Linear(patch_dim, hidden))

    def forward(self, x):
        return self.patch_embeddings(x) + self.position_embeddings


class ViTMLP(nn.Module):
    def __init__(self, hidden, mlp_dim):
        super().__init__()
        self.linear1 = nn.Linear(hidden, mlp_dim)
        self.linear2 = nn.Linear(mlp_dim, hidden)

    def forward(self, x):
        return self.linear2(F.gelu(self.linear1(x)))  # exact (erf) GELU


class ViTSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.out_proj = nn.Linear(hidden, hidden)
        self.qkv = nn.Linear(hidden, hidden * 3, bias=False)  # no bias in the official weights

    def forward(self, x):
        b, n, c = x.shape
        hd = c // self.heads
        # qkv features are ordered (qkv, head, d)
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax((q @ k.transpose(-2, -1)) * hd ** -0.5, dim=-1)
        out = (att @ v).transpose(1, 2).reshape(b, n, c)
        return self.out_proj(out)


class ViTBlock(nn.Module):
    def __init__(self, hidden, mlp_dim, heads):
        super().__init__()
        self.mlp = ViTMLP(hidden, mlp_dim)
        self.norm1 = nn.LayerNorm(hidden, eps=LN_EPS)
        self.attn = ViTSelfAttention(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden, eps=LN_EPS)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ImageEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        v = cfg["vit"]
        self.grid = grid_size(cfg)
        self.patch_embedding = PatchEmbedding(cfg)
        self.blocks = nn.ModuleList(
            ViTBlock(v["hidden_size"], v["mlp_dim"], v["num_heads"]) for _ in range(v["num_layers"])
        )
        self.norm = nn.LayerNorm(v["hidden_size"], eps=LN_EPS)

    def forward(self, x):
        """[B, C, D, H, W] -> image embedding [B, hidden, d', h', w']."""
        t = self.patch_embedding(x)
        for blk in self.blocks:
            t = blk(t)
        t = self.norm(t)
        b, n, c = t.shape
        return t.transpose(1, 2).reshape(b, c, *self.grid)


# ---------------------------------------------------------------------------
# Prompt encoder (3-D SAM prompt encoder, with its inherited axis swaps).


class LayerNormChannels(nn.Module):
    """LayerNorm over the channel axis of an NCHW map, weight/bias [C]
    (SAM's LayerNorm2d). Only used by the dead mask branch."""

    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class RandomFourierPE(nn.Module):
    def __init__(self, num_feats):
        super().__init__()
        # a persistent buffer: it is in the checkpoint and must be loaded, never regenerated
        self.register_buffer("positional_encoding_gaussian_matrix", torch.zeros(3, num_feats))

    def encode(self, c):
        """c [..., 3] in [0, 1] -> [..., 2*num_feats] = [sin | cos]."""
        g = self.positional_encoding_gaussian_matrix
        z = 2 * math.pi * ((2 * c - 1) @ g)
        return torch.cat([torch.sin(z), torch.cos(z)], dim=-1)


class PromptEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        e = cfg["decoder"]["transformer_dim"]
        m = cfg["prompt_encoder"]["mask_in_chans"]
        self.embed_dim = e
        self.spatial = list(cfg["spatial_size"])
        self.grid = grid_size(cfg)
        self.pe_layer = RandomFourierPE(e // 2)
        # 0: negative point, 1: positive point, 2/3: box corners
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, e) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, e)
        # SAM's 2-D mask-input branch, kept because its weights are in the
        # checkpoint (as Conv2d: 4-D weights); SegVol never feeds a mask.
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, m // 4, kernel_size=2, stride=2),
            LayerNormChannels(m // 4),
            nn.GELU(),
            nn.Conv2d(m // 4, m, kernel_size=2, stride=2),
            LayerNormChannels(m),
            nn.GELU(),
            nn.Conv2d(m, e, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, e)

    def dense_pe(self):
        """[1, e, d', h', w'] with c = ((j+.5)/h', (i+.5)/d', (k+.5)/w') at cell
        (i, j, k): the first PE coordinate runs along the SECOND grid axis."""
        d, h, w = self.grid
        dev, dt = self.no_mask_embed.weight.device, self.no_mask_embed.weight.dtype
        i = (torch.arange(d, device=dev, dtype=dt) + 0.5) / d
        j = (torch.arange(h, device=dev, dtype=dt) + 0.5) / h
        k = (torch.arange(w, device=dev, dtype=dt) + 0.5) / w
        ci, cj, ck = torch.meshgrid(i, j, k, indexing="ij")
        c = torch.stack([cj, ci, ck], dim=-1)  # the x/y swap
        return self.pe_layer.encode(c).permute(3, 0, 1, 2).unsqueeze(0)

    def _coords_pe(self, p):
        """Window voxel coords (d, h, w) [..., 3] -> PE, with the same swap:
        c0 = (p0+.5)/H, c1 = (p1+.5)/D, c2 = (p2+.5)/W."""
        D, H, W = self.spatial
        p = p + 0.5
        c = torch.stack([p[..., 0] / H, p[..., 1] / D, p[..., 2] / W], dim=-1)
        return self.pe_layer.encode(c)

    def embed_points(self, coords, labels, pad):
        """coords [B, N, 3], labels [B, N] (1 pos, 0 neg, -1 padding)."""
        if pad:
            b = coords.shape[0]
            coords = torch.cat([coords, coords.new_zeros(b, 1, 3)], dim=1)
            labels = torch.cat([labels, labels.new_full((b, 1), -1)], dim=1)
        pe = self._coords_pe(coords)
        lab = labels[..., None]
        out = torch.where(lab == -1, torch.zeros_like(pe), pe)
        out = out + (lab == -1).to(pe.dtype) * self.not_a_point_embed.weight
        out = out + (lab == 0).to(pe.dtype) * self.point_embeddings[0].weight
        out = out + (lab == 1).to(pe.dtype) * self.point_embeddings[1].weight
        return out

    def embed_box(self, box):
        """box [B, 6] = (d0, h0, w0, d1, h1, w1) -> two corner tokens [B, 2, e]."""
        pe = self._coords_pe(box.reshape(-1, 2, 3))
        return torch.stack(
            [pe[:, 0] + self.point_embeddings[2].weight[0], pe[:, 1] + self.point_embeddings[3].weight[0]], dim=1
        )

    def forward(self, points=None, box=None, text_embedding=None):
        """Returns (sparse [B, n, e], dense [B, e, d', h', w']). Token order:
        points (+ one padding point when there is no box), box corners, text."""
        parts = []
        if points is not None:
            parts.append(self.embed_points(points[0], points[1], pad=box is None))
        if box is not None:
            parts.append(self.embed_box(box))
        if text_embedding is not None:
            parts.append(text_embedding[:, None, :])
        if not parts:
            raise ValueError("PromptEncoder: empty prompt (no points, box or text)")
        sparse = torch.cat(parts, dim=1)
        b = sparse.shape[0]
        dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1, 1).expand(b, -1, *self.grid)
        return sparse, dense


# ---------------------------------------------------------------------------
# Mask decoder: SAM two-way transformer + 3-D upscaling + text similarity.


class DecoderAttention(nn.Module):
    def __init__(self, dim, heads, downsample=1):
        super().__init__()
        self.heads = heads
        internal = dim // downsample
        self.q_proj = nn.Linear(dim, internal)
        self.k_proj = nn.Linear(dim, internal)
        self.v_proj = nn.Linear(dim, internal)
        self.out_proj = nn.Linear(internal, dim)

    def _split(self, x):
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, q, k, v):
        q, k, v = self._split(self.q_proj(q)), self._split(self.k_proj(k)), self._split(self.v_proj(v))
        att = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1]), dim=-1)
        out = att @ v
        b, h, n, c = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * c))


class DecoderMLPBlock(nn.Module):
    def __init__(self, dim, mlp_dim):
        super().__init__()
        self.lin1 = nn.Linear(dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, dim)

    def forward(self, x):
        return self.lin2(F.relu(self.lin1(x)))


class TwoWayBlock(nn.Module):
    def __init__(self, dim, heads, mlp_dim, downsample, first):
        super().__init__()
        self.self_attn = DecoderAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.cross_attn_token_to_image = DecoderAttention(dim, heads, downsample)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = DecoderMLPBlock(dim, mlp_dim)
        self.norm3 = nn.LayerNorm(dim, eps=LN_EPS)
        self.norm4 = nn.LayerNorm(dim, eps=LN_EPS)
        self.cross_attn_image_to_token = DecoderAttention(dim, heads, downsample)
        self.first = first

    def forward(self, queries, keys, qpe, kpe):
        if self.first:
            # layer 0: no PE and NO residual (SAM's skip_first_layer_pe)
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + qpe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        queries = self.norm2(queries + self.cross_attn_token_to_image(queries + qpe, keys + kpe, keys))
        queries = self.norm3(queries + self.mlp(queries))
        keys = self.norm4(keys + self.cross_attn_image_to_token(keys + kpe, queries + qpe, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, dim, depth, heads, mlp_dim, downsample):
        super().__init__()
        self.layers = nn.ModuleList(TwoWayBlock(dim, heads, mlp_dim, downsample, i == 0) for i in range(depth))
        self.final_attn_token_to_image = DecoderAttention(dim, heads, downsample)
        self.norm_final_attn = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, src, pos, tokens):
        """src, pos [B, C, d, h, w]; tokens [B, T, C] -> (queries, keys [B, dhw, C])."""
        keys = src.flatten(2).transpose(1, 2)
        kpe = pos.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, kpe)
        queries = queries + self.final_attn_token_to_image(queries + tokens, keys + kpe, keys)
        return self.norm_final_attn(queries), keys


class HeadMLP(nn.Module):
    """`layers.0..n-1` Linear, ReLU between them (SAM's MLP)."""

    def __init__(self, din, dhid, dout, n):
        super().__init__()
        dims = [din] + [dhid] * (n - 1) + [dout]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for i, lin in enumerate(self.layers):
            x = lin(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MaskDecoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["decoder"]
        td = d["transformer_dim"]
        g = grid_size(cfg)
        self.num_mask_tokens = d["num_multimask_outputs"] + 1
        self.transformer = TwoWayTransformer(
            td, d["depth"], d["num_heads"], d["mlp_dim"], d["attention_downsample_rate"]
        )
        self.iou_token = nn.Embedding(1, td)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, td)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose3d(td, td // 4, kernel_size=2, stride=2),
            # ONE LayerNorm over the whole (C, 2d, 2h, 2w) block, element-wise affine
            nn.LayerNorm([td // 4, 2 * g[0], 2 * g[1], 2 * g[2]], eps=LN_EPS),
            nn.GELU(),
            nn.ConvTranspose3d(td // 4, td // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            HeadMLP(td, td, td // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = HeadMLP(td, d["iou_head_hidden_dim"], self.num_mask_tokens, d["iou_head_depth"])
        # official: Linear(768, 96) = (transformer_dim, transformer_dim // 8); present even without text
        self.txt_align_upscaled_embedding = nn.Linear(td, td // 8)

    def forward(self, image_embedding, text_embedding, dense_pe, sparse, dense):
        """Returns (mask channel 0 [B, 1, 4d', 4h', 4w'], iou predictions [B, num_mask_tokens])."""
        b = sparse.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens[None].expand(b, -1, -1), sparse], dim=1)
        src = image_embedding + dense
        pos = dense_pe.expand(b, -1, -1, -1, -1)
        _, c, gd, gh, gw = src.shape
        hs, keys = self.transformer(src, pos, tokens)
        up = self.output_upscaling(keys.transpose(1, 2).reshape(b, c, gd, gh, gw))
        _, cu, ud, uh, uw = up.shape
        hyper = torch.stack(
            [self.output_hypernetworks_mlps[i](hs[:, 1 + i]) for i in range(self.num_mask_tokens)], dim=1
        )
        flat = up.reshape(b, cu, ud * uh * uw)
        masks = hyper @ flat
        if text_embedding is not None:
            t = self.txt_align_upscaled_embedding(text_embedding)[:, None, :]
            masks = masks + t @ flat  # same similarity added to every mask
        iou = self.iou_prediction_head(hs[:, 0])
        return masks[:, 0:1].reshape(b, 1, ud, uh, uw), iou


# ---------------------------------------------------------------------------
# Text encoder: CLIP text tower (HF CLIPTextModel layout) + dim_align.


class CLIPEmbeddings(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.token_embedding = nn.Embedding(t["vocab_size"], t["hidden_size"])
        self.position_embedding = nn.Embedding(t["max_position_embeddings"], t["hidden_size"])
        # not a weight (the manifest excludes it); non-persistent so state_dict() omits it
        self.register_buffer("position_ids", torch.arange(t["max_position_embeddings"])[None], persistent=False)

    def forward(self, ids):
        n = ids.shape[1]
        return self.token_embedding(ids) + self.position_embedding(self.position_ids[:, :n])


class CLIPAttention(nn.Module):
    def __init__(self, t):
        super().__init__()
        h = t["hidden_size"]
        self.heads = t["num_attention_heads"]
        self.k_proj = nn.Linear(h, h)
        self.v_proj = nn.Linear(h, h)
        self.q_proj = nn.Linear(h, h)
        self.out_proj = nn.Linear(h, h)

    def forward(self, x):
        b, n, c = x.shape
        hd = c // self.heads

        def split(y):
            return y.reshape(b, n, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        s = (q @ k.transpose(-2, -1)) * hd ** -0.5
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        s = s.masked_fill(causal, float("-inf"))
        out = torch.softmax(s, dim=-1) @ v
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


def _text_act(name):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu_new":
        return lambda x: F.gelu(x, approximate="tanh")
    raise ValueError(f"text.hidden_act {name!r} unsupported")


class CLIPMLP(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.fc1 = nn.Linear(t["hidden_size"], t["intermediate_size"])
        self.fc2 = nn.Linear(t["intermediate_size"], t["hidden_size"])
        self.act = _text_act(t["hidden_act"])

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class CLIPLayer(nn.Module):
    def __init__(self, t):
        super().__init__()
        eps = t["layer_norm_eps"]
        self.self_attn = CLIPAttention(t)
        self.layer_norm1 = nn.LayerNorm(t["hidden_size"], eps=eps)
        self.mlp = CLIPMLP(t)
        self.layer_norm2 = nn.LayerNorm(t["hidden_size"], eps=eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class CLIPEncoder(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.layers = nn.ModuleList(CLIPLayer(t) for _ in range(t["num_hidden_layers"]))


class CLIPTextTransformer(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.embeddings = CLIPEmbeddings(t)
        self.encoder = CLIPEncoder(t)
        self.final_layer_norm = nn.LayerNorm(t["hidden_size"], eps=t["layer_norm_eps"])

    def forward(self, ids):
        x = self.embeddings(ids)
        for layer in self.encoder.layers:
            x = layer(x)
        x = self.final_layer_norm(x)
        # pooled at the position of the highest id (the eos token)
        pos = ids.argmax(dim=-1)
        return x[torch.arange(x.shape[0]), pos]


class CLIPTextModel(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.text_model = CLIPTextTransformer(t)


class TextEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        t = cfg["text"]
        self.max_len = t["max_position_embeddings"]
        self.vocab = t["vocab_size"]
        self.clip_text_model = CLIPTextModel(t)
        self.dim_align = nn.Linear(t["hidden_size"], cfg["decoder"]["transformer_dim"])

    def forward(self, ids):
        """ids [B, n] int64 (bos ... eos, no padding) -> text embedding [B, transformer_dim]."""
        if ids.shape[1] > self.max_len:
            raise ValueError(f"TextEncoder: {ids.shape[1]} tokens > max_position_embeddings {self.max_len}")
        if int(ids.min()) < 0 or int(ids.max()) >= self.vocab:
            raise ValueError(f"TextEncoder: token ids must be in [0, {self.vocab})")
        return self.dim_align(self.clip_text_model.text_model(ids))


# ---------------------------------------------------------------------------


class SegVol(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        cfg = make_config(config)
        self.config = cfg
        # registration order = the official state-dict order
        self.image_encoder = ImageEncoder(cfg)
        self.mask_decoder = MaskDecoder(cfg)
        self.prompt_encoder = PromptEncoder(cfg)
        if cfg["text"] is not None:
            self.text_encoder = TextEncoder(cfg)
        else:
            self.text_encoder = None

    @torch.no_grad()
    def forward_window(self, image, points=None, box=None, text_ids=None):
        """One model window, no pre/post-processing.

        image    [1, C, D, H, W] (or [D, H, W]) = config spatial_size
        points   (coords [N, 3] in window voxel indices (d, h, w), labels [N]: 1/0)
        box      [6] = (d0, h0, w0, d1, h1, w1), inclusive corners, voxel indices
        text_ids list/1-D tensor of token ids (bos ... eos)

        Returns a dict: image_embedding [1, C, d', h', w'], dense_pe (same
        shape), sparse [1, n, C], text_embedding [1, C] (only with text),
        low_res_masks [1, 1, 4d', 4h', 4w'], logits [1, 1, D, H, W], iou [1, k].
        """
        p = next(self.parameters())
        dt, dev = p.dtype, p.device
        x = torch.as_tensor(image, dtype=dt, device=dev)
        if x.dim() == 3:
            x = x[None, None]
        want = [1, self.config["in_channels"], *self.config["spatial_size"]]
        if list(x.shape) != want:
            raise ValueError(f"SegVol.forward_window: image shape {list(x.shape)}, expected {want}")
        pts = None
        if points is not None:
            c = torch.as_tensor(points[0], dtype=dt, device=dev).reshape(1, -1, 3)
            lab = torch.as_tensor(points[1], device=dev).reshape(1, -1).to(torch.long)
            if c.shape[1] != lab.shape[1] or c.shape[1] == 0:
                raise ValueError(f"SegVol.forward_window: points {list(c.shape)} vs labels {list(lab.shape)}")
            pts = (c, lab)
        bx = None
        if box is not None:
            bx = torch.as_tensor(box, dtype=dt, device=dev).reshape(1, 6)
        temb = None
        if text_ids is not None:
            if self.text_encoder is None:
                raise ValueError("SegVol.forward_window: text prompt given but the config has no text tower")
            ids = torch.as_tensor(text_ids, dtype=torch.long, device=dev).reshape(1, -1)
            temb = self.text_encoder(ids)
        emb = self.image_encoder(x)
        sparse, dense = self.prompt_encoder(pts, bx, temb)
        pe = self.prompt_encoder.dense_pe()
        low, iou = self.mask_decoder(emb, temb, pe, sparse, dense)
        logits = F.interpolate(low, size=tuple(self.config["spatial_size"]), mode="trilinear", align_corners=False)
        out = {
            "image_embedding": emb,
            "dense_pe": pe,
            "sparse": sparse,
            "low_res_masks": low,
            "logits": logits,
            "iou": iou,
        }
        if temb is not None:
            out["text_embedding"] = temb
        return out
