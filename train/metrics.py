"""Evaluation metrics, each next to a trivial baseline (which a task gets: ``train/kinds.py``).

Images are compared in [0, 1] (model values in [-1, 1] are mapped and clipped): PSNR in dB
(data range 1, whole image, capped at 100 dB) and SSIM (Wang et al. 2004: 11x11 Gaussian
window, sigma 1.5, K1 0.01, K2 0.03, mean over channels and valid window positions). Flow:
end-point error in pixels. Depth: AbsRel = mean |d - d*| / d* and delta1 = fraction of pixels
with max(d/d*, d*/d) < 1.25, over valid pixels (d* > 0).

Baselines: the input itself for image tasks (for super-resolution the input is the bicubic
upsampling of the LR, so ``baseline_psnr`` is the bicubic PSNR), zero motion for flow, and for
depth each image's median valid depth as a constant prediction.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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


def segment_metrics(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Pixel accuracy and mean IoU over classes present in prediction or target."""
    pred = logits.argmax(dim=1)
    accuracy = float((pred == target).float().mean())
    ious = []
    for c in torch.unique(torch.cat([pred.unique(), target.unique()])):
        inter = ((pred == c) & (target == c)).sum()
        union = ((pred == c) | (target == c)).sum()
        ious.append(float(inter) / float(union))
    return {"accuracy": accuracy, "miou": sum(ious) / len(ious)}


def _mean(values: torch.Tensor) -> float:
    values = values[torch.isfinite(values)]
    return float(values.mean()) if values.numel() else math.nan


def summarize(per_sample: dict[str, list[float]]) -> dict[str, float]:
    """Mean of each metric over finite values."""
    return {k: _mean(torch.tensor(v, dtype=torch.float64)) for k, v in per_sample.items()}
