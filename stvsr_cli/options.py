"""What an ``upscale_video`` run is asked (``UpscaleOptions``) and what it reports (``Summary``)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .errors import UsageError
from .names import DEFAULT_SCENE_THRESHOLD
from .video import EncodeSettings


@dataclass
class UpscaleOptions:
    model: str | os.PathLike | None = None  # None: the bundled weights
    device: str = "auto"
    precision: str = "auto"
    batch: int = 1
    mode: str = "spacetime"
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    tile: int = 0
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD
    overwrite: bool = False
    max_frames: int = 0  # > 0: only the first N input frames (a quick preview); audio is cut there too
    resume: bool = False  # work in segments kept beside the output, so that a rerun continues
    segment_frames: int = 0  # input frames per segment with ``resume``; 0: about 10 seconds
    mid_from: str | None = None  # "refined" or "st" (see DualStreamConfig.mid_from); None: the model's own
    multi: int = 2  # output frames per input interval (frame rate x multi): new frames at t = k / multi
    size: tuple[int, int] | None = None  # exact output (width, height): the model's frames resized (lanczos)
    fps: Fraction | None = None  # a constant output rate (frames at their exact times); None: multi x the input's
    input_fps: Fraction = Fraction(25)  # the frame rate of an image-sequence input
    compile: str = "auto"  # torch.compile the networks: auto (long clips on the CPU), on, off (stvsr_cli.compiling)


@dataclass
class Summary:
    """What a finished ``upscale_video`` run did (``describe`` for people, ``to_dict`` for
    scripts: ``stvsr upscale --json``)."""

    input_frames: int
    output_frames: int
    seconds: float
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    device: str
    scene_cuts: int = 0
    warnings: list[str] = field(default_factory=list)
    precision: str = "fp32"  # the model's arithmetic: fp32, bf16 or fp16
    input: str = ""
    output: str = ""
    model: str = ""  # the weights file
    mode: str = "spacetime"
    input_rate: Fraction = Fraction(0)  # nominal frames per second
    output_rate: Fraction = Fraction(0)
    segments: dict | None = None  # --resume or torchrun: {"total": n, "reused": finished by an earlier run}

    def describe(self) -> str:
        fps = self.output_frames / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.input_frames} frames {self.input_size[0]}x{self.input_size[1]} -> "
            f"{self.output_frames} frames {self.output_size[0]}x{self.output_size[1]} "
            f"in {self.seconds:.1f} s ({fps:.2f} frames/s on {self.device}, {self.precision}"
            + (f", {self.scene_cuts} scene cut(s)" if self.scene_cuts else "")
            + ")"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: sizes as ``[width, height]``, rates as ``"num/den"`` and as a float."""
        return {
            "ok": True,
            "input": self.input,
            "output": self.output,
            "frames_in": self.input_frames,
            "frames_out": self.output_frames,
            "size_in": list(self.input_size),
            "size_out": list(self.output_size),
            "rate_in": rate_dict(self.input_rate),
            "rate_out": rate_dict(self.output_rate),
            "mode": self.mode,
            "seconds": round(self.seconds, 3),
            "model": self.model,
            "device": self.device,
            "precision": self.precision,
            "scene_cuts": self.scene_cuts,
            "warnings": list(self.warnings),
        } | ({"segments": dict(self.segments)} if self.segments else {})


def rate_dict(rate: Fraction) -> dict[str, Any]:
    return {"exact": f"{rate.numerator}/{rate.denominator}", "fps": round(float(rate), 6)}


def parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)``; anything else is a ``UsageError``."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX:]\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"--size must be WIDTHxHEIGHT, e.g. 1920x1080, not {text!r}")
    size = (int(match[1]), int(match[2]))
    check_size(size)
    return size


def check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width < 2 or height < 2 or width % 2 or height % 2 or max(width, height) > 16384:
        raise UsageError(f"--size {width}x{height}: width and height must be even, from 2 to 16384")
