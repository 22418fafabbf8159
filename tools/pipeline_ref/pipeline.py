"""NumPy/PyTorch reference of the SegVol volume pipeline (spec section 6).

Written in the shape of the upstream code (ForegroundNormalization,
DimTranspose, MinMaxNormalization, CropForeground, zoom_in_zoom_out,
logits2roi_coor, MONAI sliding_window_inference) so that the TypeScript
pipeline (src/segvol/pipeline/) is checked against an independent
implementation: every resize goes through torch.nn.functional.interpolate,
prompt maps are built as binary maps and resized like upstream, and targets
are processed one at a time with no embedding sharing.

Deliberate, documented choices (mirrored in the TypeScript pipeline):
- the foreground threshold, mean and std are computed in float64 and rounded
  to float32 (upstream: float32 pairwise sums; differs by ~1 ulp);
- a mask is `logits > 0` (= sigmoid > 0.5 in exact arithmetic);
- prompts given in input voxel indices are mapped as described in
  src/segvol/pipeline/prompts.ts: the zoom-out box is the bounding box of the
  user's box cube resized with nearest-exact (per axis; an axis where the
  cube vanishes falls back to the corners' centre mapping), points map to the
  zoom-out voxel holding their centre, zoom-in windows get the user's own
  positive points (first five inside the window, padded to five with -1) and
  the box read from the cube map resized back with `nearest`;
- the binary prompt map is padded like the image before windows are cut
  (upstream forgets to pad it, shifting prompt boxes along padded axes).

`window_fn(window: np.ndarray [D,H,W] float32, prompt: dict) -> np.ndarray
[D,H,W]` stands for the model; prompt keys: "text", "box" (6 ints),
"points" ((coords [N,3] ints, labels [N] ints)).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- steps 1-4
def foreground_normalize(ct):
    """ForegroundNormalization.normalize on a float32 array."""
    flat = ct.flatten()
    thred = np.float32(flat.astype(np.float64).mean())
    fg = flat[flat > thred]
    upper = np.percentile(fg, 99.95)
    lower = np.percentile(fg, 0.05)
    mean = np.float32(fg.astype(np.float64).mean())
    std = np.float32(fg.astype(np.float64).std())
    out = np.clip(ct, lower, upper)
    out = (out - mean) / max(std, np.float32(1e-8))
    assert out.dtype == np.float32
    return out, dict(threshold=float(thred), lo=float(lower), hi=float(upper), mean=float(mean), std=float(std))


def preprocess(vol_ijk):
    """Steps 1-4; returns the cropped model-space volume and the crop box (start, end exclusive)."""
    ct, stats = foreground_normalize(vol_ijk.astype(np.float32))
    ct = np.swapaxes(ct, -1, -3)  # (i, j, k) -> (k, j, i) = (D, H, W)
    ct = ct - ct.min()
    ct = ct / np.clip(ct.max(), a_min=1e-8, a_max=None)
    nz = np.nonzero(ct > 0)
    start = [int(a.min()) for a in nz]
    end = [int(a.max()) + 1 for a in nz]
    crop = np.ascontiguousarray(ct[start[0]:end[0], start[1]:end[1], start[2]:end[2]]).astype(np.float32)
    return crop, (start, end), np.array(ct.shape), stats


# ---------------------------------------------------------------- resizes
def interp(a, size, mode):
    t = torch.from_numpy(np.ascontiguousarray(a)).float()[None, None]
    return F.interpolate(t, size=tuple(int(s) for s in size), mode=mode)[0, 0].numpy()


def resized_interval(a, b, n, m, mode):
    """Indices of a length-n indicator of [a, b] after resizing to m with F.interpolate (min, max) or None."""
    v = np.zeros((n, 1, 1), np.float32)
    v[a:b + 1] = 1
    r = interp(v, (m, 1, 1), mode)[:, 0, 0]
    nz = np.nonzero(r > 0)[0]
    return None if len(nz) == 0 else (int(nz.min()), int(nz.max()))


def map_point(p, n, m):
    return min(int(math.floor((p + 0.5) * m / n)), m - 1)


# ---------------------------------------------------------------- helpers as upstream
def generate_box(mask):
    nz = np.nonzero(mask > 0)
    if len(nz[0]) == 0:
        return [-1] * 6
    return [int(a.min()) for a in nz] + [int(a.max()) for a in nz]


def logits2roi_coor(spatial_size, logits):
    pred = logits > 0
    nz = np.nonzero(pred)
    if len(nz[0]) == 0:
        return None
    mins = [int(a.min()) for a in nz]
    maxs = [int(a.max()) for a in nz]
    out_min, out_max = [], []
    for ax in range(3):
        crop = maxs[ax] - mins[ax] + 1
        pad = max(0, spatial_size[ax] - crop)
        out_min.append(max(0, mins[ax] - pad // 2))
        out_max.append(min(logits.shape[ax], maxs[ax] + pad // 2))
    return out_min, out_max  # inclusive max, possibly == size (sliced [min:max+1])


def scan_interval(image_size, roi_size, overlap):
    out = []
    for i in range(3):
        if roi_size[i] == image_size[i]:
            out.append(int(roi_size[i]))
        else:
            iv = int(roi_size[i] * (1 - overlap))
            out.append(iv if iv > 0 else 1)
    return out


def dense_patch_starts(image_size, patch_size, interval):
    starts = []
    for i in range(3):
        num = int(math.ceil(float(image_size[i]) / interval[i]))
        scan_dim = next((d for d in range(num) if d * interval[i] + patch_size[i] >= image_size[i]), None)
        n = scan_dim + 1 if scan_dim is not None else 1
        dim = []
        for idx in range(n):
            s = idx * interval[i]
            s -= max(s + patch_size[i] - image_size[i], 0)
            dim.append(s)
        starts.append(dim)
    return [tuple(int(v) for v in x) for x in np.asarray([g.flatten() for g in np.meshgrid(*starts, indexing="ij")]).T]


# ---------------------------------------------------------------- zoom-out-zoom-in
def segment_target(window_fn, crop, spatial, target, crop_box, overlap=0.5, zoom_in=True, log=None):
    """One target (input-space prompts) on a preprocessed crop; returns cropped-space logits (float32)."""
    n = crop.shape
    start = crop_box[0]
    text = target.get("text")
    # input (i, j, k) -> cropped model space (d, h, w)
    box_c = None
    if target.get("box") is not None:
        b = target["box"]
        lo = [b[2] - start[0], b[1] - start[1], b[0] - start[2]]
        hi = [b[5] - start[0], b[4] - start[1], b[3] - start[2]]
        lo = [max(lo[a], 0) for a in range(3)]
        hi = [min(hi[a], n[a] - 1) for a in range(3)]
        assert all(lo[a] <= hi[a] for a in range(3)), "box outside the crop"
        box_c = (lo, hi)
    pts = []
    for p in target.get("points") or []:
        i, j, k = p["ijk"]
        c = [k - start[0], j - start[1], i - start[2]]
        if all(0 <= c[a] < n[a] for a in range(3)):
            pts.append((c, p["label"]))
        else:
            assert p["label"] == 0, "positive point outside the crop"
    has_points = len(target.get("points") or []) > 0

    # zoom-out prompts
    prompt = {}
    if text is not None:
        prompt["text"] = text
    cube_zo = None
    if box_c is not None:
        zb = [0] * 6
        for a in range(3):
            r = resized_interval(box_c[0][a], box_c[1][a], n[a], spatial[a], "nearest-exact")
            if r is None:
                r = (map_point(box_c[0][a], n[a], spatial[a]), map_point(box_c[1][a], n[a], spatial[a]))
            zb[a], zb[a + 3] = r
        prompt["box"] = zb
        cube_zo = np.zeros(spatial, np.float32)  # build_binary_cube in zoom-out space
        cube_zo[zb[0]:zb[3] + 1, zb[1]:zb[4] + 1, zb[2]:zb[5] + 1] = 1
    if pts:
        coords = np.array([[map_point(c[a], n[a], spatial[a]) for a in range(3)] for c, _ in pts])
        prompt["points"] = (coords, np.array([l for _, l in pts]))
    small = interp(crop, spatial, "nearest-exact")
    logits_zo = window_fn(small, prompt)
    logits = interp(logits_zo, n, "nearest").astype(np.float32)
    if log is not None:
        log["zoom_out_prompt"] = prompt
    if not zoom_in:
        return logits, None
    roi = logits2roi_coor(spatial, logits)
    if roi is None:
        return logits, None
    mn, mx = roi
    sl = tuple(slice(mn[a], mx[a] + 1) for a in range(3))
    image_roi = crop[sl]
    global_preds = (logits[sl] > 0).astype(np.float32)
    cube = interp(cube_zo, n, "nearest")[sl] if cube_zo is not None else None

    # MONAI sliding_window_inference with SegVol's prompt handling
    roi_shape = image_roi.shape
    image_size = [max(roi_shape[a], spatial[a]) for a in range(3)]
    pad_before = [(max(spatial[a] - roi_shape[a], 0)) // 2 for a in range(3)]
    pad = [(pad_before[a], max(spatial[a] - roi_shape[a], 0) - pad_before[a]) for a in range(3)]
    image_p = np.pad(image_roi, pad)
    preds_p = np.pad(global_preds, pad)
    cube_p = np.pad(cube, pad) if cube is not None else None
    interval = scan_interval(image_size, spatial, overlap)
    starts = dense_patch_starts(image_size, spatial, interval)
    out = torch.zeros(image_size, dtype=torch.float32)
    cnt = torch.zeros(image_size, dtype=torch.float32)
    for s in starts:
        ws = tuple(slice(s[a], s[a] + spatial[a]) for a in range(3))
        wp = {}
        if text is not None:
            wp["text"] = text
        if box_c is not None or has_points:
            if box_c is not None and len(starts) == 1:
                wp["box"] = generate_box(cube_p[ws]) if cube_p is not None else [-1] * 6
            else:
                wp["box"] = generate_box(preds_p[ws])
        if has_points:
            inside = []
            for c, l in pts:
                w = [c[a] - mn[a] + pad_before[a] - s[a] for a in range(3)]
                in_roi = all(mn[a] <= c[a] < mn[a] + roi_shape[a] for a in range(3))
                if l == 1 and in_roi and all(0 <= w[a] < spatial[a] for a in range(3)) and len(inside) < 5:
                    inside.append(w)
            labels = [1] * len(inside)
            total = 5 if inside else 1
            while len(inside) < total:
                inside.append([-1, -1, -1])
                labels.append(-1)
            wp["points"] = (np.array(inside), np.array(labels))
        y = window_fn(np.ascontiguousarray(image_p[ws]), wp)
        out[ws] += torch.from_numpy(np.asarray(y, np.float32))
        cnt[ws] += 1
    out = (out / cnt).numpy()
    out = out[tuple(slice(pad_before[a], pad_before[a] + roi_shape[a]) for a in range(3))]
    logits[sl] = out
    plan = dict(roi_start=mn, roi_end=[min(mx[a] + 1, n[a]) for a in range(3)], pad_before=pad_before,
                pad_after=[pad[a][1] for a in range(3)], starts=[list(s) for s in starts])
    return logits, plan


def segment_volume(window_fn, vol_ijk, targets, spatial, overlap=0.5, zoom_in=True):
    """Whole pipeline; returns per-target logits in input geometry (i, j, k) plus the plan."""
    crop, crop_box, full, stats = preprocess(vol_ijk)
    results = []
    for t in targets:
        lc, plan = segment_target(window_fn, crop, spatial, t, crop_box, overlap, zoom_in)
        full_logits = np.zeros(full, np.float32)
        s, e = crop_box
        full_logits[s[0]:e[0], s[1]:e[1], s[2]:e[2]] = lc
        results.append(dict(name=t["name"], logits=np.swapaxes(full_logits, 0, 2), plan=plan))
    return dict(crop_box=crop_box, stats=stats, crop=crop, targets=results)
