"""Spatial upsampling networks MS: one LR frame ``[N, 3, h, w]`` -> HR frame ``[N, 3, 2h, 2w]``
(the protocol: ``stvsr_cli.nets.protocols.SpatialNet``).

Every spatial net is a residual over bicubic ×2, so an untrained (zero-initialised) learned
net is exactly bicubic. Contract: see ``stvsr_cli.nets.blocks``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResBlock, conv3x3, upsample_bicubic, zero_init


@dataclass(frozen=True)
class BicubicConfig:
    """No parameters: bicubic ×2, align_corners=False."""


class BicubicSpatial(nn.Module):
    """Non-learned MS: bicubic ×2 (the classical baseline)."""

    scale = 2
    size_multiple = 1

    def __init__(self, config: BicubicConfig = BicubicConfig()):
        super().__init__()
        self.config = config

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return upsample_bicubic(lr, self.scale)


@dataclass(frozen=True)
class ResidualSRConfig:
    """A compact EDSR-style net, output via pixel shuffle.

    channels: feature width; blocks: residual blocks; res_scale: residual-branch scale;
    unshuffle: the body works on a lossless space-to-depth view of the LR frame, 1/unshuffle
    of its size (``unshuffle=2``: 4× fewer pixels, so 2× the channels cost the same and see
    twice as far, the layout Real-ESRGAN's ×2 model uses). Inputs must be multiples of it.
    """

    channels: int = 64
    blocks: int = 5
    res_scale: float = 1.0
    unshuffle: int = 2


class ResidualSR(nn.Module):
    """Learned MS: ``bicubic(L) + PixelShuffle(body(PixelUnshuffle(L)))``.

    All convolutions run at (or below) LR resolution, the last layer predicts the sub-pixel
    residuals. The last conv starts at zero, so an untrained net equals bicubic exactly.
    """

    scale = 2

    def __init__(self, config: ResidualSRConfig = ResidualSRConfig()):
        super().__init__()
        self.config = config
        c, u = config.channels, config.unshuffle
        self.size_multiple = u
        self.head = conv3x3(3 * u * u, c)
        self.body = nn.Sequential(*[ResBlock(c, config.res_scale) for _ in range(config.blocks)])
        self.body_tail = conv3x3(c, c)
        self.tail = zero_init(conv3x3(c, 3 * (self.scale * u) ** 2))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        u = self.config.unshuffle
        x = F.pixel_unshuffle(lr, u) if u > 1 else lr  # [N, 3u², h/u, w/u]
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))
        residual = F.pixel_shuffle(self.tail(feat), self.scale * u)  # [N, 3, 2h, 2w]
        return upsample_bicubic(lr, self.scale) + residual
