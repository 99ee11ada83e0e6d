"""Temporal upsampling networks MT: two frames of any resolution -> the frame between them
(the protocol: ``stvsr_cli.nets.protocols.TemporalNet``).

Every temporal net splits its work in two so that the dual stream can share it:

* ``estimate(a, b) -> motion``: whatever the net needs about the motion between ``a`` and ``b``
  (``None`` for non-learned nets). For ``FlowTemporal`` it is ``[N, 5, h, w]``: flow t->a
  (channels 0-1), flow t->b (2-3), in pixels of ``a``, and a blend logit (4).
* ``synthesize(a, b, motion) -> frame``: the intermediate frame. ``motion`` may come from a
  pair at another resolution (e.g. the LR pair when synthesising from the upscaled pair):
  it is resized and its vectors rescaled. This is how the S->T stream reuses the flow the
  T->S stream estimated at LR, at a quarter of the cost.

Frames follow the contract of ``stvsr_cli.nets.blocks``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import conv3x3, flow_warp, resize_flow, zero_init
from .protocols import check_midpoint_only


@dataclass(frozen=True)
class BlendConfig:
    """No parameters: the average of the two frames (frame blending)."""


class BlendTemporal(nn.Module):
    """Non-learned MT: ``(1 - t) a + t b`` (frame blending)."""

    size_multiple = 1
    takes_timestep = True

    def __init__(self, config: BlendConfig = BlendConfig()):
        super().__init__()
        self.config = config

    def estimate(self, a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor = 0.5) -> None:
        return None

    def synthesize(
        self, a: torch.Tensor, b: torch.Tensor, motion: None = None, t: float | torch.Tensor = 0.5
    ) -> torch.Tensor:
        if not torch.is_tensor(t) and t == 0.5:
            return 0.5 * (a + b)
        t = torch.as_tensor(t, dtype=a.dtype, device=a.device).reshape(-1, 1, 1, 1)
        return (1 - t) * a + t * b

    def forward(self, a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor:
        return self.synthesize(a, b, None, t)


@dataclass(frozen=True)
class FlowConfig:
    """Coarse-to-fine bidirectional flow (IFNet-style), backward warping and a soft blend mask.

    channels: feature width of each level's block (coarse to fine);
    scales: how much each level first downsamples its input (coarse to fine); each block then
    works at a further 1/4 internally.
    """

    channels: tuple[int, ...] = (64, 48, 32)
    scales: tuple[int, ...] = (4, 2, 1)


class _FlowBlock(nn.Module):
    """One pyramid level: input features at 1/scale -> (Δflow [4], Δlogit [1]) at full size."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.down = nn.Sequential(
            conv3x3(in_channels, channels // 2, stride=2),
            nn.LeakyReLU(0.1, inplace=True),
            conv3x3(channels // 2, channels, stride=2),
            nn.LeakyReLU(0.1, inplace=True),
        )
        self.body = nn.Sequential(
            *[m for _ in range(4) for m in (conv3x3(channels, channels), nn.LeakyReLU(0.1, inplace=True))]
        )
        # predicts 5 channels at 4× the body resolution through pixel shuffle
        self.up = zero_init(conv3x3(channels, 5 * 16))

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        if scale != 1:
            x = F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False)
        feat = self.down(x)
        feat = feat + self.body(feat)
        out = F.pixel_shuffle(self.up(feat), 4)  # [N, 5, h/scale, w/scale]
        if scale != 1:
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
            out = torch.cat((out[:, :4] * scale, out[:, 4:]), dim=1)
        return out


class FlowTemporal(nn.Module):
    """Learned MT: estimates flows t->a, t->b and a blend mask coarse to fine, then
    ``frame = m * warp(a, f_ta) + (1 - m) * warp(b, f_tb)``.

    The last layer of each level starts at zero, so an untrained net is frame blending exactly.
    Input sizes must be multiples of ``size_multiple``. Trained for the midpoint only: any other
    ``t`` is refused (``takes_timestep`` is false).
    """

    takes_timestep = False

    def __init__(self, config: FlowConfig = FlowConfig()):
        super().__init__()
        if len(config.channels) != len(config.scales):
            raise ValueError("FlowConfig.channels and scales must have the same length")
        self.config = config
        # level 0 sees the two frames; finer levels also see both warped frames, flow and logit
        self.blocks = nn.ModuleList(_FlowBlock(6 if i == 0 else 6 + 6 + 5, c) for i, c in enumerate(config.channels))
        self.size_multiple = 4 * max(config.scales)

    def estimate(self, a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor:
        check_midpoint_only(self, t)
        motion = None
        for i, (block, scale) in enumerate(zip(self.blocks, self.config.scales)):
            if i == 0:
                motion = block(torch.cat((a, b), dim=1), scale)
            else:
                wa = flow_warp(a, motion[:, 0:2])
                wb = flow_warp(b, motion[:, 2:4])
                x = torch.cat((a, b, wa, wb, motion), dim=1)  # [N, 17, h, w]
                motion = motion + block(x, scale)
        return motion  # [N, 5, h, w]

    def synthesize(
        self, a: torch.Tensor, b: torch.Tensor, motion: torch.Tensor, t: float | torch.Tensor = 0.5
    ) -> torch.Tensor:
        check_midpoint_only(self, t)
        size = tuple(a.shape[-2:])
        f_ta = resize_flow(motion[:, 0:2], size)
        f_tb = resize_flow(motion[:, 2:4], size)
        logit = motion[:, 4:5]
        if tuple(logit.shape[-2:]) != size:
            logit = F.interpolate(logit, size=size, mode="bilinear", align_corners=False)
        m = torch.sigmoid(logit.float())  # float32 under autocast: see fusion.py
        return m * flow_warp(a, f_ta) + (1.0 - m) * flow_warp(b, f_tb)

    def forward(self, a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor:
        return self.synthesize(a, b, self.estimate(a, b, t), t)
