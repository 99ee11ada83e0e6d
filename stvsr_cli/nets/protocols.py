"""What every spatial (MS) and temporal (MT) network promises, so that any registry entry can
stand in the dual stream (``tests/test_nets.py`` checks each entry against these).

Both take and give images as in ``stvsr_cli.nets.blocks``: ``[N, 3, H, W]`` RGB, nominally in
[0, 1], never clamped; float32, and bfloat16/float16 where the device runs them. Input sizes
must be multiples of ``size_multiple`` (the pipeline pads and crops back). A net may name
``float32_parts``: submodules (or buffers; a dotted name reaches into a child, ``"levels.0"``)
whose weights the pipeline keeps in float32 when it casts the model to a lower precision
(autocast still runs them in it where the net does not compute them in float32 itself).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class SpatialNet(Protocol):
    """MS: one LR frame ``[N, 3, h, w]`` -> the HR frame ``[N, 3, 2h, 2w]`` (``scale`` = 2)."""

    scale: int
    size_multiple: int

    def __call__(self, lr: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class TemporalNet(Protocol):
    """MT: two frames ``a``, ``b`` (any resolution) -> the frame at time ``t`` in (0, 1) between
    them (0 is ``a``), in two steps the dual stream can share:

    * ``estimate(a, b, t) -> motion``: what the net needs about the motion (``None`` for
      non-learned nets); may be used with frames of another size (resized, vectors rescaled);
    * ``synthesize(a, b, motion, t) -> frame``.

    ``takes_timestep``: whether ``t`` other than 0.5 is honoured; a net that cannot raises
    ``ValueError`` for any other ``t`` rather than return the midpoint.
    """

    size_multiple: int
    takes_timestep: bool

    def estimate(self, a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor = 0.5) -> torch.Tensor | None: ...

    def synthesize(
        self, a: torch.Tensor, b: torch.Tensor, motion: torch.Tensor | None, t: float | torch.Tensor = 0.5
    ) -> torch.Tensor: ...


def check_midpoint_only(net: object, t: float | torch.Tensor) -> None:
    """For temporal nets trained for the midpoint only: refuse any other ``t`` in one line."""
    if torch.is_tensor(t):
        other = bool((t.detach() != 0.5).any())
    else:
        other = t != 0.5
    if other:
        raise ValueError(f"the {type(net).__name__} temporal network makes only the frame halfway (t = 0.5)")
