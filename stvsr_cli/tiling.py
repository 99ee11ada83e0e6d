"""Tiled execution with overlap: run a model on a large frame piece by piece.

``run_tiled(fn, lr, hr, tile, overlap, multiple)`` cuts the LR tensors ``[N, C, h, w]`` (and the
matching HR tensors ``[N, C, 2h, 2w]``) into tiles of about ``tile`` LR pixels, each extended
by ``overlap`` pixels of context on every side (clipped at the frame edge, then padded by
replication to a multiple of ``multiple``), calls ``fn(lr_tiles, hr_tiles) -> [N, C', s*th, s*tw]``
and keeps only each tile's core in the stitched output. With enough overlap the seams are
invisible; the peak memory is that of one tile, whatever the frame size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``[..., h, w]`` padded at the bottom and right (replicating the edge) to multiples of
    ``multiple``; ``x[..., :h, :w]`` of the result is ``x``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def run_tiled(
    fn: Callable[[list[torch.Tensor], list[torch.Tensor]], torch.Tensor],
    lr: list[torch.Tensor],
    hr: list[torch.Tensor],
    tile: int,
    overlap: int,
    multiple: int,
    scale: int = 2,
) -> torch.Tensor:
    n, _, h, w = lr[0].shape
    core = max(tile - 2 * overlap, multiple)
    out = None
    for y0 in range(0, h, core):
        for x0 in range(0, w, core):
            y1, x1 = min(y0 + core, h), min(x0 + core, w)
            ys, xs = max(y0 - overlap, 0), max(x0 - overlap, 0)
            ye, xe = min(y1 + overlap, h), min(x1 + overlap, w)
            lr_tiles = [pad_to_multiple(t[..., ys:ye, xs:xe], multiple) for t in lr]
            hr_tiles = [
                pad_to_multiple(t[..., scale * ys : scale * ye, scale * xs : scale * xe], multiple * scale) for t in hr
            ]
            result = fn(lr_tiles, hr_tiles)
            s = result.shape[-1] // lr_tiles[0].shape[-1]  # the function's own scale (1 or 2)
            if out is None:
                out = result.new_empty((n, result.shape[1], h * s, w * s))
            out[..., s * y0 : s * y1, s * x0 : s * x1] = result[
                ..., s * (y0 - ys) : s * (y1 - ys), s * (x0 - xs) : s * (x1 - xs)
            ]
    return out
