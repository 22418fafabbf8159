"""Official SegVol parameter manifest: canonical names (no `model.` prefix) and
shapes of every tensor in the official state dict except CLIP's `position_ids`.

Usage (from the repo root):  /usr/bin/python3 -m tools.segvol_ref.manifest
writes weights/manifest/official.json = {"parameters": {name: [shape...]}} in
state-dict order. The shapes come from the reference model built with the
default (official) config, and are cross-checked against totals measured on the
published `pytorch_model.bin` (475 tensors incl. position_ids, 180,891,293
values incl. its 77 int64s), so a wrong guess about the architecture fails here.
"""
import json
import math
import os
from collections import OrderedDict

import torch

from .model import SegVol

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "weights", "manifest", "official.json")

# Measured on the real checkpoint, position_ids excluded.
OFFICIAL_TENSORS = 474
OFFICIAL_VALUES = 180_891_293 - 77
OFFICIAL_PER_GROUP = {
    "image_encoder": 87_388_416,
    "mask_decoder": 29_923_716,
    "prompt_encoder": 19_148,
    "text_encoder": 63_560_013 - 77,
}


def expected_parameters(config=None):
    """OrderedDict canonical name -> shape list, for any config (the rule the
    TS side's expected-parameter list must follow)."""
    torch.manual_seed(0)
    model = SegVol(config)
    return OrderedDict((k, list(v.shape)) for k, v in model.state_dict().items())


def check_official(params):
    n = sum(math.prod(s) for s in params.values())
    groups = {}
    for k, s in params.items():
        g = k.split(".")[0]
        groups[g] = groups.get(g, 0) + math.prod(s)
    problems = []
    if len(params) != OFFICIAL_TENSORS:
        problems.append(f"{len(params)} tensors, expected {OFFICIAL_TENSORS}")
    if n != OFFICIAL_VALUES:
        problems.append(f"{n} values, expected {OFFICIAL_VALUES}")
    if groups != OFFICIAL_PER_GROUP:
        problems.append(f"per group {groups}, expected {OFFICIAL_PER_GROUP}")
    if problems:
        raise SystemExit("manifest: " + "; ".join(problems))


def main():
    params = expected_parameters()
    check_official(params)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        # one tensor per line, so diffs of the manifest stay readable
        lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in params.items()]
        f.write('{"parameters": {\n' + ",\n".join(lines) + "\n}}\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(params)} tensors, {sum(math.prod(s) for s in params.values())} values")


if __name__ == "__main__":
    main()
