"""Synthetic CT-like volumes for the pipeline goldens."""
import numpy as np


def ct_volume(dims, seed, organ, bone):
    """HU-like integers: air outside an ellipsoid body, soft tissue, a bright organ blob, a bone block."""
    r = np.random.default_rng(seed)
    I, J, K = dims
    i, j, k = np.meshgrid(np.arange(I), np.arange(J), np.arange(K), indexing="ij")
    body = ((i - I / 2) / (0.45 * I)) ** 2 + ((j - J / 2) / (0.42 * J)) ** 2 + ((k - K / 2) / (0.6 * K)) ** 2 <= 1
    v = np.full(dims, -1000.0) + r.normal(0, 5, dims)
    v[body] = 30 + r.normal(0, 12, body.sum())
    (ci, cj, ck), (ri, rj, rk) = organ
    org = ((i - ci) / ri) ** 2 + ((j - cj) / rj) ** 2 + ((k - ck) / rk) ** 2 <= 1
    v[org & body] = 600 + r.normal(0, 20, (org & body).sum())
    (b0, b1) = bone
    v[b0[0]:b1[0] + 1, b0[1]:b1[1] + 1, b0[2]:b1[2] + 1] = 1200
    return np.round(v).astype(np.float32)
