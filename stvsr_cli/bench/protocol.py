"""What ``stvsr bench`` measures and how: datasets, methods, degradations, metrics, the protocol
text, what a run is asked (``BenchConfig``), and its errors. No torch here: the command line
takes its defaults from these."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import StvsrError
from ..names import DEFAULT_DEGRADATION, DEGRADATIONS  # noqa: F401 (DEGRADATIONS: part of the bench API)

DATASETS = ("vimeo90k", "ucf101", "middlebury", "fisr", "videos")
BASELINES = ("bicubic_blend", "mci_lanczos")
MODEL_ROWS = {"model_st": "h_st", "model_ts": "h_ts", "model_fused": "h_fused", "model_refined": "h_refined"}
METHODS = BASELINES + tuple(MODEL_ROWS)
METRICS = ("rgb", "y")

PROTOCOL = (
    "For a clip of real frames H(0..2N-2), width and height cropped to even numbers (right/bottom): "
    "LR input = frames at even t, downscaled x0.5 with {degradation}, rounded to uint8. "
    "Each method produces all 2N-1 frames at full size, rounded to uint8 RGB. "
    "PSNR (capped at {cap:g} dB) and SSIM (Gaussian 11x11, sigma 1.5, per RGB channel, averaged) on RGB, "
    "full frame, no border crop, keyframes (even t) and intermediates (odd t) separately, "
    "averaged per frame then per clip."
)
FISR_PROTOCOL = (
    "FISR's own split: LR input = the dataset's LR frames seq 1,3,5,7,9 (t = 0..8 even; used as given, "
    "not re-degraded); ground truth = its HR frames seq 2..8 at 2x size (t = seq - 1): keyframes seq 3,5,7, "
    "intermediates seq 2,4,6,8 (seq 1 and 9 are produced but have no truth); the YCbCr PNGs are converted to "
    "RGB with BT.601 studio range. "
    "Each method produces all 2N-1 frames at full size, rounded to uint8 RGB. "
    "PSNR (capped at {cap:g} dB) and SSIM (Gaussian 11x11, sigma 1.5, per RGB channel, averaged) on RGB, "
    "full frame, no border crop, keyframes and intermediates separately, averaged per frame then per clip."
)
DEGRADATION_TEXT = {
    "bicubic_aa": "antialiased bicubic (torch interpolate, antialias=True)",
    "bicubic": "non-antialiased bicubic (torch interpolate, antialias=False; the paper's code)",
}


@dataclass
class BenchConfig:
    dataset: str
    data: str | os.PathLike
    methods: tuple[str, ...] = METHODS
    model: str | os.PathLike | None = None  # None: the bundled weights
    device: str = "auto"
    precision: str = "auto"
    degradation: str = DEFAULT_DEGRADATION
    metric: str = "rgb"  # "y" adds BT.601 luma PSNR
    limit: int = 0  # sequences, 0 = all
    max_frames: int = 0  # videos: first frames per clip, 0 = all
    save_examples: str | os.PathLike | None = None
    multi: int = 2  # output frames per input interval: inputs this many frames apart (videos only)


class BenchError(StvsrError):
    """A bench option or dataset problem the user can fix (one-line message)."""


class SkippedClip(BenchError):
    """A clip that cannot be scored (e.g. a video shorter than 3 frames): warned about, skipped."""
