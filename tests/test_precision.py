"""Precision: what ``--precision auto`` picks, bf16 on CPUs that have it, and the float32 islands
(flows, sampling grids, masks, residuals near zero) that keep bf16 output close to fp32."""

import dataclasses

import numpy as np
import pytest
import torch

from stvsr_cli import upscaler as pipeline
from stvsr_cli.errors import UsageError
from stvsr_cli.nets import DualStream
from stvsr_cli.nets.blocks import flow_warp
from stvsr_cli.nets.registry import TEMPORAL
from stvsr_cli.upscaler import Upscaler, resolve_dtype

from .conftest import moving_frames, tiny_config

CPU = torch.device("cpu")
needs_native_bf16 = pytest.mark.skipif(not pipeline.cpu_has_native_bf16(), reason="this CPU has no native bf16")


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_on_cpu_is_bf16_only_where_the_cpu_has_it(monkeypatch, native, expected):
    monkeypatch.setattr(pipeline, "cpu_has_native_bf16", lambda: native)
    assert resolve_dtype("auto", CPU) == expected


def test_bf16_asked_for_on_a_cpu_without_it_is_refused(monkeypatch):
    monkeypatch.setattr(pipeline, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(UsageError, match="native bf16"):
        resolve_dtype("bf16", CPU)
    with pytest.raises(UsageError, match="fp16"):
        resolve_dtype("fp16", CPU)


def test_warping_with_a_bf16_flow_lands_on_the_right_pixels():
    # a bf16 sampling grid over 1280 pixels is off by up to 2.5 pixels: warping by zero must
    # still give the image back, to bf16's rounding of the values themselves
    img = torch.rand(1, 3, 8, 1280)
    flow = torch.zeros(1, 2, 8, 1280, dtype=torch.bfloat16)
    out = flow_warp(img.bfloat16(), flow)
    assert out.dtype == torch.bfloat16
    assert (out.float() - img).abs().max() < 0.01


def test_the_upscaler_leaves_the_callers_model_as_it_was(tiny_model):
    before = {k: (v.dtype, v.clone()) for k, v in tiny_model.state_dict().items()}
    upscaler = Upscaler(tiny_model, precision="fp32")
    assert upscaler.model is not tiny_model
    assert all(v.dtype == before[k][0] and torch.equal(v, before[k][1]) for k, v in tiny_model.state_dict().items())


@needs_native_bf16
def test_bf16_frames_are_close_to_fp32(tiny_model):
    frames = moving_frames(3, 64, 48)
    ref = list(Upscaler(tiny_model, precision="fp32").run(frames))
    low = Upscaler(tiny_model, precision="bf16")
    assert low.precision == "bf16"
    out = list(low.run(frames))
    assert len(out) == len(ref) == 5
    for a, b in zip(ref, out):
        assert np.abs(a.astype(float) - b.astype(float)).mean() < 0.5


@needs_native_bf16
def test_rife_under_bf16_autocast_matches_fp32_where_it_matters():
    # the pretrained net's sensitive spots (flow accumulation, grid, blend mask, refinement
    # residual near 0) are float32 islands: a textured pan interpolates to within 1/255
    torch.manual_seed(0)
    net = TEMPORAL["rife"].net(TEMPORAL["rife"].config(**TEMPORAL["rife"].tiny)).eval()
    frames = moving_frames(2, 128, 64)
    a, b = (torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames)
    with torch.inference_mode():
        ref = net(a, b, 0.5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net.bfloat16()(a, b, 0.5)
    assert low.dtype == torch.float32
    assert (low - ref).abs().mean() < 1 / 255


def test_rifes_coarse_levels_stay_float32_in_a_bf16_pipeline():
    """RIFE names its two coarse flow levels as float32 parts (a dotted name into its
    ``levels``): the bf16 pipeline keeps their weights in float32 and they compute in float32
    under autocast, so their correction is the fp32 one; the finer levels are bf16."""
    from stvsr_cli.nets.rife import RifeTemporal, _in_weights_dtype

    assert RifeTemporal.float32_parts == ("levels.0", "levels.1")
    torch.manual_seed(0)
    model = DualStream(dataclasses.replace(tiny_config(), temporal="rife", temporal_config=TEMPORAL["rife"].tiny))
    net = Upscaler(model, CPU, "bf16").model.temporal
    dtypes = [level.head.weight.dtype for level in net.levels]
    assert dtypes == [torch.float32, torch.float32, torch.bfloat16, torch.bfloat16]
    x = torch.rand(1, 7, 32, 32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        coarse = _in_weights_dtype(net.levels[0], x, (64, 64))
    with torch.inference_mode():
        reference = model.temporal.levels[0].to(memory_format=torch.channels_last)(x, (64, 64))
    torch.testing.assert_close(coarse, reference, atol=1e-5, rtol=1e-5)
