"""Tiled execution: exact for local operations, close to whole-frame for the model."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stvsr_cli.errors import StvsrError
from stvsr_cli.pipeline import Upscaler
from stvsr_cli.tiling import run_tiled

from .conftest import moving_frames


@pytest.mark.parametrize("tile,overlap", [(16, 4), (24, 8), (40, 4)])
def test_tiles_of_a_local_operation_stitch_exactly(tile, overlap):
    lr = torch.rand(2, 3, 37, 53)
    hr = torch.rand(2, 3, 74, 106)

    def fn(lr_tiles, hr_tiles):  # bicubic reaches 2 LR pixels: overlap >= 2 makes tiles exact
        return F.interpolate(lr_tiles[0], scale_factor=2, mode="bicubic", align_corners=False) + hr_tiles[0]

    whole = fn([lr], [hr])
    tiled = run_tiled(fn, [lr], [hr], tile, overlap, multiple=4)
    assert tiled.shape == whole.shape
    # replicate padding at the tile's outer edge only exists where the frame edge is too
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_tiled_model_matches_whole_frame_closely(tiny_model):
    frames = moving_frames(3, 96, 80)
    whole = list(Upscaler(tiny_model).run(frames))
    tiled = list(Upscaler(tiny_model, tile=80).run(frames))
    assert len(tiled) == len(whole) == 5
    for a, b in zip(tiled, whole):
        assert a.shape == b.shape
        assert np.abs(a.astype(float) - b.astype(float)).mean() < 1.0


def test_too_small_tile_is_refused(tiny_model):
    with pytest.raises(StvsrError, match="--tile"):
        Upscaler(tiny_model, tile=8)
