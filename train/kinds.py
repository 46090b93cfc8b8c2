"""What the trainer does per kind of task, in one registry: loss, metrics (next to a trivial
baseline), headline metric, output head, and how a prediction is shown.

A card names its kind in ``train_kind`` (pairgen writes it from the task); cards without one
are matched by their task name, then by their target field's view (flow -> flow, depth ->
depth, heatmap -> keypoints, ids -> segment), and anything else with PNG targets is ``image``.
A new kind is one ``register_kind(Kind(...))`` here; the training loop asks nothing else.

Value conventions follow ``train/data.py``: images in [-1, 1], flow in pixels (dx, dy), depth
planar with 0 = invalid (the depth head predicts log-depth), segmentation targets as int64 ids.
Inpainting inputs are the masked image then the mask (255 = hole -> +1): L1 over the image, with
its parts inside the hole and outside it reported beside PSNR/SSIM.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from train import losses, metrics


@dataclass(frozen=True)
class Kind:
    """name: the card's ``train_kind``. loss(output, target, x, **loss_kwargs) -> (loss, parts)
    with ``loss_kwargs`` vgg, perceptual_weight, style_weight. metrics(output, target, baseline)
    -> per-sample lists by name (``baseline``: the leading input channels when
    ``input_baseline``, else None). head(baseline_channels, out_channels) -> the output head
    for ``--output auto``. prediction((C, H, W) numpy model output) -> the target field's stored
    convention, to show it through the target's view. labels: targets are class ids (255 =
    ignore)."""

    name: str
    loss: Callable
    metrics: Callable
    headline: str
    head: Callable[[int | None, int], str]
    prediction: Callable[[np.ndarray], np.ndarray]
    input_baseline: bool = False
    labels: bool = False
    supports_gan: bool = True
    needs_vgg: bool = False
    metrics_need_input: bool = False  # metrics(output, target, baseline, x): e.g. inpaint's mask channel
    without_vgg: str = ""  # what this kind cannot do without --perceptual-weights (printed, recorded)


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


# What a target's view says about the kind, for cards without ``train_kind``.
VIEW_KINDS = {"flow": "flow", "depth": "depth", "heatmap": "keypoints", "ids": "segment"}


def kind_of(card_raw: dict, target_view: str | None) -> Kind:
    """The kind of a card (its ``raw`` dict) whose first target has view ``target_view``."""
    name = card_raw.get("train_kind") or (card_raw.get("task") if card_raw.get("task") in KINDS else None)
    name = name or VIEW_KINDS.get(target_view, "image")
    if name not in KINDS:
        raise KeyError(f"train_kind {name!r} is not known to this trainer (known: {', '.join(KINDS)})")
    return KINDS[name]


# ---------------------------------------------------------------------------------------------
# predictions in their target's stored convention (for the sample grids)


def _image_prediction(output: np.ndarray) -> np.ndarray:
    """[-1, 1] (C, H, W) -> uint8 (H, W, C), or (H, W) for one channel."""
    image = (np.clip((output.transpose(1, 2, 0) + 1.0) * 127.5, 0, 255) + 0.5).astype(np.uint8)
    return image[..., 0] if image.shape[2] == 1 else image


def _residual_or_tanh(baseline_channels: int | None, out_channels: int) -> str:
    return "residual" if baseline_channels == out_channels else "tanh"


# ---------------------------------------------------------------------------------------------
# losses and metrics per kind


def _image_loss(output, target, x=None, *, vgg=None, perceptual_weight=1.0, **_):
    loss = F.l1_loss(output, target)
    parts = {"l1": float(loss.detach())}
    if vgg is not None and output.shape[1] == 3:
        p = losses.perceptual_loss(vgg, output, target)
        parts["perceptual"] = float(p.detach())
        loss = loss + perceptual_weight * p
    return loss, parts


def _image_metrics(output, target, baseline):
    unit = metrics.to_unit
    out = {"psnr": metrics.psnr(unit(output), unit(target)), "ssim": metrics.ssim(unit(output), unit(target))}
    if baseline is not None:
        out["baseline_psnr"] = metrics.psnr(unit(baseline), unit(target))
        out["baseline_ssim"] = metrics.ssim(unit(baseline), unit(target))
    return out


def _hole_weights(target, x):
    """Inpainting: the hole (1) and kept (0) pixels, from the mask channel that follows the
    target's channels in the input (card ``input_order``: masked image, then mask in [-1, 1])."""
    return (x[:, target.shape[1]: target.shape[1] + 1] > 0).to(target.dtype)


def _masked_l1(output, target, weight):
    """Per-sample mean absolute error over the pixels where ``weight`` is 1 (0 where there are none)."""
    error = ((output - target).abs() * weight).flatten(1).sum(1)
    return error / (weight.flatten(1).sum(1) * target.shape[1]).clamp(min=1)


def _inpaint_loss(output, target, x=None, *, vgg=None, perceptual_weight=1.0, **_):
    loss, parts = _image_loss(output, target, x, vgg=vgg, perceptual_weight=perceptual_weight)
    hole = _hole_weights(target, x)
    parts["l1_hole"] = float(_masked_l1(output, target, hole).mean().detach())
    parts["l1_kept"] = float(_masked_l1(output, target, 1 - hole).mean().detach())
    return loss, parts


def _inpaint_metrics(output, target, baseline, x=None):
    out = _image_metrics(output, target, baseline)
    if x is not None:
        hole = _hole_weights(target, x)
        out["l1_hole"], out["l1_kept"] = _masked_l1(output, target, hole), _masked_l1(output, target, 1 - hole)
        if baseline is not None:
            out["baseline_l1_hole"] = _masked_l1(baseline, target, hole)
            out["baseline_l1_kept"] = _masked_l1(baseline, target, 1 - hole)
    return out


