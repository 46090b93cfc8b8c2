"""The pix2pix networks: a U-Net generator and a PatchGAN discriminator (Isola et al. 2017).

U-Net with ``depth`` 8 and ``width`` 64 is pix2pix's ``unet_256``: encoder
C64-C128-C256-C512-C512-C512-C512-C512 (4x4 stride-2 convs, LeakyReLU 0.2, no norm on the first
and the innermost), decoder of ReLU + 4x4 stride-2 transposed convs with skip concatenation,
dropout 0.5 in the three decoder blocks next to the innermost. Smaller ``depth``/``width`` fit a
CPU; a depth-d U-Net needs sides that 2**d divides (``Generator`` pads replicately to that and
crops the output back).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"unknown norm '{kind}' (batch or instance)")


def widths(depth: int, width: int) -> list[int]:
    """Encoder channels per level: width, 2*width, 4*width, then 8*width."""
    return [width * min(2**i, 8) for i in range(depth)]


class UNet(nn.Module):
    """pix2pix U-Net; returns the pre-activation output (the caller applies tanh or not)."""

    def __init__(self, in_channels: int, out_channels: int, depth: int = 8, width: int = 64,
                 norm: str = "batch", dropout: bool = True):
        super().__init__()
        if depth < 2:
            raise ValueError("U-Net depth must be at least 2")
        bias = norm == "instance"  # batch norm has its own shift
        w = widths(depth, width)
        self.down = nn.ModuleList()
        for i in range(depth):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(in_channels if i == 0 else w[i - 1], w[i], 4, 2, 1, bias=bias))
            if 0 < i < depth - 1:
                layers.append(_norm(norm, w[i]))
            self.down.append(nn.Sequential(*layers))
        dropout_levels = set(range(depth - 2, depth - 2 - min(3, max(0, depth - 5)), -1)) if dropout else set()
        self.up = nn.ModuleList()
        for i in range(depth):
            in_ch = w[i] if i == depth - 1 else 2 * w[i]
            if i == 0:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(in_ch, out_channels, 4, 2, 1)]
            else:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(in_ch, w[i - 1], 4, 2, 1, bias=bias), _norm(norm, w[i - 1])]
                if i in dropout_levels:
                    layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))
        self.depth = depth

    @property
    def last_conv(self) -> nn.ConvTranspose2d:
        return self.up[0][1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(self.depth - 2, -1, -1):
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return x


class Generator(nn.Module):
    """U-Net plus the output convention of the task.

    ``output``: ``tanh`` (images in [-1, 1], pix2pix), ``linear`` (flow in pixels, log-depth,
    class logits, heatmaps) or ``residual``: the first ``out_channels`` input channels plus the
    U-Net's output, whose last layer starts at zero, so training starts from the trivial
    baseline (the bicubic upsampling for super-resolution) and learns the correction."""

    def __init__(self, in_channels: int, out_channels: int, *, depth: int = 8, width: int = 64,
                 norm: str = "batch", dropout: bool = True, output: str = "tanh"):
        super().__init__()
        if output not in ("tanh", "linear", "residual"):
            raise ValueError(f"unknown output '{output}'")
        if output == "residual" and in_channels < out_channels:
            raise ValueError("a residual output needs at least as many input channels as output channels")
        self.unet = UNet(in_channels, out_channels, depth, width, norm, dropout)
        self.out_channels = out_channels
        self.output = output
        self.multiple = 2**depth
        init_weights(self)
        if output == "residual":
            nn.init.zeros_(self.unet.last_conv.weight)
            nn.init.zeros_(self.unet.last_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        y = self.unet(padded)[..., :height, :width]
        if self.output == "tanh":
            return torch.tanh(y)
        if self.output == "residual":
            return x[:, : self.out_channels] + y
        return y


class PatchGAN(nn.Module):
    """pix2pix's conditional 70x70 PatchGAN (``layers`` 3): C64 (no norm)-C128-C256-C512 (stride
    1)-1, LeakyReLU 0.2; one real/fake logit per overlapping patch of cat(input, output)."""

    def __init__(self, in_channels: int, width: int = 64, layers: int = 3, norm: str = "batch"):
        super().__init__()
        bias = norm == "instance"
        seq: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for n in range(1, layers + 1):
            out = width * min(2**n, 8)
            stride = 2 if n < layers else 1
            seq += [nn.Conv2d(ch, out, 4, stride, 1, bias=bias), _norm(norm, out), nn.LeakyReLU(0.2, True)]
            ch = out
        seq.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.model = nn.Sequential(*seq)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix init: conv weights N(0, 0.02), batch-norm scale N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
