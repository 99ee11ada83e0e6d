"""Refinement network R: ``h_refined = h_fused + R(h_fused)`` (paper eq. 10).

Three residual blocks. For speed they run on a lossless space-to-depth view of the HR frame
(``pixel_unshuffle(u)``: [N, 3, H, W] -> [N, 3u², H/u, W/u]) and the residual is shuffled back,
so no information is resampled away. Input sizes must be multiples of ``unshuffle``.
With ``time_input`` the frame's time ``t`` is one more input plane (as in ``fusion``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResBlock, conv3x3, time_plane, zero_init


@dataclass(frozen=True)
class RefineConfig:
    channels: int = 48
    blocks: int = 3
    unshuffle: int = 4
    time_input: bool = False  # t as an input plane (frames at any t, issue 26)


class RefineNet(nn.Module):
    def __init__(self, config: RefineConfig = RefineConfig()):
        super().__init__()
        self.config = config
        c, u = config.channels, config.unshuffle
        self.size_multiple = u
        self.head = conv3x3(3 * u * u + (1 if config.time_input else 0), c)
        self.body = nn.Sequential(*[ResBlock(c) for _ in range(config.blocks)])
        # starts as the identity: h_refined = h_fused
        self.tail = zero_init(conv3x3(c, 3 * u * u))

    def forward(self, h: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor:
        """``t``: the frame's time, a float or one per item ``[N]`` (used with ``time_input``)."""
        u = self.config.unshuffle
        x = F.pixel_unshuffle(h, u)  # [N, 3u², H/u, W/u]
        if self.config.time_input:
            x = torch.cat((x, time_plane(t, x)), dim=1)  # [N, 3u² + 1, H/u, W/u]
        residual = F.pixel_shuffle(self.tail(self.body(self.head(x))), u)
        return h + residual
