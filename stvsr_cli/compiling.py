"""``torch.compile`` for the upscaler's networks, where it pays off.

Measured (docs/BENCHMARKS.md, 2-core AMD EPYC, bf16, 640x360 pairs): for our MS with RIFE
compiling takes about 110 s on the first pair and then saves 17% per pair (1.30 -> 1.09 s); for
the default (SPAN + RIFE) 168 s, then 7% (3.34 -> 3.10 s), paying off after about 1400 input
frames; and only for whole frames of one size (each new shape, as tiles at a frame's edge have,
compiles again). ``--compile auto`` therefore compiles on the CPU from
``AUTO_MIN_FRAMES`` input frames (a minute at 25 fps), without tiling and one pair per call;
``on`` compiles whenever it can, ``off`` never. Where compiling fails (no C++ compiler, an
unsupported op) the run goes on uncompiled, with a warning.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .errors import StvsrError

COMPILE_MODES = ("auto", "on", "off")
AUTO_MIN_FRAMES = 1500


def should_compile(mode: str, device: torch.device, frames: int, tiled: bool, batch: int) -> bool:
    if mode == "off":
        return False
    if mode == "on":
        return True
    return device.type == "cpu" and frames >= AUTO_MIN_FRAMES and not tiled and batch == 1


class CompiledOrEager:
    """Calls the compiled ``fn``; if compiling or running it fails, says so once through
    ``warn`` and calls ``fn`` itself from then on."""

    def __init__(self, fn: Callable, warn: Callable[[str], None]):
        self.fn = fn
        self.compiled = torch.compile(fn, dynamic=False)
        self.warn = warn

    def __call__(self, *args, **kwargs):
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except StvsrError:  # an interruption (Ctrl-C, SIGTERM) is not the compiler's failure
                raise
            except Exception as e:  # noqa: BLE001 (any compiler failure: fall back, the run goes on)
                self.compiled = None
                reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                self.warn(f"torch.compile failed ({reason}); running uncompiled")
        return self.fn(*args, **kwargs)


def compile_networks(model: nn.Module, warn: Callable[[str], None]) -> None:
    """Compile, in place, what the upscaler calls: MS, MT's two steps, F and R."""
    model.spatial.forward = CompiledOrEager(model.spatial.forward, warn)
    for name in ("estimate", "synthesize"):
        setattr(model.temporal, name, CompiledOrEager(getattr(model.temporal, name), warn))
    model.fusion.forward = CompiledOrEager(model.fusion.forward, warn)
    model.refine.forward = CompiledOrEager(model.refine.forward, warn)
