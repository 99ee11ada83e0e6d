"""Classical space-time baselines for ``stvsr bench``, run in the same pass as the model.

Both take the LR frames ``L(0..N-1)`` (uint8 RGB numpy ``[h, w, 3]``, all the same size) and
return the ``2N-1`` output frames ``H(0..2N-2)`` in display order (uint8 RGB ``[2h, 2w, 3]``):
keyframes at even ``t`` (``H(2i)`` from ``L(i)``) and intermediates at odd ``t``.

* ``bicubic_blend``: bicubic ×2 (``align_corners=False``, the registry's ``bicubic`` MS) for the
  keyframes; each intermediate is the average of its two upscaled neighbours (the registry's
  ``blend`` MT), averaged before rounding, so everything is rounded to 8 bits exactly once.
* ``mci_lanczos``: FFmpeg's motion-compensated interpolation through PyAV's libavfilter
  (``minterpolate=fps=2r:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1``) at LR, then
  ``scale=2w:2h:flags=lanczos``. minterpolate works on YUV; the graph converts RGB to 4:4:4
  (``yuv444p``, no chroma subsampling) and back. It needs frames before and after the one it
  interpolates, so the sequence is padded at both ends with reflected frames and the outputs
  are picked by timestamp. minterpolate refuses frames under 32×32: smaller LR frames are
  padded (edge pixels repeated, right/bottom) and the outputs cropped back.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from .errors import StvsrError
from .nets.blocks import upsample_bicubic

MCI_OPTIONS = "fps={fps}:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"
MCI_PAD = 2  # reflected frames added at each end: minterpolate looks up to 2 frames around
MCI_MIN_SIZE = 32  # minterpolate's smallest accepted width and height
_RATE = Fraction(25)  # nominal LR frame rate fed to the filter (only ratios matter)


def _check_frames(lr: list[np.ndarray]) -> tuple[int, int]:
    if not lr:
        raise StvsrError("no LR frames to upscale")
    h, w = lr[0].shape[:2]
    if any(f.shape != lr[0].shape for f in lr):
        raise StvsrError("LR frames of one sequence differ in size")
    return h, w


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """``[B, 3, H, W]`` float in 0..255 -> ``[B, H, W, 3]`` uint8 (clamped, rounded)."""
    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@torch.inference_mode()
def bicubic_blend(lr: list[np.ndarray], multi: int = 2) -> list[np.ndarray]:
    """Bicubic keyframes and blended intermediates (see the module doc): ``multi (N-1) + 1``
    frames, ``(1 - t) key_i + t key_(i+1)`` at ``t = k / multi`` (2N-1 by default)."""
    _check_frames(lr)
    x = torch.from_numpy(np.stack(lr)).permute(0, 3, 1, 2).float() / 255.0  # [N, 3, h, w]
    up = upsample_bicubic(x).clamp(0, 1) * 255.0  # [N, 3, 2h, 2w], 0..255
    keys = _to_uint8(up)
    out: list[np.ndarray] = []
    for i, key in enumerate(keys):
        if i:
            out.extend(
                _to_uint8((1 - k / multi) * up[i - 1 : i] + k / multi * up[i : i + 1])[0] for k in range(1, multi)
            )
        out.append(key)
    return out


def _mci_graph(width: int, height: int, multi: int = 2):
    import av

    graph = av.filter.Graph()
    chain = [
        graph.add_buffer(width=width, height=height, format="rgb24", time_base=1 / _RATE),
        graph.add("format", "yuv444p"),
        graph.add("minterpolate", MCI_OPTIONS.format(fps=multi * _RATE)),
        graph.add("scale", f"{2 * width}:{2 * height}:flags=lanczos"),
        graph.add("format", "rgb24"),
        graph.add("buffersink"),
    ]
    for a, b in zip(chain, chain[1:], strict=False):
        a.link_to(b)
    graph.configure()
    return graph


def _reflect_pad(lr: list[np.ndarray], pad: int) -> list[np.ndarray]:
    """``[L2, L1, L0, L1, ..., L(N-1), L(N-2), L(N-3)]`` for ``pad=2`` (repeats when N is small)."""
    n = len(lr)

    def at(i: int) -> np.ndarray:
        period = max(2 * (n - 1), 1)
        i = i % period
        return lr[i if i < n else period - i]

    return [at(-k) for k in range(pad, 0, -1)] + list(lr) + [at(n - 1 + k) for k in range(1, pad + 1)]


def mci_lanczos(lr: list[np.ndarray], multi: int = 2) -> list[np.ndarray]:
    """minterpolate (MCI) at ``multi`` times the rate at LR, then lanczos ×2 (see the module
    doc); ``multi (N-1) + 1`` frames (2N-1 by default)."""
    import av

    h, w = _check_frames(lr)
    n = len(lr)
    ph, pw = max(MCI_MIN_SIZE - h, 0), max(MCI_MIN_SIZE - w, 0)
    if ph or pw:
        lr = [np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge") for f in lr]
    out: dict[int, np.ndarray] = {}
    try:
        graph = _mci_graph(w + pw, h + ph, multi)

        def drain() -> None:
            while True:
                try:
                    frame = graph.vpull()
                except (av.BlockingIOError, av.EOFError):
                    return
                # output time in 1/multi LR frame intervals, minus the padding in front
                t = round(frame.pts * frame.time_base * multi * _RATE) - multi * MCI_PAD
                if 0 <= t <= multi * (n - 1):
                    out[t] = frame.to_ndarray(format="rgb24")[: 2 * h, : 2 * w]

        for j, rgb in enumerate(_reflect_pad(lr, MCI_PAD)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = j
            frame.time_base = 1 / _RATE
            graph.vpush(frame)
            drain()
        graph.vpush(None)
        drain()
    except av.error.FFmpegError as e:
        raise StvsrError(f"minterpolate failed on {w}x{h} LR frames: {e}") from None
    missing = [t for t in range(multi * (n - 1) + 1) if t not in out]
    if missing:
        raise StvsrError(f"minterpolate produced no frame for t={missing[:5]} ({w}x{h} LR frames)")
    return [np.ascontiguousarray(out[t]) for t in range(multi * (n - 1) + 1)]
