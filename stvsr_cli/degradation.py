"""The evaluation protocol's degradation (DESIGN §4): how LR frames are made from HR truth, for
``stvsr bench`` and for training alike (names in ``stvsr_cli.names.DEGRADATIONS``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def degrade(hr: torch.Tensor, antialias: bool = True) -> torch.Tensor:
    """LR frames per the evaluation protocol: bicubic ×0.5 (antialiased by default), rounded
    to 8 bits. ``hr`` float ``[..., 3, H, W]`` in [0, 1] (H, W even) -> ``[..., 3, H/2, W/2]``."""
    shape = hr.shape
    x = hr.reshape(-1, *shape[-3:])
    lr = F.interpolate(x, scale_factor=0.5, mode="bicubic", align_corners=False, antialias=antialias)
    lr = (lr.clamp(0, 1) * 255).round() / 255
    return lr.reshape(*shape[:-2], shape[-2] // 2, shape[-1] // 2)
