"""Deterministic, counter-based weights that TypeScript can re-create bit for bit.

Large test checkpoints (768-wide decoder) are too big to commit, so a config's
weights are described by a small JSON instead:

    {"hash": "lowbias32",
     "tensors": {"<canonical name>": {"shape": [...], "scale": s, "offset": o}, ...},
     "check": {"<name>": [first 4 values], ...}}

in state-dict order. Element i (C-order flat index) of tensor `name` is

    seed  = fnv1a32(utf8(name))        offset basis 2166136261, prime 16777619, uint32
    x     = (seed ^ Math.imul(i + 1, 0x9E3779B9)) >>> 0
    x ^= x >>> 16;  x = Math.imul(x, 0x7feb352d)
    x ^= x >>> 15;  x = Math.imul(x, 0x846ca68b)
    x ^= x >>> 16                      (all as uint32)
    u     = x / 2**32
    value = float32(offset + scale * (2 * u - 1))   # float64 arithmetic in this order, then rounded

so values are uniform in [offset - scale, offset + scale).

CLI: /usr/bin/python3 -m tools.segvol_ref.hashinit INIT.json --config CONFIG.json --out CKPT.bin
writes the HF-layout checkpoint (keys prefixed `model.`, plus CLIP's int64
`position_ids` buffer when the config has text, as HF exports carry it).
"""
import argparse
import json
import math
from collections import OrderedDict

import numpy as np
import torch

M32 = 0xFFFFFFFF


def fnv1a32(name):
    h = 2166136261
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 16777619) & M32
    return h


def hash_values(name, shape, scale, offset):
    """float32 ndarray of `shape` per the module docstring (vectorised, uint32 wraparound)."""
    n = math.prod(shape)
    seed = np.uint32(fnv1a32(name))
    with np.errstate(over="ignore"):
        i1 = np.arange(1, n + 1, dtype=np.uint64)
        x = ((i1 * np.uint64(0x9E3779B9)) & np.uint64(M32)).astype(np.uint32) ^ seed
        x ^= x >> np.uint32(16)
        x *= np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x846CA68B)
        x ^= x >> np.uint32(16)
    u = x.astype(np.float64) / 4294967296.0
    v = float(offset) + float(scale) * (2.0 * u - 1.0)
    return v.astype(np.float32).reshape(shape)


def _round(x):
    return float(f"{x:.6g}")


def init_spec(model):
    """Per-tensor (scale, offset) keeping activations O(1): Linear/Conv weights
    uniform with variance 1/fan_in, LayerNorm weights 1 +- 0.1, biases small,
    embeddings +-0.5, the Fourier matrix with std ~1 (SAM uses N(0, 1))."""
    kind = {}
    for mname, mod in model.named_modules():
        pre = mname + "." if mname else ""
        if isinstance(mod, torch.nn.LayerNorm) or type(mod).__name__ == "LayerNormChannels":
            kind[pre + "weight"] = "ln_w"
            kind[pre + "bias"] = "ln_b"
        elif isinstance(mod, (torch.nn.ConvTranspose3d,)):
            kind[pre + "weight"] = "convT"
        elif isinstance(mod, torch.nn.Embedding):
            kind[pre + "weight"] = "emb"
    spec = OrderedDict()
    for name, t in model.state_dict().items():
        shape = list(t.shape)
        k = kind.get(name)
        if name.endswith("positional_encoding_gaussian_matrix"):
            s, o = 1.7, 0.0
        elif name.endswith("position_embeddings") or k == "emb":
            s, o = 0.5, 0.0
        elif k == "ln_w":
            s, o = 0.1, 1.0
        elif k == "ln_b":
            s, o = 0.05, 0.0
        elif k == "convT":
            # stride == kernel: each output voxel sees one tap per input channel
            s, o = _round(math.sqrt(3.0 / shape[0])), 0.0
        elif name.endswith(".bias"):
            s, o = 0.02, 0.0
        elif name.endswith(".weight") and len(shape) >= 2:
            s, o = _round(math.sqrt(3.0 / math.prod(shape[1:]))), 0.0
        else:
            raise ValueError(f"init_spec: no rule for {name} {shape}")
        spec[name] = {"shape": shape, "scale": s, "offset": o}
    return spec


def materialise(spec):
    return OrderedDict((k, torch.from_numpy(hash_values(k, v["shape"], v["scale"], v["offset"]))) for k, v in spec.items())


def init_json(spec, check_names):
    out = {"hash": "lowbias32", "tensors": spec, "check": {}}
    for n in check_names:
        v = spec[n]
        out["check"][n] = [float(x) for x in hash_values(n, v["shape"], v["scale"], v["offset"]).reshape(-1)[:4]]
    return out


def hf_checkpoint(state, config):
    """State dict in the HF layout: `model.` prefix (+ position_ids with text)."""
    sd = OrderedDict(("model." + k, v.contiguous()) for k, v in state.items())
    if config.get("text") is not None:
        n = config["text"]["max_position_embeddings"]
        sd["model.text_encoder.clip_text_model.text_model.embeddings.position_ids"] = torch.arange(n)[None]
    return sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("init")
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    spec = json.load(open(a.init))["tensors"]
    cfg = json.load(open(a.config))
    torch.save(hf_checkpoint(materialise(spec), cfg), a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
