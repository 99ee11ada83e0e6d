"""``torch.compile`` for the upscaler's networks, where it pays off: today nowhere by default.

Measured (docs/BENCHMARKS.md, 2-core AMD EPYC, bf16, 640x360; a "pair" is two keyframes and the
new frame between them): compiling paid off for earlier models (our MS with RIFE: 1.30 -> 1.09 s
per pair after 110 s of compiling), but not for today's default, whose eager CPU path fuses by
hand what inductor would (``nets.blocks.conv_silu``, SPAN's slab attention, RIFE's batched
warps): eager 1.92 s per pair, compiled 2.08 s after a 17 s first call (those hand-fused paths
step aside while compiling; traced through, it was 3.23 s after 92 s). So ``--compile auto``
compiles nowhere (no GPU measurement yet either); ``on`` compiles whenever it can, ``off``
never. Each new input shape compiles again (tiles at a frame's edge, a short last batch). Where
compiling fails (no C++ compiler, an unsupported op) the run goes on uncompiled, with a warning.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .errors import StvsrError

COMPILE_MODES = ("auto", "on", "off")


def should_compile(mode: str) -> bool:
    """Whether ``--compile MODE`` compiles: ``on`` only (``auto``: nowhere pays off, see above)."""
    return mode == "on"


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
