"""torch.compile: when ``--compile auto`` uses it, that frames do not change, and that a
compiler failure falls back to the uncompiled networks with one warning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stvsr_cli import compiling
from stvsr_cli.compiling import compile_networks, should_compile
from stvsr_cli.pipeline import Upscaler

from .conftest import moving_frames
from .test_cli import run



@pytest.mark.parametrize("mode, expected", [("auto", False), ("on", True), ("off", False)])
def test_only_on_compiles(mode, expected):
    # auto: compiling made the default slower on the CPU (measured, docs/BENCHMARKS.md)
    assert should_compile(mode) is expected


def _failing_compile(fn, **_):
    def compiled(*args, **kwargs):
        raise RuntimeError("Compiler: cc not found\nmore detail")

    return compiled


def test_a_compiler_failure_falls_back_with_one_warning(tiny_model, monkeypatch):
    monkeypatch.setattr(compiling.torch, "compile", _failing_compile)
    frames = moving_frames(4, 64, 48)
    ref = list(Upscaler(tiny_model).run(frames))
    upscaler = Upscaler(tiny_model)
    warnings: list[str] = []
    compile_networks(upscaler.model, warnings.append)
    out = list(upscaler.run(frames))
    assert all(np.array_equal(a, b) for a, b in zip(ref, out, strict=True))
    assert warnings and all(w == "torch.compile failed (Compiler: cc not found); running uncompiled" for w in warnings)


def test_compile_on_from_the_command_line_warns_and_finishes_when_compiling_fails(
    tmp_path, clip, tiny_weights, monkeypatch
):
    monkeypatch.setattr(compiling.torch, "compile", _failing_compile)
    result = run("upscale", clip, tmp_path / "o.mp4", "--model", tiny_weights, "--compile", "on", "-q")
    assert result.exit_code == 0 and "torch.compile failed" in result.output
    assert (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_compiled_networks_give_the_same_frames(tiny_model):
    frames = moving_frames(3, 64, 48)
    ref = list(Upscaler(tiny_model).run(frames))
    upscaler = Upscaler(tiny_model)
    warnings: list[str] = []
    compile_networks(upscaler.model, warnings.append)
    out = list(upscaler.run(frames))  # compiled, or (no compiler here) the fallback: the same frames either way
    for a, b in zip(ref, out, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_an_interruption_inside_a_compiled_call_is_not_taken_for_a_compiler_failure(monkeypatch):
    from stvsr_cli.compiling import CompiledOrEager
    from stvsr_cli.errors import Interrupted

    def interrupted(fn, **_):
        def compiled(*args, **kwargs):
            raise Interrupted("stopped by SIGINT; no output was written")

        return compiled

    monkeypatch.setattr(compiling.torch, "compile", interrupted)
    warnings: list[str] = []
    wrapped = CompiledOrEager(lambda: "eager", warnings.append)
    with pytest.raises(Interrupted):
        wrapped()
    assert warnings == []
