"""Fusion network F: a U-Net that predicts blending masks for the two streams' frames.

``F(h_st, h_ts) -> masks [N, 2, H, W]`` in ``[0, 1]``: channel 0 weighs the S->T frame,
channel 1 the T->S frame. Two independent masks by default (paper eq. 9); with
``masks=1`` one mask ``m`` is predicted and the pair is ``(m, 1 - m)``.

The two independent masks are parametrised as ``m_st = sigmoid(c + a)``, ``m_ts = sigmoid(c - a)``
from two predicted maps: ``a`` says which stream to trust, ``c`` how much of both to take. Any
pair of masks in (0, 1) has exactly one ``(a, c)``, so this is still the paper's two free masks,
but the two questions get separate output channels. Predicting the two logits directly mixes them
in every output weight: the gradient towards "which stream" is proportional to the streams'
small difference while the one towards "how much" is proportional to their full intensity and
changes sign from batch to batch, and Adam's per-weight normalisation then lets that noise
drown the choice (measured: the masks stayed at 0.5 for 1000 steps).

For speed the first level is a lossless space-to-depth (``pixel_unshuffle(2)``) instead of a
full-resolution conv pair, and the masks come back at full resolution through pixel shuffle;
the U-Net then has ``len(channels) - 1`` more down/up levels (5 levels with the default).
Input sizes must be multiples of ``size_multiple``.

With ``time_input`` the net is also told the time ``t`` in (0, 1) of the frame it blends, as a
constant input plane (the streams' errors grow with the distance from the nearer keyframe);
its input weights start at zero in a model grown from one without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import conv3x3, time_plane, zero_init


@dataclass(frozen=True)
class FusionConfig:
    """masks: 2 (independent) or 1 (complementary); channels: width per level, finest first
    (``levels = len(channels) - 1`` down/up steps)."""

    masks: int = 2
    channels: tuple[int, ...] = (24, 32, 48, 64, 96)
    time_input: bool = False  # t as an input plane (frames at any t, issue 26)


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        conv3x3(in_channels, out_channels),
        nn.LeakyReLU(0.1, inplace=True),
        conv3x3(out_channels, out_channels),
        nn.LeakyReLU(0.1, inplace=True),
    )


class FusionUNet(nn.Module):
    def __init__(self, config: FusionConfig = FusionConfig()):
        super().__init__()
        if config.masks not in (1, 2):
            raise ValueError(f"FusionConfig.masks must be 1 or 2, got {config.masks}")
        self.config = config
        ch = config.channels
        self.levels = len(ch) - 1
        self.size_multiple = 2 ** (self.levels + 1)
        # input: both streams' frames and their absolute difference (where they disagree),
        # and t where told, space-to-depth: [N, (9 or 10) * 4, H/2, W/2]
        self.enc = nn.ModuleList([_double_conv(4 * (10 if config.time_input else 9), ch[0])])
        self.enc.extend(
            nn.Sequential(
                conv3x3(ch[i - 1], ch[i], stride=2),
                nn.LeakyReLU(0.1, inplace=True),
                conv3x3(ch[i], ch[i]),
                nn.LeakyReLU(0.1, inplace=True),
            )
            for i in range(1, len(ch))
        )
        self.dec = nn.ModuleList(_double_conv(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(self.levels)))
        # zero-initialised: every mask starts at sigmoid(0) = 0.5, i.e. the average of the streams
        self.out = zero_init(conv3x3(ch[0], config.masks * 4))

    def forward(self, h_st: torch.Tensor, h_ts: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor:
        """``t``: the frames' time, a float or one per item ``[N]`` (used with ``time_input``)."""
        planes = [h_st, h_ts, (h_st - h_ts).abs()]
        if self.config.time_input:
            planes.append(time_plane(t, h_st))
        x = F.pixel_unshuffle(torch.cat(planes, dim=1), 2)  # [N, 36 or 40, H/2, W/2]
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
        x = skips.pop()
        for dec in self.dec:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = dec(torch.cat((x, skip), dim=1))
        # masks in float32: under bf16 autocast a mask near 0.5 would move in steps of 0.002
        logits = F.pixel_shuffle(self.out(x), 2).float()  # [N, masks, H, W]
        if self.config.masks == 1:
            m = torch.sigmoid(logits)
            return torch.cat((m, 1.0 - m), dim=1)  # [N, 2, H, W]
        choice, gain = logits[:, 0:1], logits[:, 1:2]
        return torch.sigmoid(torch.cat((gain + choice, gain - choice), dim=1))  # [N, 2, H, W]
