"""When the output's frames are: which times between two input frames the model is asked for,
and their exact pts in the output's time base.

Input frames carry pts in the input time base ``in_tb``; the output's time base ``time_base``
divides it exactly (``scale = in_tb / time_base`` is an integer), so every output time is an
integer pts. A frame at ``t`` in [0, 1) between inputs at pts ``a`` and ``b`` sits at output pts
``(a + t (b - a)) * scale``; ``t = 0`` is the input frame itself (its keyframe).

* ``EveryInterval(multi)``: ``multi`` frames per input interval, at ``t = k / multi`` (``--multi``;
  2 is the plain 2x frame rate). Follows the input's timing, variable rate included.
* ``ConstantRate(rate)``: frames at ``start + k / rate`` over the input's span (``--fps``), each
  at its fractional position between its two input neighbours; after the last input frame,
  until the input's end, the last keyframe is repeated.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from .errors import UsageError

# the NTSC family as people write it: 29.97 means 30000/1001
_NTSC = {
    "23.976": Fraction(24000, 1001),
    "29.97": Fraction(30000, 1001),
    "59.94": Fraction(60000, 1001),
    "119.88": Fraction(120000, 1001),
    "47.952": Fraction(48000, 1001),
}


def parse_rate(text: str, option: str = "--fps") -> Fraction:
    """``"60"``, ``"59.94"`` (= 60000/1001), ``"60000/1001"`` or ``"12.5"`` -> frames per second."""
    text = text.strip()
    if text in _NTSC:
        return _NTSC[text]
    if not re.fullmatch(r"\d+(\.\d+)?(/\d+)?", text):
        raise UsageError(f"{option} must be a number or a fraction (60, 59.94, 60000/1001), not {text!r}")
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{option} must be a number or a fraction (60, 59.94, 60000/1001), not {text!r}") from None
    if not 0 < rate <= 1000:
        raise UsageError(f"{option} {text}: the rate must be above 0 and at most 1000 frames per second")
    return rate


class EveryInterval:
    """``multi`` output frames per input interval, at ``t = k / multi``."""

    def __init__(self, multi: int, in_tb: Fraction):
        self.multi = multi
        self.in_tb = Fraction(in_tb)
        self.time_base = self.in_tb / multi
        self.scale = multi

    def times(self, a: int, b: int) -> list[Fraction]:
        return [Fraction(k, self.multi) for k in range(self.multi)]

    def key_at(self, a: int) -> bool:
        """Whether an output frame sits exactly on the input frame at ``a`` (its keyframe)."""
        return True

    def tail(self, a: int, end: int) -> list[int]:
        """Output pts from the last input frame (at ``a``) to the input's ``end``: the frame itself."""
        return [a * self.scale]

    def step_after(self, p: int) -> int:
        raise AssertionError("every interval ends on a keyframe")

    def pts(self, a: int, b: int, t: Fraction) -> int:
        return int((a + t * (b - a)) * self.scale)

    def count(self, frames: int, duration: float) -> int:
        return self.multi * (frames - 1) + 1 if frames else 0

    def rate(self, input_rate: Fraction) -> Fraction:
        return Fraction(input_rate) * self.multi


class ConstantRate:
    """Output frames at ``start + k / rate`` (seconds), ``start`` the first input frame's time."""

    def __init__(self, rate: Fraction, in_tb: Fraction, start: int = 0):
        self.fps = Fraction(rate)
        self.in_tb = Fraction(in_tb)
        step = 1 / self.fps  # seconds per output frame
        # the coarsest time base that both the input's ticks and the output's step are multiples of
        self.time_base = Fraction(
            math.gcd(self.in_tb.numerator, step.numerator), math.lcm(self.in_tb.denominator, step.denominator)
        )
        self.scale = int(self.in_tb / self.time_base)
        self.step = int(step / self.time_base)
        self.origin = start * self.scale

    def _grid(self, lo: int, hi: int) -> range:
        """Output pts on the grid in ``[lo, hi)`` (output time base)."""
        first = self.origin + max(0, -(-(lo - self.origin) // self.step)) * self.step
        return range(first, max(first, hi), self.step)

    def times(self, a: int, b: int) -> list[Fraction]:
        lo, hi = a * self.scale, b * self.scale
        return [Fraction(p - lo, hi - lo) for p in self._grid(lo, hi)]

    def key_at(self, a: int) -> bool:
        return (a * self.scale - self.origin) % self.step == 0 and a * self.scale >= self.origin

    def tail(self, a: int, end: int) -> list[int]:
        """Grid pts from the last input frame (at ``a``) up to the input's ``end``."""
        return list(self._grid(a * self.scale, end * self.scale))

    def step_after(self, p: int) -> int:
        """How long the output frame at ``p`` lasts: one step of the grid."""
        return self.step

    def pts(self, a: int, b: int, t: Fraction) -> int:
        return int((a + t * (b - a)) * self.scale)

    def count(self, frames: int, duration: float) -> int:
        return max(1, round(duration * self.fps)) if frames else 0

    def rate(self, input_rate: Fraction) -> Fraction:
        return self.fps
