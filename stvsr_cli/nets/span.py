"""SPAN, a pretrained ×2 super-resolution net for the keyframes (MS; ``SpatialNet`` protocol).

SPAN (Wan et al., *Swift Parameter-free Attention Network for Efficient Super-Resolution*,
CVPR-W 2024, arXiv 2311.12770) is a small all-convolutional net that runs at LR resolution.
Written here from the paper and the layer graph of the public checkpoint
(``stvsr_cli.import_span``), in its inference form, where each block's re-parameterised
convolutions are already merged into single 3×3 convolutions:

* ``x = (lr - rgb_mean) * img_range``;  ``f0 = head(x)``                     ``[N, c, h, w]``
* block ``i`` (``blocks`` of them), on ``f``: ``a = silu(conv1(f))``, ``b = conv3(silu(conv2(a)))``,
  ``f' = (b + f) * (sigmoid(b) - 0.5)``: the attention is a function of the features
  themselves ("parameter-free"), centred so that it can also invert;
* ``g = body_tail(f_last)``;  ``m = merge(cat(f0, g, f_1, a_last))`` (1×1)  ``[N, c, h, w]``
* ``hr = pixel_shuffle(upsample(m), 2)``                                    ``[N, 3, 2h, 2w]``

The output is the HR frame itself in [0, 1] (nominally; never clamped), not a residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import by_row_slabs, conv3x3, conv_silu, eager_cpu_inference, working_dtype, zero_init


@dataclass(frozen=True)
class SpanConfig:
    """channels: feature width (48 in the ×2 checkpoint we import); blocks: attention blocks;
    img_range: the input scale the checkpoint was trained with."""

    channels: int = 48
    blocks: int = 6
    img_range: float = 255.0


class SpanBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.conv3 = conv3x3(channels, channels)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f', a)``: the block's output and its first activation (the last block's ``a`` is
        one of the merged features)."""
        a = conv_silu(self.conv1, f)
        b = self.conv3(conv_silu(self.conv2, a))
        return attention(b, f), a


def attention(b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """SPAN's attention ``(b + f) * (sigmoid(b) - 1/2)`` ``[N, C, h, w]``, computed in float32 and
    returned in ``b``'s dtype.

    float32 because in bf16 ``sigmoid(b) - 1/2`` keeps only 8 bits of 1/2 + a small value
    (measured on val keyframes against fp32, before SiLU was fused: -0.015 / -0.018 / -0.008 dB
    this way, -0.019 / -0.023 / -0.009 dB with the same function written as tanh(b / 2) / 2 in
    bf16, over the 0.02 dB bf16 may cost). On the CPU without autograd in slabs of rows (``by_row_slabs``),
    in place within a slab: a 640x360 keyframe 1.17 -> 0.76 s in bf16 on 2 EPYC cores (median of
    5), the same output; in place 0.596 -> 0.571 s. Not on a GPU, where each slab would be a
    handful of tiny kernel launches.
    """
    if not eager_cpu_inference(b):
        return _attention(b, f)
    return by_row_slabs(_attention_in_place, b, f)


def _attention(b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return ((b.float() + f.float()) * (torch.sigmoid(b.float()) - 0.5)).to(b.dtype)


def _attention_in_place(b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """``_attention`` for a slab, in float32 (``by_row_slabs`` casts it as it stores it): two fresh
    float32 tensors instead of six, the same values."""
    b32 = b.to(torch.float32, copy=True)
    gate = torch.sigmoid(b32)
    b32.add_(f)
    gate.sub_(0.5)
    return b32.mul_(gate)


class SpanSpatial(nn.Module):
    scale = 2
    size_multiple = 1
    # weights kept in float32 when the model is cast to bf16/fp16 for speed (``stvsr_cli.upscaler``;
    # autocast still runs the middle convolutions in bf16): with the first and last convolutions'
    # weights rounded to bf16, Middlebury keyframes lost 0.03 dB against fp32, without 0.01 dB
    float32_parts = ("rgb_mean", "head", "blocks", "body_tail", "merge", "upsample")

    def __init__(self, config: SpanConfig = SpanConfig()):
        super().__init__()
        if config.blocks < 1:
            raise ValueError("SpanConfig.blocks must be at least 1")
        self.config = config
        c = config.channels
        self.register_buffer("rgb_mean", torch.zeros(1, 3, 1, 1))  # the checkpoint's, loaded with it
        self.head = conv3x3(3, c)
        self.blocks = nn.ModuleList(SpanBlock(c) for _ in range(config.blocks))
        self.body_tail = conv3x3(c, c)
        self.merge = nn.Conv2d(4 * c, c, 1)
        self.upsample = zero_init(conv3x3(c, 3 * self.scale**2))  # untrained: a black frame, in range

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        # the first and the last convolution in float32: under bf16 autocast the scaled input
        # would lose LR detail and the output (the frame itself, not a residual) would come in
        # steps of up to 0.002 (measured: -0.05 dB on Middlebury keyframes, -0.01 with these)
        x = (lr.float() - self.rgb_mean.float()) * self.config.img_range
        # the features in the working dtype: kept in float32 they would make every later op cast
        f0 = _conv_float32(self.head, x).to(working_dtype(lr))
        f, first = f0, None
        for block in self.blocks:
            f, a = block(f)
            first = f if first is None else first
        g = self.body_tail(f)
        m = self.merge(torch.cat((f0, g, first, a), dim=1))
        return F.pixel_shuffle(_conv_float32(self.upsample, m), self.scale)


def _conv_float32(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` computed in float32, whatever autocast or the weights' dtype say."""
    with torch.autocast(x.device.type, enabled=False):
        return F.conv2d(x.float(), conv.weight.float(), conv.bias.float(), padding=conv.padding)
