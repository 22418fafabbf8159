"""A deterministic stand-in for the SegVol window model, implemented
identically in test/pipeline/fake-segmenter.ts, so that pipeline tests check
the plumbing (crops, resizes, windows, prompt mapping, averaging) exactly.

logits = 4·(x − 0.5) + text bias + box term + point terms, computed in
float64 and rounded to float32:
- text: ((sum of character codes) mod 11) / 10 − 0.5;
- box (d0, h0, w0, d1, h1, w1): +2.5 inside the inclusive box; an all −1
  box ("empty") adds −0.5 everywhere;
- each point: label 1 adds +2 within Chebyshev distance 2, label 0 adds −2
  there, label −1 (padding) adds −0.25 everywhere.
"""
import numpy as np


def text_bias(text):
    return (sum(ord(c) for c in text) % 11) / 10 - 0.5


def fake_window(x, prompt):
    D, H, W = x.shape
    y = 4.0 * (x.astype(np.float64) - 0.5)
    if prompt.get("text") is not None:
        y = y + text_bias(prompt["text"])
    box = prompt.get("box")
    if box is not None:
        b = [int(v) for v in box]
        if b[0] < 0:
            y = y - 0.5
        else:
            y[b[0]:b[3] + 1, b[1]:b[4] + 1, b[2]:b[5] + 1] += 2.5
    pts = prompt.get("points")
    if pts is not None:
        coords, labels = pts
        for c, l in zip(np.asarray(coords).tolist(), np.asarray(labels).tolist()):
            if l == -1:
                y = y - 0.25
                continue
            d, h, w = [int(v) for v in c]
            s = (slice(max(d - 2, 0), max(d + 3, 0)), slice(max(h - 2, 0), max(h + 3, 0)), slice(max(w - 2, 0), max(w + 3, 0)))
            y[s] += 2.0 if l == 1 else -2.0
    return y.astype(np.float32)
