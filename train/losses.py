"""Training losses, and the frozen VGG16 used by the perceptual and style losses (which loss a
task gets: ``train/kinds.py``).

Value conventions follow ``train/data.py``: images in [-1, 1], flow in pixels (dx, dy), depth
planar with 0 = invalid (the depth head predicts log-depth), segmentation targets as int64 ids.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class WeightsError(Exception):
    """A perceptual-loss weights file that is missing or not a torchvision VGG16 state dict."""


# torchvision's vgg16 ``features`` up to relu4_3: conv channel counts, "M" = 2x2 max-pool.
_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
# indices in ``features`` of relu1_2, relu2_2, relu3_3, relu4_3 (Johnson et al.)
VGG_LAYERS = (3, 8, 15, 22)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=False)]
            channels = v
    return nn.Sequential(*layers)


class VGG16Features(nn.Module):
    """Frozen VGG16 (torchvision layout, layers 0-22); ``forward`` takes images in [-1, 1] and
    returns the relu1_2, relu2_2, relu3_3 and relu4_3 activations (ImageNet-normalised input)."""

    def __init__(self):
        super().__init__()
        self.features = _vgg16_features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG16Features":
        return super().train(False)  # always frozen, whatever the caller's mode

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1.0) * 0.5 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG_LAYERS:
                out.append(x)
        return out


def load_vgg16(path: str | Path) -> VGG16Features:
    """Load a local torchvision-format VGG16 state dict (e.g. ``vgg16-397923af.pth``: keys
    ``features.0.weight`` ...; ``classifier.*`` is ignored). No download ever happens."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: perceptual-loss weights file not found (give a local torchvision vgg16 .pth)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable torch state dict ({str(exc).splitlines()[0]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict (a mapping of names to tensors), found {type(state).__name__}")
    model = VGG16Features()
    wanted = {f"features.{k}": v for k, v in model.features.state_dict().items()}
    missing = [k for k in wanted if k not in state]
    if missing:
        raise WeightsError(
            f"{path}: not a torchvision VGG16 state dict: missing {missing[0]}"
            + (f" and {len(missing) - 1} more keys" if len(missing) > 1 else "")
        )
    for key, tensor in wanted.items():
        got = state[key]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(tensor.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise WeightsError(f"{path}: {key} has shape {shape}, VGG16 needs {tuple(tensor.shape)}")
    model.features.load_state_dict({k[len("features."):]: state[k] for k in wanted})
    return model


def perceptual_loss(vgg: VGG16Features, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance of VGG16 relu features, averaged over the four layers."""
    return sum(F.l1_loss(a, b) for a, b in zip(vgg(pred), vgg(target))) / len(VGG_LAYERS)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) channel correlations, divided by C*H*W."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def style_loss(vgg: VGG16Features, pred: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Gram-matrix style loss (Gatys et al.): MSE between Gram matrices, summed over layers."""
    return sum(F.mse_loss(gram_matrix(a), gram_matrix(b)) for a, b in zip(vgg(pred), vgg(style)))


def rgb_style_loss(pred: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Per-sample colour-statistics distance without a network: MSE between the Gram matrices of
    the RGB values ([0, 1]) at 1, 1/2 and 1/4 scale, summed over scales. (B,) tensor."""
    total = pred.new_zeros(pred.shape[0])
    a, b = (pred + 1.0) * 0.5, (style + 1.0) * 0.5
    for level in range(3):
        if level:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        total = total + ((gram_matrix(a) - gram_matrix(b)) ** 2).flatten(1).mean(1)
    return total


def end_point_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance of (dx, dy) vectors in pixels, over pixels with finite targets."""
    valid = torch.isfinite(target).all(dim=1)
    diff = torch.nan_to_num(pred - target)
    epe = torch.sqrt((diff**2).sum(dim=1) + 1e-12)
    return epe[valid].mean() if valid.any() else epe.sum() * 0.0


def depth_loss(output: torch.Tensor, target: torch.Tensor, si_weight: float = 1.0, variance_focus: float = 0.5) -> tuple[torch.Tensor, dict]:
    """L1 on depth plus the scale-invariant log loss (Eigen et al. 2014, lambda 0.5), both over
    valid pixels (target > 0). ``output`` is log-depth, ``target`` planar depth."""
    valid = target > 0
    if not valid.any():
        zero = output.sum() * 0.0
        return zero, {"l1": 0.0, "silog": 0.0}
    log_pred = output.clamp(-12.0, 12.0)[valid]
    log_gt = torch.log(target[valid])
    l1 = (torch.exp(log_pred) - target[valid]).abs().mean()
    d = log_pred - log_gt
    silog = (d**2).mean() - variance_focus * d.mean() ** 2
    return l1 + si_weight * silog, {"l1": float(l1.detach()), "silog": float(silog.detach())}


class GANLoss(nn.Module):
    """pix2pix's vanilla GAN loss: binary cross-entropy on patch logits."""

    def forward(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)
