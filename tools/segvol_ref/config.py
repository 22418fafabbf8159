"""SegVol model configuration (the issue-3 `config.json` schema).

Defaults are the official checkpoint's architecture. A partial dict is merged
over the defaults; unknown keys are errors, so a typo cannot silently fall
back to a default. `"text": None` means a model without the CLIP text tower.
"""
import copy

DEFAULT_CONFIG = {
    "spatial_size": [32, 256, 256],
    "patch_size": [4, 16, 16],
    "in_channels": 1,
    "vit": {"hidden_size": 768, "mlp_dim": 3072, "num_layers": 12, "num_heads": 12},
    "decoder": {
        "transformer_dim": 768,
        "depth": 2,
        "num_heads": 8,
        "mlp_dim": 2048,
        "num_multimask_outputs": 3,
        "iou_head_depth": 3,
        "iou_head_hidden_dim": 256,
        "attention_downsample_rate": 2,
    },
    "prompt_encoder": {"mask_in_chans": 16},
    "text": {
        "vocab_size": 49408,
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 8,
        "max_position_embeddings": 77,
        "layer_norm_eps": 1e-5,
        "hidden_act": "quick_gelu",
        "template": "A computerized tomography of a {}.",
    },
}

_SECTIONS = ("vit", "decoder", "prompt_encoder", "text")


def _merge(default, over, where):
    out = copy.deepcopy(default)
    for k, v in over.items():
        if k not in default:
            raise ValueError(f"config: unknown field {where}{k}")
        if isinstance(default[k], dict):
            if v is None and k == "text":
                out[k] = None
            elif not isinstance(v, dict):
                raise ValueError(f"config: {where}{k} must be an object")
            else:
                out[k] = _merge(default[k], v, f"{where}{k}.")
        else:
            out[k] = copy.deepcopy(v)
    return out


def make_config(partial=None):
    """Merge `partial` over the official defaults and check the invariants the
    architecture relies on (divisibility, equal widths)."""
    cfg = _merge(DEFAULT_CONFIG, partial or {}, "")
    sp, pa = cfg["spatial_size"], cfg["patch_size"]
    if len(sp) != 3 or len(pa) != 3:
        raise ValueError(f"config: spatial_size {sp} and patch_size {pa} must have 3 entries")
    for a in range(3):
        if sp[a] % pa[a] != 0:
            raise ValueError(f"config: spatial_size {sp} not divisible by patch_size {pa}")
    v, d = cfg["vit"], cfg["decoder"]
    if v["hidden_size"] % v["num_heads"]:
        raise ValueError(f"config: vit.hidden_size {v['hidden_size']} not divisible by num_heads {v['num_heads']}")
    # The official network feeds the ViT output straight into the decoder, and the
    # prompt encoder's embed_dim is the decoder width: all three must be equal.
    if v["hidden_size"] != d["transformer_dim"]:
        raise ValueError(
            f"config: vit.hidden_size {v['hidden_size']} must equal decoder.transformer_dim {d['transformer_dim']}"
        )
    td = d["transformer_dim"]
    internal = td // d["attention_downsample_rate"]
    if td % d["num_heads"] or internal % d["num_heads"]:
        raise ValueError(f"config: decoder.num_heads {d['num_heads']} must divide {td} and {internal}")
    if td % 8:
        raise ValueError(f"config: decoder.transformer_dim {td} must be divisible by 8 (upscaling to td/4, td/8)")
    if cfg["prompt_encoder"]["mask_in_chans"] % 4:
        raise ValueError("config: prompt_encoder.mask_in_chans must be divisible by 4")
    if td % 2:
        raise ValueError("config: decoder.transformer_dim must be even (sin/cos halves of the PE)")
    t = cfg["text"]
    if t is not None:
        if t["hidden_size"] % t["num_attention_heads"]:
            raise ValueError("config: text.hidden_size not divisible by text.num_attention_heads")
        if t["hidden_act"] not in ("quick_gelu", "gelu_new"):
            raise ValueError(f"config: text.hidden_act {t['hidden_act']!r} is not quick_gelu or gelu_new")
    return cfg


def grid_size(cfg):
    return [s // p for s, p in zip(cfg["spatial_size"], cfg["patch_size"])]
