"""Scene-cut detection on LR frames: no interpolation across a cut.

A cut changes the picture's colour distribution and its coarse layout at once; motion,
even fast, changes the layout but keeps the colours. ``cut_score`` combines both on a
1/8-size view of the two frames, so it is cheap on any resolution.

The training sampler (``stvsr_cli.data.looks_like_cut``) uses the same coarse view with a
stricter rule, layout alone: there a fast pan wrongly taken for a cut only costs one redrawn
sample, while here it would cost a visible repeated frame.
"""

from __future__ import annotations

import numpy as np

_BINS = 16


def coarse_view(frame: np.ndarray) -> np.ndarray:
    """A 1/8-size view in [0, 1] (uint8 or uint16 frames: each on its own full scale)."""
    peak = float(np.iinfo(frame.dtype).max) if np.issubdtype(frame.dtype, np.integer) else 1.0
    h, w = (frame.shape[0] // 8) * 8, (frame.shape[1] // 8) * 8
    if h == 0 or w == 0:
        return frame.astype(np.float32) / peak
    return frame[:h, :w].reshape(h // 8, 8, w // 8, 8, -1).mean(axis=(1, 3), dtype=np.float32) / peak


def _histogram(coarse: np.ndarray) -> np.ndarray:
    idx = np.minimum((coarse * _BINS).astype(np.int64), _BINS - 1)
    hist = np.stack([np.bincount(idx[..., c].ravel(), minlength=_BINS) for c in range(coarse.shape[-1])])
    return hist / max(hist.sum(axis=1, keepdims=True).max(), 1)


def cut_score(a: np.ndarray, b: np.ndarray) -> float:
    """In [0, 1]: how much ``b`` looks like a different shot from ``a`` (RGB ``[H, W, 3]``,
    uint8 or uint16).

    The smaller of the histogram distance (half the L1 distance of per-channel 16-bin
    histograms, 0 = same colours) and twice the mean absolute difference of the coarse views
    (0 = same layout): both must change for a high score.
    """
    ca, cb = coarse_view(a), coarse_view(b)
    hist = 0.5 * float(np.abs(_histogram(ca) - _histogram(cb)).sum(axis=1).mean())
    layout = float(np.abs(ca - cb).mean())
    return min(hist, 2.0 * layout)


def is_cut(a: np.ndarray, b: np.ndarray, threshold: float) -> bool:
    """``threshold <= 0`` turns detection off."""
    return threshold > 0 and cut_score(a, b) > threshold
