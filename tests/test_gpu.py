"""GPU checks (CUDA path, half precision, tiling): run on a machine with CUDA, skipped elsewhere."""

import numpy as np
import pytest
import torch

from stvsr_cli.pipeline import Upscaler, resolve_dtype

from .conftest import moving_frames

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_cuda_fp32_matches_cpu(tiny_model):
    frames = moving_frames(3, 48, 32)
    cpu = list(Upscaler(tiny_model, "cpu").run(frames))
    gpu = list(Upscaler(tiny_model, "cuda", precision="fp32").run(frames))
    for a, b in zip(cpu, gpu):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


@needs_cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_half_precision_is_close_to_fp32(tiny_model, precision):
    frames = moving_frames(3, 48, 32)
    ref = list(Upscaler(tiny_model, "cuda", precision="fp32").run(frames))
    half = list(Upscaler(tiny_model, "cuda", precision=precision).run(frames))
    for a, b in zip(ref, half):
        assert np.abs(a.astype(float) - b.astype(float)).mean() < 1.5


@needs_cuda
def test_cuda_tiling_and_batching(tiny_model):
    frames = moving_frames(5, 96, 80)
    whole = list(Upscaler(tiny_model, "cuda", precision="fp32").run(frames))
    tiled = list(Upscaler(tiny_model, "cuda", precision="fp32", tile=80, batch=3).run(frames))
    for a, b in zip(whole, tiled):
        assert np.abs(a.astype(float) - b.astype(float)).mean() < 1.0


def test_auto_precision_is_fp16_on_cuda():
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
