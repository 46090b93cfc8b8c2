"""Evaluation metrics, each next to a trivial baseline (which a task gets: ``train/kinds.py``).

Images are compared in [0, 1] (model values in [-1, 1] are mapped and clipped): PSNR in dB
(data range 1, whole image, capped at 100 dB) and SSIM (Wang et al. 2004: 11x11 Gaussian
window, sigma 1.5, K1 0.01, K2 0.03, mean over channels and valid window positions). Flow:
end-point error in pixels. Depth: AbsRel = mean |d - d*| / d* and delta1 = fraction of pixels
with max(d/d*, d*/d) < 1.25, over valid pixels (d* > 0).

Keypoints: mean distance between predicted and true heatmap peaks, in heatmap pixels (times
the card's stride: image pixels), and PCK within 1 heatmap pixel. Segmentation: pixel accuracy
and mIoU without the ignore label 255.

Baselines: the input itself for image tasks (for super-resolution the input is the bicubic
upsampling of the LR, so ``baseline_psnr`` is the bicubic PSNR), zero motion for flow, for
depth each image's median valid depth as a constant prediction, every keypoint at the heatmap's
centre, all-background segmentation; style: the content image itself.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE_INDEX = 255  # segmentation targets: pixels that count for nothing (pairgen's segment task)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] model values -> [0, 1], clipped."""
    return ((images + 1.0) * 0.5).clamp(0.0, 1.0)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of [0, 1] images (B, C, H, W)."""
    mse = ((pred - target) ** 2).flatten(1).mean(dim=1)
    return (10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp(max=100.0)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).float()


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of [0, 1] images (B, C, H, W); images smaller than 11 px use a smaller window."""
    channels = pred.shape[1]
    size = min(11, pred.shape[-1], pred.shape[-2])
    window = _gaussian_window(size).to(pred).expand(channels, 1, size, size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(pred), blur(target)
    var_x = blur(pred * pred) - mu_x**2
    var_y = blur(target * target) - mu_y**2
    cov = blur(pred * target) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(dim=1)


def epe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean end-point error (pixels) of (B, 2, H, W) flows, finite targets only."""
    valid = torch.isfinite(target).all(dim=1)
    err = torch.sqrt((torch.nan_to_num(pred - target) ** 2).sum(dim=1))
    return torch.stack([e[v].mean() if v.any() else e.new_tensor(math.nan) for e, v in zip(err, valid)])


def depth_metrics(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (AbsRel, delta1) of (B, H, W) depths; valid where target > 0."""
    absrel, delta1 = [], []
    for p, t in zip(pred, target):
        valid = t > 0
        if not valid.any():
            absrel.append(p.new_tensor(math.nan))
            delta1.append(p.new_tensor(math.nan))
            continue
        p, t = p[valid].clamp_min(1e-6), t[valid]
        absrel.append(((p - t).abs() / t).mean())
        delta1.append((torch.maximum(p / t, t / p) < 1.25).float().mean())
    return torch.stack(absrel), torch.stack(delta1)


def median_depth_baseline(target: torch.Tensor) -> torch.Tensor:
    """Each image's median valid depth, as a constant map (B, H, W)."""
    out = torch.ones_like(target)
    for i, t in enumerate(target):
        valid = t > 0
        if valid.any():
            out[i] = t[valid].median()
    return out


def segment_metrics(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> dict[str, float]:
    """Pixel accuracy and mean IoU over the classes present in prediction or target, on pixels
    whose target is not ``ignore_index``; the same for the trivial all-background (class 0)
    prediction as ``baseline_*``."""
    valid = target != ignore_index
    out = {}
    for prefix, pred in (("", logits.argmax(dim=1)), ("baseline_", torch.zeros_like(target))):
        p, t = pred[valid], target[valid]
        if t.numel() == 0:
            out[prefix + "accuracy"], out[prefix + "miou"] = math.nan, math.nan
            continue
        ious = []
        for c in torch.unique(torch.cat([p.unique(), t.unique()])):
            inter = ((p == c) & (t == c)).sum()
            union = ((p == c) | (t == c)).sum()
            ious.append(float(inter) / float(union))
        out[prefix + "accuracy"] = float((p == t).float().mean())
        out[prefix + "miou"] = sum(ious) / len(ious)
    return out


def heatmap_peaks(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) -> (B, K, 2) peak (x, y) in heatmap continuous coordinates (pixel centres at
    i + 0.5): the maximum, refined by a parabola through it and its two neighbours per axis
    (shift clamped to half a pixel)."""
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, h * w)
    index = flat.argmax(dim=2)
    ys, xs = index // w, index % w
    grid = heatmaps.reshape(b * k, h, w)
    rows = torch.arange(b * k, device=heatmaps.device)

    def refine(pos, size, get):
        left, right = (pos - 1).clamp(0, size - 1), (pos + 1).clamp(0, size - 1)
        lo, mid, hi = get(left), get(pos), get(right)
        curvature = lo - 2 * mid + hi
        shift = torch.where(curvature < 0, 0.5 * (lo - hi) / curvature.clamp(max=-1e-12), torch.zeros_like(mid))
        inside = (pos > 0) & (pos < size - 1)
        return pos.float() + 0.5 + torch.where(inside, shift.clamp(-0.5, 0.5), torch.zeros_like(shift))

    x = refine(xs.flatten(), w, lambda c: grid[rows, ys.flatten(), c])
    y = refine(ys.flatten(), h, lambda r: grid[rows, r, xs.flatten()])
    return torch.stack([x, y], dim=1).reshape(b, k, 2)


def keypoint_errors(output: torch.Tensor, target: torch.Tensor, labelled_level: float = 0.5) -> dict[str, torch.Tensor]:
    """Per-sample mean distance (heatmap pixels) between the predicted and the true peak, over the
    labelled keypoints (target peak > ``labelled_level``; NaN with none), PCK (fraction within 1
    heatmap pixel), and the same for the trivial prediction of every keypoint at the centre."""
    labelled = target.flatten(2).amax(dim=2) > labelled_level
    truth = heatmap_peaks(target)
    guess = heatmap_peaks(output)
    h, w = target.shape[-2:]
    centre = truth.new_tensor([w / 2.0, h / 2.0]).expand_as(truth)
    out = {}
    for prefix, pred in (("", guess), ("baseline_", centre)):
        dist = torch.linalg.vector_norm(pred - truth, dim=2)
        count = labelled.sum(dim=1)
        mean = torch.where(count > 0, (dist * labelled).sum(dim=1) / count.clamp(min=1), torch.full_like(dist[:, 0], math.nan))
        pck = torch.where(count > 0, ((dist < 1.0) & labelled).sum(dim=1) / count.clamp(min=1), torch.full_like(dist[:, 0], math.nan))
        out[prefix + "peak_error"], out[prefix + "pck"] = mean, pck
    return out


def _mean(values: torch.Tensor) -> float:
    values = values[torch.isfinite(values)]
    return float(values.mean()) if values.numel() else math.nan


def summarize(per_sample: dict[str, list[float]]) -> dict[str, float]:
    """Mean of each metric over finite values."""
    return {k: _mean(torch.tensor(v, dtype=torch.float64)) for k, v in per_sample.items()}
