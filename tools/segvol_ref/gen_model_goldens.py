"""Model-parity goldens for the TypeScript SegVol (issue 4 section 4).

Run from the repo root:  /usr/bin/python3 -m tools.segvol_ref.gen_model_goldens [--bin-b PATH]

Two small configurations, weights from tools/segvol_ref/hashinit.py (so the
TypeScript side can rebuild them from the committed JSON):
  A  no text tower; grid 4x3x2 (window 16x48x32) so that a swapped axis fails.
  B  text tower; 768-wide decoder (the official text path needs it), grid 2x3x4.

Writes to test/fixtures/model/:
  config_{a,b}.json       the model config (issue-3 schema, complete)
  config_{a,b}_init.json  hashinit description of every state-dict tensor
  config_a.bin            torch.save of A's weights in the HF layout (`model.` keys)
  goldens_{a,b}.json      tools/fixtures/common.py format. Case "encoder":
      inputs.window [1,1,D,H,W]; outputs.image_embedding, outputs.dense_pe.
    Every other case (params.window_case = "encoder") holds its prompts:
      inputs.points [N,3] (d,h,w voxel indices), inputs.labels [N] (i32),
      inputs.box [6] (d0,h0,w0,d1,h1,w1), inputs.text_ids [n] (i32),
      and outputs.sparse [1,n,C], outputs.text_embedding [1,C] (text cases),
      outputs.low_res_masks [1,1,4d',4h',4w'], outputs.logits [1,1,D,H,W],
      outputs.iou [1,k].
The reference runs in float64 on the float32 weights; the script also re-runs
in float32 from config_a.bin to report how far an f32 implementation lands.
  goldens_b_gelu_new.json  config B with text.hidden_act = "gelu_new" (params.override):
      inputs.text_ids, outputs.text_embedding only.
config_b.bin (~84 MB) is not committed; --bin-b writes it somewhere else.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from common import case, write  # noqa: E402

from .config import make_config  # noqa: E402
from .hashinit import hf_checkpoint, init_json, init_spec, materialise  # noqa: E402
from .model import SegVol, _text_act  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "test", "fixtures", "model")

CONFIG_A = {
    "spatial_size": [16, 48, 32],
    "patch_size": [4, 16, 16],
    "in_channels": 1,
    "vit": {"hidden_size": 96, "mlp_dim": 192, "num_layers": 2, "num_heads": 4},
    "decoder": {
        "transformer_dim": 96,
        "depth": 2,
        "num_heads": 4,
        "mlp_dim": 64,
        "num_multimask_outputs": 3,
        "iou_head_depth": 3,
        "iou_head_hidden_dim": 32,
        "attention_downsample_rate": 2,
    },
    "prompt_encoder": {"mask_in_chans": 8},
    "text": None,
}

CONFIG_B = {
    "spatial_size": [8, 48, 64],
    "patch_size": [4, 16, 16],
    "in_channels": 1,
    "vit": {"hidden_size": 768, "mlp_dim": 256, "num_layers": 1, "num_heads": 12},
    "decoder": {
        "transformer_dim": 768,
        "depth": 2,
        "num_heads": 8,
        "mlp_dim": 64,
        "num_multimask_outputs": 3,
        "iou_head_depth": 3,
        "iou_head_hidden_dim": 32,
        "attention_downsample_rate": 2,
    },
    "prompt_encoder": {"mask_in_chans": 16},
    "text": {
        "vocab_size": 64,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
        "layer_norm_eps": 1e-5,
        "hidden_act": "quick_gelu",
        "template": "A computerized tomography of a {}.",
    },
}

# Small-vocab stand-ins for bos/eos: eos (63) is the highest id, so pooling at
# argmax(ids) lands on it as with the real CLIP ids (49406/49407).
TEXT_IDS = [62, 5, 17, 40, 9, 33, 63]
# A second text, shorter and with other ids (its eos, the highest id, at
# another position), so that the text path's checks rest on two texts.
TEXT_IDS_2 = [62, 21, 7, 63]

CASES_A = {
    "points": {"points": ([[3, 30, 7], [12, 9, 25]], [1, 0])},
    "box": {"box": [2, 5, 4, 13, 40, 27]},
    "points_box": {"points": ([[3, 30, 7], [12, 9, 25]], [1, 0]), "box": [2, 5, 4, 13, 40, 27]},
}
CASES_B = {
    "text": {"text_ids": TEXT_IDS},
    "text_box": {"text_ids": TEXT_IDS, "box": [1, 6, 10, 6, 40, 50]},
    "text_points": {"text_ids": TEXT_IDS, "points": ([[2, 20, 30], [5, 40, 12]], [1, 0])},
    "text2_points": {"text_ids": TEXT_IDS_2, "points": ([[6, 10, 44]], [1])},
}


def config_text(cfg):
    """One line per section, so the config reads like the issue-3 example."""
    lines = []
    for k, v in cfg.items():
        lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def build(cfg_dict):
    cfg = make_config(cfg_dict)
    model = SegVol(cfg)
    spec = init_spec(model)
    state = materialise(spec)
    model.load_state_dict(state, strict=True)
    return cfg, model.eval(), spec, state


def window(cfg, seed):
    """A [0,1] window (like the pipeline's min-max output) with some structure:
    noise plus a smooth blob, so neighbouring voxels are correlated."""
    g = torch.Generator().manual_seed(seed)
    D, H, W = cfg["spatial_size"]
    noise = torch.rand(1, 1, D, H, W, generator=g)
    z, y, x = torch.meshgrid(
        torch.linspace(-1, 1, D), torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij"
    )
    blob = torch.exp(-((z - 0.2) ** 2 + (y + 0.3) ** 2 + (x - 0.1) ** 2) * 3)
    return (0.5 * noise + 0.5 * blob[None, None]).float()


def run_config(tag, cfg_dict, cases, seed, bin_path=None, write_bin=False):
    cfg, model, spec, state = build(cfg_dict)
    names = list(spec)
    check = [names[0], names[-1]]
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"config_{tag}.json"), "w") as f:
        f.write(config_text(cfg))
    with open(os.path.join(OUT, f"config_{tag}_init.json"), "w") as f:
        json.dump(init_json(spec, check), f, separators=(",", ":"))
        f.write("\n")
    if write_bin:
        torch.save(hf_checkpoint(state, cfg), bin_path)
        print(f"wrote {bin_path} ({os.path.getsize(bin_path)} bytes)")

    x = window(cfg, seed)
    m64 = model.double()
    out_cases = []
    enc = None
    summary = []
    for name, prompt in cases.items():
        r = m64.forward_window(x, **prompt)
        if enc is None:
            enc = r
            out_cases.append(
                case(
                    "encoder",
                    {"config": f"config_{tag}.json"},
                    {"window": x},
                    {"image_embedding": r["image_embedding"], "dense_pe": r["dense_pe"]},
                )
            )
        else:
            # the encoder output must not depend on the prompt
            assert torch.equal(enc["image_embedding"], r["image_embedding"])
        inputs = {}
        if "points" in prompt:
            inputs["points"] = torch.tensor(prompt["points"][0], dtype=torch.float32)
            inputs["labels"] = torch.tensor(prompt["points"][1], dtype=torch.int32)
        if "box" in prompt:
            inputs["box"] = torch.tensor(prompt["box"], dtype=torch.float32)
        if "text_ids" in prompt:
            inputs["text_ids"] = torch.tensor(prompt["text_ids"], dtype=torch.int32)
        outputs = {k: r[k] for k in ("sparse", "text_embedding", "low_res_masks", "logits", "iou") if k in r}
        out_cases.append(case(name, {"config": f"config_{tag}.json", "window_case": "encoder"}, inputs, outputs))
        lg = r["logits"]
        pos = float((lg > 0).double().mean())
        summary.append(f"  {tag}/{name}: logits [{float(lg.min()):.3f}, {float(lg.max()):.3f}], {100 * pos:.1f}% > 0")
        if not 0.05 < pos < 0.95:
            raise SystemExit(f"{tag}/{name}: degenerate golden, {100 * pos:.1f}% of logits > 0")
    write("model", f"goldens_{tag}", out_cases)
    print("\n".join(summary))
    return cfg, x


def f32_check(tag, cfg, x, cases, bin_path):
    """Reload the checkpoint as an f32 model and compare with the f64 goldens:
    the error an exact float32 implementation should see."""
    sd = torch.load(bin_path, map_location="cpu")
    state = {k[len("model."):]: v for k, v in sd.items() if not k.endswith("position_ids")}
    model = SegVol(cfg)
    model.load_state_dict(state, strict=True)
    m64 = SegVol(cfg).double()
    m64.load_state_dict(state, strict=True)
    for name, prompt in cases.items():
        a = model.eval().forward_window(x, **prompt)["logits"].double()
        b = m64.eval().forward_window(x, **prompt)["logits"]
        rel = float((a - b).abs().max() / b.abs().max())
        agree = float(((a > 0) == (b > 0)).double().mean())
        print(f"  f32 vs f64 {tag}/{name}: max rel err {rel:.2e}, mask agreement {100 * agree:.4f}%")


def gelu_new_golden():
    """Config B's weights with text.hidden_act = gelu_new (the activation one
    port claims the official weights expect): text embedding only, since only
    the text tower changes."""
    cfg_dict = json.loads(json.dumps(CONFIG_B))
    cfg_dict["text"]["hidden_act"] = "gelu_new"
    cfg, model, _, _ = build(cfg_dict)
    model = model.double()
    ids = torch.tensor([TEXT_IDS])
    t_new = model.text_encoder(ids)
    for layer in model.text_encoder.clip_text_model.text_model.encoder.layers:
        layer.mlp.act = _text_act("quick_gelu")
    t_quick = model.text_encoder(ids)
    rel = float((t_new - t_quick).abs().max() / t_quick.abs().max())
    print(f"  b/text gelu_new vs quick_gelu text embedding: max rel diff {rel:.3e}")
    write(
        "model",
        "goldens_b_gelu_new",
        [
            case(
                "text_gelu_new",
                {"config": "config_b.json", "override": {"text": {"hidden_act": "gelu_new"}}},
                {"text_ids": torch.tensor(TEXT_IDS, dtype=torch.int32)},
                {"text_embedding": t_new},
            )
        ],
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-b", help="also write config B's HF-layout checkpoint here (not committed: ~70 MB)")
    a = ap.parse_args()
    bin_a = os.path.join(OUT, "config_a.bin")
    cfg_a, xa = run_config("a", CONFIG_A, CASES_A, seed=11, bin_path=bin_a, write_bin=True)
    f32_check("a", cfg_a, xa, CASES_A, bin_a)
    cfg_b, xb = run_config("b", CONFIG_B, CASES_B, seed=12, bin_path=a.bin_b, write_bin=bool(a.bin_b))
    if a.bin_b:
        f32_check("b", cfg_b, xb, CASES_B, a.bin_b)
    gelu_new_golden()


if __name__ == "__main__":
    main()
