"""RIFE (Huang et al., "Real-Time Intermediate Flow Estimation for Video Frame Interpolation",
arXiv 2011.06294), the HDv3 variant whose pretrained weights ``stvsr import-weights`` converts
(``stvsr_cli.import_weights``), as a temporal network MT.

Our own implementation of the published architecture; the tensor layout is what the
pretrained checkpoint needs, so that its tensors load one to one (the name mapping is
``stvsr_cli.import_weights.UPSTREAM_RENAMES``).

How it works, for frames ``a``, ``b`` ``[N, 3, H, W]`` (RGB in [0, 1], no normalisation) and a
timestep ``t`` in (0, 1) (0 is ``a``, 1 is ``b``):

* **Flow pyramid** (``estimate``). Level ``k`` works on its input resized to ``1 / scales[k]``
  (8, 4, 2, 1) and, inside, at a further 1/4 (two stride-2 convolutions), then predicts at
  ``1 / (2 scales[k])`` (a stride-2 transposed convolution) and is resized back. Level 0 sees
  ``(a, b, t)``; the finer ones see ``(warp(a), warp(b), t, logit, flow)`` and add a correction.
  ``t`` enters as a constant image channel. Flows are in pixels of the level's own grid, so
  resizing them rescales their vectors (``resize_flow``).
* **Large motion.** When level 1's correction exceeds ``large_motion_threshold`` pixels in both
  flows somewhere in a pair, that pair's pyramid is run again at twice the scales (16, 8, 4, 2),
  so its coarsest level sees twice as far. Decided per pair, so a batch gives the same frames
  as its pairs one by one.
* **Blend** (``synthesize``). ``frame = m * warp(a, f_ta) + (1 - m) * warp(b, f_tb)`` with
  ``m = sigmoid(logit)``; backward warping is ``blocks.flow_warp`` (bilinear,
  ``align_corners=True``, border padding: the convention the weights were trained with).
* **Refinement** (``config.refine``). A context encoder turns each frame into features at 1/2,
  1/4, 1/8 and 1/16, each warped by the (resized) flow; a U-Net reads the frames, the warped
  frames, the logit, the flows and those features and predicts a residual in (-1, 1) that is
  added to the blend. Unlike the upstream code the sum is not clamped: networks in this
  package never clamp (the pipeline clamps once, when it converts to uint8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import PReLU, flow_warp, resize_flow, time_plane, working_dtype


@dataclass(frozen=True)
class RifeConfig:
    """channels: width of each pyramid level (coarse to fine); the defaults are the pretrained net.
    scales: how much each level downsamples its input first (coarse to fine).
    refine: run the context encoder and refinement U-Net after the blend (a residual on the
    blended frame; 3.25 M of the pretrained net's 8.41 M parameters); off, the net is the flow
    pyramid and the blend.
    context_channels: width of the first context/U-Net stage (then ×2 per stage).
    large_motion_threshold: pixels of level-1 correction that send a pair through the pyramid
    again at twice the scales; ``None`` turns that off.
    """

    channels: tuple[int, ...] = (192, 128, 96, 64)
    scales: tuple[float, ...] = (8, 4, 2, 1)
    refine: bool = True
    context_channels: int = 16
    large_motion_threshold: float | None = 32.0


def _conv_prelu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3×3 convolution then a per-channel PReLU (keys ``0.weight``, ``0.bias``, ``1.weight``)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), PReLU(out_channels))


def _down_pair(in_channels: int, out_channels: int) -> nn.Sequential:
    """Halves the resolution: a stride-2 conv-PReLU then a conv-PReLU."""
    return nn.Sequential(_conv_prelu(in_channels, out_channels, stride=2), _conv_prelu(out_channels, out_channels))


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    """Doubles the resolution: a 4×4 stride-2 transposed conv then a PReLU."""
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1), PReLU(out_channels))


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _resize_motion(motion: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Motion ``[N, 5, h, w]`` (see ``RifeTemporal``) resized to ``size``, its flow vectors
    rescaled to the new pixels: float32 (flows are coordinates) and contiguous (torch's bilinear
    kernel is about 5x slower on a narrow channels-last tensor)."""
    motion = motion.to(dtype=torch.float32, memory_format=torch.contiguous_format)
    h, w = motion.shape[-2:]
    if (h, w) == tuple(size):
        return motion
    sx, sy = size[1] / w, size[0] / h
    scale = torch.tensor([sx, sy, sx, sy, 1.0], dtype=motion.dtype, device=motion.device)
    return F.interpolate(motion, size=size, mode="bilinear", align_corners=False) * scale.view(1, 5, 1, 1)


def _pair(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``cat((a, b), dim=1)`` ``[N, 6, H, W]``, contiguous, so that ``view(2N, 3, H, W)`` is the
    batch ``a0, b0, a1, b1, ...``."""
    ab = torch.empty((a.shape[0], 6, *a.shape[-2:]), dtype=a.dtype, device=a.device)
    ab[:, 0:3] = a
    ab[:, 3:6] = b
    return ab


def _warp_pair(ab: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """``ab`` (``_pair``) with ``a`` warped by flow t->a and ``b`` by flow t->b of ``motion`` at
    the same size: ``[N, 6, H, W]``. One grid sampling of the batch ``2N`` (torch parallelises
    it over the batch, not within a frame)."""
    n, _, h, w = ab.shape
    flows = motion[:, 0:4].contiguous().view(2 * n, 2, h, w)
    return flow_warp(ab.view(2 * n, 3, h, w), flows).reshape(n, 6, h, w)


def _in_weights_dtype(level: nn.Module, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``level(x, size)`` computed in the dtype of the level's weights, whatever autocast says
    (float32 for the ``float32_parts`` the pipeline keeps in float32)."""
    dtype = level.head.weight.dtype
    if dtype == working_dtype(x):
        return level(x, size)
    with torch.autocast(x.device.type, enabled=False):
        return level(x.to(dtype), size)


class _FlowLevel(nn.Module):
    """One pyramid level: its input ``[N, C, h, w]``, already at the level's resolution (``h``
    and ``w`` multiples of 4) -> its correction to the motion, ``[N, 5, H, W]`` at ``size``
    (float32; flows in pixels of ``size``)."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.down = nn.Sequential(_conv_prelu(in_channels, channels // 2, 2), _conv_prelu(channels // 2, channels, 2))
        self.body = nn.Sequential(*[_conv_prelu(channels, channels) for _ in range(8)])
        self.head = nn.ConvTranspose2d(channels, 5, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        feat = self.down(x)  # [N, c, h/4, w/4]
        feat = self.body(feat) + feat
        return _resize_motion(self.head(feat), size)  # predicted at [h/2, w/2]


class _ContextEncoder(nn.Module):
    """A frame ``[N, 3, H, W]`` and its flow ``[N, 2, H, W]`` -> four feature maps at 1/2, 1/4,
    1/8, 1/16 (``c, 2c, 4c, 8c`` channels), each backward-warped by the flow resized to it."""

    def __init__(self, c: int):
        super().__init__()
        self.stages = nn.ModuleList(_down_pair(i, o) for i, o in ((3, c), (c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c)))

    def forward(self, frame: torch.Tensor, flow: torch.Tensor) -> list[torch.Tensor]:
        features, x = [], frame
        for stage in self.stages:
            x = stage(x)
            flow = resize_flow(flow, tuple(x.shape[-2:]))
            features.append(flow_warp(x, flow))
        return features


class _RefineUNet(nn.Module):
    """Four stride-2 stages down, four up with skips; the context features of both frames join
    the encoder at each scale. Output: a residual image ``[N, 3, H, W]`` in (-1, 1)."""

    def __init__(self, c: int):
        super().__init__()
        # 17 inputs: a, b, warped a, warped b (3 each), blend logit (1), both flows (4)
        self.down = nn.ModuleList(
            (_down_pair(17, 2 * c), _down_pair(4 * c, 4 * c), _down_pair(8 * c, 8 * c), _down_pair(16 * c, 16 * c))
        )
        self.up = nn.ModuleList((_up(32 * c, 8 * c), _up(16 * c, 4 * c), _up(8 * c, 2 * c), _up(4 * c, c)))
        self.out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, inputs: torch.Tensor, context_a: list[torch.Tensor], context_b: list[torch.Tensor]):
        skips, x = [], inputs
        for i, stage in enumerate(self.down):
            x = stage(x if i == 0 else torch.cat((x, context_a[i - 1], context_b[i - 1]), dim=1))
            skips.append(x)
        x = self.up[0](torch.cat((x, context_a[3], context_b[3]), dim=1))
        for up, skip in zip(self.up[1:], reversed(skips[:-1])):
            x = up(torch.cat((x, skip), dim=1))
        # float32 from here: near 0 the residual needs more than bf16's 8 bits (0.004 steps)
        return 2.0 * torch.sigmoid(self.out(x).float()) - 1.0


class RifeTemporal(nn.Module):
    """RIFE as MT. ``motion`` is ``[N, 5, H, W]``: flow t->a (channels 0-1), flow t->b (2-3), in
    pixels of the frames it was estimated on, and the blend logit (4; ``sigmoid`` of it weighs
    ``warp(a)``). It is specific to the ``t`` given to ``estimate``.

    Input sizes must be multiples of ``size_multiple`` (64 with the large-motion retry, else
    ``4 * max(scales)``, and at least 16 for the refinement); the pipeline pads.
    """

    takes_timestep = True
    # the coarse levels, in float32 at any precision (``_pyramid``): they see a 16th and a 32nd of
    # the frame, so it costs little, and their flows carry large motion and decide the retry. On
    # fp32 keyframes, RIFE in bf16 put Middlebury's new frames 0.012 dB below fp32's (one scene
    # 0.07 dB), with these in float32 0.004 dB
    float32_parts = ("levels.0", "levels.1")

    def __init__(self, config: RifeConfig = RifeConfig()):
        super().__init__()
        if len(config.channels) != len(config.scales) or not config.channels:
            raise ValueError("RifeConfig.channels and scales must be non-empty and of the same length")
        self.config = config
        # level 0 sees a, b, t; finer levels also warped a, b, t, logit and the flows (3+3+1+1+4)
        self.levels = nn.ModuleList(_FlowLevel(7 if i == 0 else 12, c) for i, c in enumerate(config.channels))
        self.context = _ContextEncoder(config.context_channels) if config.refine else None
        self.refine = _RefineUNet(config.context_channels) if config.refine else None
        retry = config.large_motion_threshold is not None and len(config.scales) > 1
        multiple = math.ceil(4 * max(config.scales) * (2 if retry else 1))
        self.size_multiple = max(multiple, 16 if config.refine else 1)

    def _pyramid(self, ab: torch.Tensor, t: torch.Tensor, scales: tuple[float, ...], retry: bool) -> torch.Tensor:
        """The flow pyramid at ``scales`` on ``ab`` (``_pair``), ``t`` its ``time_plane``. Returns
        ``motion``. Each level's input is assembled at the level's own resolution (resizing is
        per channel, so this is the reference's full-resolution concatenation, resized)."""
        n, _, h, w = ab.shape
        motion = None
        for i, level in enumerate(self.levels):
            low = (round(h / scales[i]), round(w / scales[i]))
            t_plane = t[:, :, : low[0], : low[1]]  # a constant plane: cropped, it is the level's
            if motion is None:  # level 0: a, b, t
                x = torch.cat((_resize(ab, low), t_plane), dim=1)
            else:  # warped a, warped b, t, logit, both flows
                known = _resize_motion(motion, low).to(ab.dtype)
                x = torch.cat((_resize(_warp_pair(ab, motion), low), t_plane, known[:, 4:5], known[:, 0:4]), dim=1)
            delta = _in_weights_dtype(level, x, (h, w))
            if i == 1 and retry:
                limit = self.config.large_motion_threshold
                reach = delta[:, 0:4].abs().amax(dim=(2, 3))  # [N, 4]: per flow channel
                far = (reach[:, 0:2].amax(dim=1) > limit) & (reach[:, 2:4].amax(dim=1) > limit)
                if far.any():
                    wide = tuple(2 * s for s in scales)
                    if far.all():
                        return self._pyramid(ab, t, wide, retry=False)
                    # mixed batch: each group on its own (the near pairs redo their first two levels)
                    out = torch.empty((n, 5, h, w), dtype=motion.dtype, device=motion.device)
                    out[far] = self._pyramid(ab[far], t[far], wide, retry=False)
                    near = ~far
                    out[near] = self._pyramid(ab[near], t[near], scales, retry=False)
                    return out
            motion = delta if motion is None else motion + delta
        return motion

    def estimate(self, a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor:
        """Motion ``[N, 5, H, W]`` (float32) from ``a`` to the frame at ``t`` and from ``b`` to it."""
        h, w = a.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"RifeTemporal needs sizes that are multiples of {self.size_multiple}, got {w}x{h}")
        retry = self.config.large_motion_threshold is not None and len(self.levels) > 1
        return self._pyramid(_pair(a, b), time_plane(t, a), tuple(self.config.scales), retry)

    def synthesize(
        self, a: torch.Tensor, b: torch.Tensor, motion: torch.Tensor, t: float | torch.Tensor = 0.5
    ) -> torch.Tensor:
        """The frame at ``t``, ``[N, 3, H, W]``, from ``motion`` estimated at this or another size
        (resized, vectors rescaled). ``t`` is accepted for the protocol; ``motion`` already
        encodes it (estimate with the same ``t``)."""
        n, _, h, w = a.shape
        if self.refine is not None and (h % 16 or w % 16):
            raise ValueError(f"RifeTemporal's refinement needs sizes that are multiples of 16, got {w}x{h}")
        motion = _resize_motion(motion, (h, w))
        flow, logit = motion[:, 0:4], motion[:, 4:5]
        ab = _pair(a, b)
        warped = _warp_pair(ab, motion)  # [N, 6, H, W]: warped a, warped b
        m = torch.sigmoid(logit)  # float32 (steps of 0.002 in bf16)
        frame = m * warped[:, 0:3] + (1.0 - m) * warped[:, 3:6]
        if self.refine is not None:
            # both frames through the context encoder as one batch: a's features, then b's
            context = self.context(torch.cat((a, b)), torch.cat((flow[:, 0:2], flow[:, 2:4])))
            inputs = torch.cat((ab, warped, logit.to(a.dtype), flow.to(a.dtype)), dim=1)  # [N, 17, H, W]
            frame = frame + self.refine(inputs, [c[:n] for c in context], [c[n:] for c in context])
        return frame

    def forward(self, a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor:
        return self.synthesize(a, b, self.estimate(a, b, t), t)