# What the style kind cannot do without VGG weights (printed by fit.py, kept in config.json).
STYLE_WITHOUT_VGG = (
    "no --perceptual-weights: the style loss of Johnson et al. (Gram matrices of VGG16 relu1_2..relu4_3, content "
    "at VGG features) cannot be computed, and VGG16 weights cannot be downloaded here. Training matches colour "
    "statistics only (Gram matrices of RGB at 1, 1/2 and 1/4 scale) with an L1 content loss: it transfers the "
    "palette, not brush strokes or texture. Give a local torchvision vgg16 .pth (e.g. vgg16-397923af.pth) for "
    "real style transfer.")
RGB_STYLE_WEIGHT = 100.0  # colour-only Gram loss; --lambda-style (1e5) is scaled for VGG features


def _style_loss(output, target, x=None, *, vgg=None, perceptual_weight=1.0, style_weight=1e5, **_):
    """Unpaired: the target is a style image, not the answer. Content loss to the input (``x``)
    + Gram-matrix style loss to the target: on VGG16 features with ``vgg``, else on RGB."""
    if x is None:
        raise ValueError("the style loss needs the content image")
    content = x[:, :3]
    if vgg is None:
        c = F.l1_loss(output, content)
        s = losses.rgb_style_loss(output, target).mean()
        return c + RGB_STYLE_WEIGHT * s, {"content_l1": float(c.detach()), "colour_gram": float(s.detach())}
    c = losses.perceptual_loss(vgg, output, content)
    s = losses.style_loss(vgg, output, target)
    return perceptual_weight * c + style_weight * s, {"content": float(c.detach()), "style": float(s.detach())}


def _style_metrics(output, target, baseline):
    """Colour-statistics distance to the style image (RGB Gram, comparable with or without VGG)
    and L1 to the content; baseline: the content image unchanged."""
    return {"colour_gram": losses.rgb_style_loss(output, target), "content_l1": (output - baseline).abs().flatten(1).mean(1),
            "baseline_colour_gram": losses.rgb_style_loss(baseline, target),
            "baseline_content_l1": torch.zeros(output.shape[0])}


def _flow_loss(output, target, x=None, **_):
    loss = losses.end_point_error(output, target)
    return loss, {"epe": float(loss.detach())}


def _flow_metrics(output, target, baseline):
    return {"epe": metrics.epe(output, target), "baseline_epe": metrics.epe(torch.zeros_like(target), target)}


def _depth_loss(output, target, x=None, **_):
    return losses.depth_loss(output[:, 0], target[:, 0])


def _depth_metrics(output, target, baseline):
    depth = torch.exp(output[:, 0].clamp(-12.0, 12.0))
    absrel, delta1 = metrics.depth_metrics(depth, target[:, 0])
    base_absrel, base_delta1 = metrics.depth_metrics(metrics.median_depth_baseline(target[:, 0]), target[:, 0])
    return {"absrel": absrel, "delta1": delta1, "baseline_absrel": base_absrel, "baseline_delta1": base_delta1}


def _heatmap_loss(output, target, x=None, **_):
    loss = F.mse_loss(output, target)
    return loss, {"mse": float(loss.detach())}


def _heatmap_metrics(output, target, baseline):
    return {**metrics.keypoint_errors(output, target), "mse": ((output - target) ** 2).flatten(1).mean(1),
            "baseline_mse": (target**2).flatten(1).mean(1)}


def _segment_loss(output, target, x=None, **_):
    loss = F.cross_entropy(output, target, ignore_index=metrics.IGNORE_INDEX)
    return loss, {"ce": float(loss.detach())}


def _segment_metrics(output, target, baseline):
    return {k: torch.tensor([v]) for k, v in metrics.segment_metrics(output, target).items()}


def _linear(baseline_channels, out_channels):
    return "linear"


register_kind(Kind("image", _image_loss, _image_metrics, "psnr", _residual_or_tanh, _image_prediction,
                   input_baseline=True))
register_kind(Kind("inpaint", _inpaint_loss, _inpaint_metrics, "psnr", _residual_or_tanh, _image_prediction,
                   input_baseline=True, metrics_need_input=True))
register_kind(Kind("style", _style_loss, _style_metrics, "colour_gram", _residual_or_tanh, _image_prediction,
                   input_baseline=True, without_vgg=STYLE_WITHOUT_VGG))
register_kind(Kind("flow", _flow_loss, _flow_metrics, "epe", _linear, lambda o: o.transpose(1, 2, 0)))
register_kind(Kind("depth", _depth_loss, _depth_metrics, "absrel", _linear, lambda o: np.exp(np.clip(o[0], -12, 12))))
register_kind(Kind("keypoints", _heatmap_loss, _heatmap_metrics, "peak_error", _linear, lambda o: o))
register_kind(Kind("segment", _segment_loss, _segment_metrics, "miou", _linear, lambda o: o.argmax(0),
                   labels=True, supports_gan=False))


def sample_metrics(kind: Kind, output: torch.Tensor, target: torch.Tensor,
                   baseline: torch.Tensor | None, x: torch.Tensor | None = None) -> dict[str, list[float]]:
    """Per-sample metric lists for one batch (merged over batches by ``metrics.summarize``)."""
    values = kind.metrics(output, target, baseline, x) if kind.metrics_need_input else kind.metrics(output, target, baseline)
    return {k: [float(v) for v in vals] for k, vals in values.items()}
