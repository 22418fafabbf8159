"""Checks the reference against the spec's formulas written out independently
(loops over indices, no shared code paths), so a slip in model.py's tensor
plumbing cannot hide in the goldens. Run: /usr/bin/python3 -m tools.segvol_ref.selfcheck
"""
import math

import torch

from .gen_model_goldens import CONFIG_A, build, window
from .hashinit import hash_values


def scalar_hash(name, i, scale, offset):
    h = 2166136261
    for b in name.encode():
        h = ((h ^ b) * 16777619) % 2**32
    x = (h ^ (((i + 1) * 0x9E3779B9) % 2**32)) % 2**32
    x ^= x >> 16
    x = (x * 0x7FEB352D) % 2**32
    x ^= x >> 15
    x = (x * 0x846CA68B) % 2**32
    x ^= x >> 16
    return float(torch.tensor(offset + scale * (2 * (x / 2**32) - 1), dtype=torch.float32))


def main():
    cfg, m, spec, _ = build(CONFIG_A)
    m = m.double()
    D, H, W = cfg["spatial_size"]
    p1, p2, p3 = cfg["patch_size"]
    d, h, w = D // p1, H // p2, W // p3
    x = window(cfg, 11).double()

    # 1. patch vectors: v[((q1*p2 + q2)*p3 + q3)*C + c] = x[c, i*p1+q1, j*p2+q2, k*p3+q3], t = (i*h + j)*w + k
    pv = m.image_encoder.patch_embedding.patch_embeddings[0](x)[0]
    for (i, j, k) in [(0, 0, 0), (3, 2, 1), (1, 2, 0), (2, 0, 1)]:
        t = (i * h + j) * w + k
        for (q1, q2, q3) in [(0, 0, 0), (1, 5, 9), (3, 15, 15), (2, 7, 0)]:
            assert pv[t, (q1 * p2 + q2) * p3 + q3] == x[0, 0, i * p1 + q1, j * p2 + q2, k * p3 + q3]

    # 2. dense PE at cell (i, j, k): c = ((j+.5)/h, (i+.5)/d, (k+.5)/w), [sin | cos] of 2*pi*(2c-1) G
    G = m.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix
    pe = m.prompt_encoder.dense_pe()[0]
    half = G.shape[1]
    for (i, j, k) in [(0, 0, 0), (3, 2, 1), (1, 0, 1), (2, 1, 0)]:
        c = [(j + 0.5) / h, (i + 0.5) / d, (k + 0.5) / w]
        for f in [0, 7, half - 1]:
            z = 2 * math.pi * sum((2 * c[a] - 1) * float(G[a, f]) for a in range(3))
            assert abs(pe[f, i, j, k] - math.sin(z)) < 1e-12 and abs(pe[half + f, i, j, k] - math.cos(z)) < 1e-12

    # 3. prompt tokens: point (d,h,w) -> c0 = (p0+.5)/H, c1 = (p1+.5)/D, c2 = (p2+.5)/W
    pts = torch.tensor([[[3.0, 30.0, 7.0], [12.0, 9.0, 25.0]]], dtype=torch.float64)
    lab = torch.tensor([[1, 0]])
    box = torch.tensor([[2.0, 5.0, 4.0, 13.0, 40.0, 27.0]], dtype=torch.float64)
    pe_enc = m.prompt_encoder
    sp, _ = pe_enc((pts, lab), None, None)
    sb, _ = pe_enc((pts, lab), box, None)

    def pe_of(p):
        c = [(p[0] + 0.5) / H, (p[1] + 0.5) / D, (p[2] + 0.5) / W]
        z = [2 * math.pi * sum((2 * c[a] - 1) * float(G[a, f]) for a in range(3)) for f in range(half)]
        return torch.tensor([math.sin(v) for v in z] + [math.cos(v) for v in z], dtype=torch.float64)

    emb = [pe_enc.point_embeddings[n].weight[0] for n in range(4)]
    want_points = [pe_of(pts[0, 0]) + emb[1], pe_of(pts[0, 1]) + emb[0]]
    assert sp.shape[1] == 3 and sb.shape[1] == 4  # padding point only without a box
    for n in range(2):
        assert (sp[0, n] - want_points[n]).abs().max() < 1e-12
        assert (sb[0, n] - want_points[n]).abs().max() < 1e-12
    assert torch.equal(sp[0, 2], pe_enc.not_a_point_embed.weight[0])
    assert (sb[0, 2] - (pe_of(box[0, :3]) + emb[2])).abs().max() < 1e-12
    assert (sb[0, 3] - (pe_of(box[0, 3:]) + emb[3])).abs().max() < 1e-12

    # 4. the whole-block LayerNorm of output_upscaling normalises over (C, D, H, W) at once
    ln = m.mask_decoder.output_upscaling[1]
    y = torch.randn(1, *ln.normalized_shape, dtype=torch.float64)
    mu, var = y.mean(), y.var(unbiased=False)
    assert (ln(y) - ((y - mu) / torch.sqrt(var + 1e-5) * ln.weight + ln.bias)).abs().max() < 1e-10

    # 5. the vectorised hash equals the scalar definition
    for name in list(spec)[:3] + list(spec)[-3:]:
        t = spec[name]
        v = hash_values(name, t["shape"], t["scale"], t["offset"]).reshape(-1)
        n = v.size
        for i in sorted({0, 1, n // 3, n - 1}):
            assert float(v[i]) == scalar_hash(name, i, t["scale"], t["offset"]), name
    print("selfcheck: patch order, dense PE, prompt tokens, block LayerNorm, hash: all OK")


if __name__ == "__main__":
    main()
