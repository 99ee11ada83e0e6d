"""``stvsr bench``: evaluation datasets, methods, timing and scores (returns data; never prints).

A clip is LR input frames ``L(0..N-1)`` (uint8 RGB ``[h, w, 3]``) and ground truth ``H(t)``
(uint8 RGB ``[2h, 2w, 3]``) for some of ``t = 0..2N-2``: keyframes at even ``t`` (``H(2i)``
is the truth for ``L(i)`` upscaled), intermediates at odd ``t``. Every method outputs all
``2N-1`` frames; each output frame that has a truth is scored.

Datasets (``--dataset``), read in their native layouts:

* ``vimeo90k``: ``tri_testlist.txt`` + ``sequences/XXXXX/YYYY/im1..im3.png`` (N=2), or
  ``sep_testlist.txt`` + ``im1..im7.png`` (N=4: LR from im1, im3, im5, im7; truth all 7).
* ``ucf101``: ``<id>/frame_00.png, frame_01_gt.png, frame_02.png`` (DVF/DAIN) or
  ``<id>/frame0.png, frame1.png, frame2.png`` (frame1 = middle truth), N=2.
* ``middlebury``: ``other-data/<S>/frame10.png, frame11.png`` + ``other-gt-interp/<S>/frame10i11.png``.
* ``fisr``: ``LR_vid_<v>_fr_<n>_seq_{1,3,5,7,9}.png`` (input, used as given) and
  ``HR_vid_<v>_fr_<n>_seq_{2..8}.png`` (truth at 2× size), anywhere under the folder (the
  dataset keeps them in ``LR_LFR/`` and ``HR_HFR/``); the PNG channels hold BT.601 studio-range
  Y, Cb, Cr and are converted to RGB. Output ``t = seq - 1``: keyframes seq 3, 5, 7 (t=2, 4, 6),
  intermediates seq 2, 4, 6, 8 (t=1, 3, 5, 7); seq 1 and 9 have no truth.
* ``videos``: every video file under the folder, first ``max_frames`` frames (odd count).

Except for FISR, the LR frames are made by the protocol (``PROTOCOL``): truth cropped to even
size, even-``t`` frames downscaled ×0.5 by ``stvsr_cli.data.degrade`` and rounded to 8 bits.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import re
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .errors import StvsrError
from .metrics import PSNR_CAP, psnr, psnr_y, ssim

DATASETS = ("vimeo90k", "ucf101", "middlebury", "fisr", "videos")
BASELINES = ("bicubic_blend", "mci_lanczos")
MODEL_ROWS = {"model_st": "h_st", "model_ts": "h_ts", "model_fused": "h_fused", "model_refined": "h_refined"}
METHODS = BASELINES + tuple(MODEL_ROWS)
DEGRADATIONS = ("bicubic_aa", "bicubic")
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
_DEGRADATION_TEXT = {
    "bicubic_aa": "antialiased bicubic (torch interpolate, antialias=True)",
    "bicubic": "non-antialiased bicubic (torch interpolate, antialias=False; the paper's code)",
}


class BenchError(StvsrError):
    """A bench option or dataset problem the user can fix (one-line message)."""


class SkippedClip(BenchError):
    """A clip that cannot be scored (e.g. a video shorter than 3 frames): warned about, skipped."""


# --------------------------------------------------------------------------------- datasets


@dataclass
class Clip:
    """One scored sequence: ``lr`` N frames ``[h, w, 3]`` uint8; ``gt`` maps ``t`` to ``[2h, 2w, 3]``."""

    name: str
    lr: list[np.ndarray]
    gt: dict[int, np.ndarray]

    @property
    def out_frames(self) -> int:
        return 2 * len(self.lr) - 1


@dataclass
class ClipSource:
    """A clip not read yet: ``load()`` decodes it. ``frames`` is 2N-1 when known, else 0."""

    name: str
    load: Callable[[], Clip]
    frames: int = 0


def _even_crop(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def clip_from_hr(name: str, hr: list[np.ndarray], antialias: bool = True) -> Clip:
    """The protocol's clip for real frames ``hr`` (``2N-1`` uint8 RGB ``[H, W, 3]``): truth
    cropped to even size, LR = even frames downscaled ×0.5 (``degrade``) and rounded."""
    from .data import degrade

    if len(hr) % 2 == 0:
        raise BenchError(f"{name}: a clip needs an odd number of frames (2N-1), got {len(hr)}")
    hr = [_even_crop(f) for f in hr]
    if any(f.shape != hr[0].shape for f in hr):
        raise BenchError(f"{name}: frames differ in size ({hr[0].shape[1]}x{hr[0].shape[0]} and others)")
    if hr[0].shape[0] < 2 or hr[0].shape[1] < 2:
        raise BenchError(f"{name}: frames are too small ({hr[0].shape[1]}x{hr[0].shape[0]})")
    x = torch.from_numpy(np.stack(hr[0::2])).permute(0, 3, 1, 2).float() / 255.0  # [N, 3, H, W]
    lr = (degrade(x, antialias=antialias) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return Clip(name, [np.ascontiguousarray(f) for f in lr], dict(enumerate(hr)))


def _image_clip(name: str, paths: list[Path], antialias: bool) -> ClipSource:
    from .data import read_image

    return ClipSource(name, lambda: clip_from_hr(name, [read_image(p) for p in paths], antialias), len(paths))


def _natural_key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _vimeo(root: Path, antialias: bool) -> tuple[list[ClipSource], list[str]]:
    from .data import read_list

    if (root / "tri_testlist.txt").is_file():
        list_file, count = root / "tri_testlist.txt", 3
    elif (root / "sep_testlist.txt").is_file():
        list_file, count = root / "sep_testlist.txt", 7
    else:
        raise BenchError(f"vimeo90k: no tri_testlist.txt or sep_testlist.txt in {root}")
    seq_root = root / "sequences" if (root / "sequences").is_dir() else root
    sources, missing = [], []
    for entry in read_list(list_file):
        paths = [seq_root / entry / f"im{k}.png" for k in range(1, count + 1)]
        if all(p.is_file() for p in paths):
            sources.append(_image_clip(entry, paths, antialias))
        else:
            missing.append(entry)
    warnings = []
    if missing:
        warnings.append(
            f"vimeo90k: {len(missing)} listed sequence(s) lack im1..im{count}.png, skipped (first: {missing[0]})"
        )
    return sources, warnings


_UCF_NAMES = (("frame_00.png", "frame_01_gt.png", "frame_02.png"), ("frame0.png", "frame1.png", "frame2.png"))


def _ucf101(root: Path, antialias: bool) -> tuple[list[ClipSource], list[str]]:
    sources = []
    for folder in sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: _natural_key(d.name)):
        for names in _UCF_NAMES:
            paths = [folder / n for n in names]
            if all(p.is_file() for p in paths):
                sources.append(_image_clip(folder.name, paths, antialias))
                break
    return sources, []


def _middlebury(root: Path, antialias: bool) -> tuple[list[ClipSource], list[str]]:
    gt_root, data_root = root / "other-gt-interp", root / "other-data"
    if not gt_root.is_dir() or not data_root.is_dir():
        return [], []
    sources, warnings = [], []
    for scene in sorted(d.name for d in gt_root.iterdir() if d.is_dir()):
        paths = [
            data_root / scene / "frame10.png",
            gt_root / scene / "frame10i11.png",
            data_root / scene / "frame11.png",
        ]
        if all(p.is_file() for p in paths):
            sources.append(_image_clip(scene, paths, antialias))
        else:
            warnings.append(f"middlebury: {scene} lacks frame10.png/frame11.png/frame10i11.png, skipped")
    return sources, warnings


_FISR_NAME = re.compile(r"^(LR|HR)_vid_(\w+?)_fr_(\w+?)_seq_(\d+)\.png$", re.IGNORECASE)
FISR_LR_SEQ = (1, 3, 5, 7, 9)
FISR_HR_SEQ = (2, 3, 4, 5, 6, 7, 8)
# BT.601 studio range, RGB in [0, 1] -> YCbCr in [0, 255]: ycc = offset + M @ rgb (MATLAB rgb2ycbcr)
_YCC_MATRIX = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
_YCC_OFFSET = np.array([16.0, 128.0, 128.0])


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """BT.601 studio-range Y, Cb, Cr (uint8 ``[H, W, 3]`` as stored in FISR PNGs) -> uint8 RGB."""
    inverse = np.linalg.inv(_YCC_MATRIX) * 255.0
    rgb = (ycc.astype(np.float64) - _YCC_OFFSET) @ inverse.T
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _fisr(root: Path) -> tuple[list[ClipSource], list[str]]:
    groups: dict[tuple[str, str], dict[str, dict[int, Path]]] = {}
    for path in root.rglob("*.png"):
        m = _FISR_NAME.match(path.name)
        if m:
            kind, vid, fr, seq = m.group(1).upper(), m.group(2), m.group(3), int(m.group(4))
            groups.setdefault((vid, fr), {"LR": {}, "HR": {}})[kind][seq] = path
    sources, no_lr, no_gt = [], [], []
    for (vid, fr), files in sorted(groups.items(), key=lambda kv: (_natural_key(kv[0][0]), _natural_key(kv[0][1]))):
        name = f"vid_{vid}_fr_{fr}"
        if not all(s in files["LR"] for s in FISR_LR_SEQ):
            no_lr.append(name)
        elif not all(s in files["HR"] for s in FISR_HR_SEQ):
            no_gt.append(name)
        else:
            lr_paths = [files["LR"][s] for s in FISR_LR_SEQ]
            hr_paths = {s - 1: files["HR"][s] for s in FISR_HR_SEQ}
            sources.append(ClipSource(name, lambda n=name, lp=lr_paths, hp=hr_paths: _fisr_clip(n, lp, hp), 9))
    warnings = []
    if no_lr:
        warnings.append(f"fisr: {len(no_lr)} sequence(s) lack LR seq 1,3,5,7,9, skipped (first: {no_lr[0]})")
    if no_gt:
        msg = (
            f"fisr: {len(no_gt)} sequence(s) have LR input but no HR ground truth "
            f"(HR_vid_<v>_fr_<n>_seq_2..8.png, e.g. in HR_HFR/): {', '.join(no_gt[:3])}"
        )
        if not sources:
            raise BenchError(msg + "; nothing to score")
        warnings.append(msg + "; skipped")
    return sources, warnings


def _fisr_clip(name: str, lr_paths: list[Path], hr_paths: dict[int, Path]) -> Clip:
    from .data import read_image

    lr = [ycbcr_to_rgb(read_image(p)) for p in lr_paths]
    gt = {t: ycbcr_to_rgb(read_image(p)) for t, p in hr_paths.items()}
    h, w = lr[0].shape[:2]
    if any(f.shape != lr[0].shape for f in lr):
        raise BenchError(f"fisr {name}: LR frames differ in size")
    for t, f in gt.items():
        if f.shape != (2 * h, 2 * w, 3):
            raise BenchError(
                f"fisr {name}: HR seq {t + 1} is {f.shape[1]}x{f.shape[0]}, expected {2 * w}x{2 * h} "
                f"(2x the LR {w}x{h})"
            )
    return Clip(name, lr, gt)


def _videos(root: Path, antialias: bool, max_frames: int) -> tuple[list[ClipSource], list[str]]:
    from .data import VIDEO_EXTENSIONS
    from .video import probe

    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS),
        key=lambda p: _natural_key(str(p.relative_to(root))),
    )
    sources, warnings = [], []
    for path in files:
        name = str(path.relative_to(root))
        try:
            count = probe(path).frames
        except StvsrError as e:
            warnings.append(f"videos: {name} skipped: {e}")
            continue
        if max_frames:
            count = min(count, max_frames) if count else max_frames
        frames = count - (1 - count % 2) if count else 0
        sources.append(ClipSource(name, lambda n=name, p=path: _video_clip(n, p, antialias, max_frames), frames))
    return sources, warnings


def _video_clip(name: str, path: Path, antialias: bool, max_frames: int) -> Clip:
    from .video import read_frames

    hr = [rgb for rgb, _ in read_frames(path, max_frames=max_frames)]
    if len(hr) < 3:
        raise SkippedClip(f"videos: {name} skipped: needs at least 3 frames, has {len(hr)}")
    return clip_from_hr(name, hr[: len(hr) - (1 - len(hr) % 2)], antialias)


_LAYOUT_HINTS = {
    "vimeo90k": "tri_testlist.txt or sep_testlist.txt with sequences/XXXXX/YYYY/im*.png",
    "ucf101": "<id>/frame_00.png, frame_01_gt.png, frame_02.png (or frame0/1/2.png)",
    "middlebury": "other-data/<S>/frame10.png, frame11.png and other-gt-interp/<S>/frame10i11.png",
    "fisr": "LR_vid_<v>_fr_<n>_seq_{1,3,5,7,9}.png and HR_vid_<v>_fr_<n>_seq_{2..8}.png",
    "videos": "video files (.mp4, .mkv, .mov, .webm, .y4m, ...)",
}


def find_clips(
    dataset: str, root: str | os.PathLike, antialias: bool = True, max_frames: int = 0
) -> tuple[list[ClipSource], list[str]]:
    """The clips of ``root`` in ``dataset``'s native layout, sorted, and warnings about skipped
    ones. Raises ``BenchError`` for an unknown dataset, a missing folder or no usable clip."""
    root = Path(root)
    if dataset not in DATASETS:
        raise BenchError(f"unknown dataset {dataset!r}; choose {', '.join(DATASETS)}")
    if not root.exists():
        raise BenchError(f"--data folder not found: {root}")
    if not root.is_dir():
        raise BenchError(f"--data is not a folder: {root}")
    if dataset == "vimeo90k":
        sources, warnings = _vimeo(root, antialias)
    elif dataset == "ucf101":
        sources, warnings = _ucf101(root, antialias)
    elif dataset == "middlebury":
        sources, warnings = _middlebury(root, antialias)
    elif dataset == "fisr":
        sources, warnings = _fisr(root)
    else:
        sources, warnings = _videos(root, antialias, max_frames)
    if not sources:
        raise BenchError(f"no {dataset} sequences found in {root} (expected {_LAYOUT_HINTS[dataset]})")
    return sources, warnings


# ---------------------------------------------------------------------------------- methods


def parse_methods(text: str | None) -> tuple[str, ...]:
    """``"a,b"`` -> the known methods in canonical order; ``None``/``"all"`` -> all of them."""
    if text is None or text.strip().lower() == "all":
        return METHODS
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise BenchError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if not names:
        raise BenchError(f"--methods is empty; choose from {', '.join(METHODS)}")
    return tuple(m for m in METHODS if m in names)


@torch.inference_mode()
def model_outputs(upscaler, lr: list[np.ndarray], rows: tuple[str, ...]) -> dict[str, list[np.ndarray]]:
    """The model rows for LR frames ``lr`` (uint8 ``[h, w, 3]``): ``{row: 2N-1 uint8 frames}``.

    Keyframes are ``model.upscale(L(i))``, shared by every row; the intermediates of each pair
    are ``streams`` + ``fuse`` (what ``model(l0, l1)`` computes, reusing the keyframes),
    padded and cropped as ``Upscaler`` does (``keyframes``, ``pair_inputs``, ``to_frames``).
    """
    model = upscaler.model
    h, w = lr[0].shape[:2]
    keys: list[np.ndarray] = []
    mids: dict[str, list[np.ndarray]] = {row: [] for row in rows}
    prev = None
    for frame in lr:
        x = upscaler.to_tensor([frame])  # [1, 3, h, w]
        hr = upscaler.keyframes(x)  # [1, 3, 2h, 2w]
        x, hr_padded = upscaler.pair_inputs(x, hr)
        if prev is not None:
            with upscaler.arithmetic():
                out = model.streams(prev[0], x, prev[1], hr_padded)
                out.update(model.fuse(out["h_st"], out["h_ts"]))
            for row in rows:
                mids[row].append(upscaler.to_frames(out[MODEL_ROWS[row]], 2 * h, 2 * w)[0])
        keys.append(upscaler.to_frames(hr, 2 * h, 2 * w)[0])
        prev = (x, hr_padded)
    return {row: _interleave(keys, mids[row]) for row in rows}


def _interleave(keys: list[np.ndarray], mids: list[np.ndarray]) -> list[np.ndarray]:
    out = [keys[0]]
    for mid, key in zip(mids, keys[1:], strict=True):
        out += [mid, key]
    return out


@dataclass
class Engine:
    """One computation producing one or more rows: ``run(lr) -> {row: 2N-1 frames}``."""

    name: str
    rows: tuple[str, ...]
    run: Callable[[list[np.ndarray]], dict[str, list[np.ndarray]]]
    device: torch.device


def build_engines(
    methods: tuple[str, ...], model_path=None, device: str = "auto", precision: str = "auto"
) -> tuple[list[Engine], dict[str, Any]]:
    """Engines for ``methods`` and facts about the model (path, info) when one is used."""
    from .baselines import bicubic_blend, mci_lanczos

    cpu = torch.device("cpu")
    engines = []
    if "bicubic_blend" in methods:
        engines.append(
            Engine("bicubic_blend", ("bicubic_blend",), lambda lr: {"bicubic_blend": bicubic_blend(lr)}, cpu)
        )
    if "mci_lanczos" in methods:
        engines.append(Engine("mci_lanczos", ("mci_lanczos",), lambda lr: {"mci_lanczos": mci_lanczos(lr)}, cpu))
    rows = tuple(m for m in methods if m in MODEL_ROWS)
    facts: dict[str, Any] = {}
    if rows:
        from .pipeline import Upscaler, resolve_device
        from .weights import load_model, resolve_weights

        dev = resolve_device(device)
        model = load_model(model_path)
        upscaler = Upscaler(model, dev, precision)
        facts = {
            "model": str(resolve_weights(model_path)),
            "model_info": getattr(model, "info", {}),
            "precision": upscaler.precision,
            # the row whose new frames `stvsr upscale` writes with this model
            "upscale_row": "model_st" if model.config.mid_from == "st" else "model_refined",
        }
        engines.append(Engine("model", rows, lambda lr: model_outputs(upscaler, lr, rows), dev))
    return engines, facts


# ------------------------------------------------------------------------------ measurement


def _proc_status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _release_free_memory() -> None:
    """Give freed heap pages back to the OS (glibc ``malloc_trim``) so that RSS growth during
    the next measurement is not hidden by memory an earlier method freed but kept mapped."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _maxrss_kb() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if platform.system() == "Darwin" else rss  # bytes on macOS, KiB on Linux


def measure(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float, float]:
    """Run ``fn()``; return its result, wall seconds (device synced) and peak memory in MiB.

    Memory is the peak above what was in use when ``fn`` started: on CUDA the allocator's
    ``max_memory_allocated``; on the CPU the process's peak RSS (``VmHWM``, reset through
    ``/proc/self/clear_refs``; elsewhere the growth of ``ru_maxrss``, which misses peaks
    below an earlier one). It includes the outputs ``fn`` returns.
    """
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        _release_free_memory()
        exact = _reset_peak_rss() and _proc_status_kb("VmRSS") is not None
        base = _proc_status_kb("VmRSS") if exact else _maxrss_kb()
    start = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if cuda:
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        peak = ((_proc_status_kb("VmHWM") if exact else _maxrss_kb()) - base) / 1024
    return result, seconds, max(peak, 0.0)


def device_name(device: torch.device) -> str:
    """``"cuda: NVIDIA H100 ..."`` or ``"cpu: <model name>, N threads"``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "mps: Apple GPU"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"cpu: {model}, {threads} thread{'s' if threads != 1 else ''}"


# ---------------------------------------------------------------------------------- scoring


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def score(frames: list[np.ndarray], gt: dict[int, np.ndarray], luma: bool = False) -> dict[str, Any]:
    """Per-frame and per-clip scores of ``frames`` (``2N-1`` outputs) against ``gt``."""
    per_frame = []
    for t in sorted(gt):
        item = {
            "t": t,
            "kind": "key" if t % 2 == 0 else "mid",
            "psnr": psnr(frames[t], gt[t]),
            "ssim": ssim(frames[t], gt[t]),
        }
        if luma:
            item["psnr_y"] = psnr_y(frames[t], gt[t])
        per_frame.append(item)
    out: dict[str, Any] = {}
    metrics = ("psnr", "ssim", "psnr_y") if luma else ("psnr", "ssim")
    for kind in ("key", "mid"):
        for metric in metrics:
            out[f"{kind}_{metric}"] = _mean([f[metric] for f in per_frame if f["kind"] == kind])
    out["frames"] = per_frame
    return out


# ----------------------------------------------------------------------------------- runner


@dataclass
class BenchConfig:
    dataset: str
    data: str | os.PathLike
    methods: tuple[str, ...] = METHODS
    model: str | os.PathLike | None = None  # None: the bundled weights
    device: str = "auto"
    precision: str = "auto"
    degradation: str = "bicubic_aa"
    metric: str = "rgb"  # "y" adds BT.601 luma PSNR
    limit: int = 0  # sequences, 0 = all
    max_frames: int = 0  # videos: first frames per clip, 0 = all
    save_examples: str | os.PathLike | None = None


@dataclass
class BenchResult:
    protocol: dict[str, Any]
    sequences: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "sequences": self.sequences, "summary": self.summary}


def protocol_text(dataset: str, degradation: str) -> str:
    """The evaluation protocol in words (printed above the table and stored in the JSON)."""
    if dataset == "fisr":
        return FISR_PROTOCOL.format(cap=PSNR_CAP)
    return PROTOCOL.format(degradation=_DEGRADATION_TEXT[degradation], cap=PSNR_CAP)


def _check_config(config: BenchConfig) -> None:
    if config.degradation not in DEGRADATIONS:
        raise BenchError(f"--degradation must be {' or '.join(DEGRADATIONS)}, not {config.degradation!r}")
    if config.metric not in METRICS:
        raise BenchError(f"--metric must be {' or '.join(METRICS)}, not {config.metric!r}")
    if config.limit < 0 or config.max_frames < 0:
        raise BenchError("--limit and --max-frames must be 0 (all) or positive")
    if config.max_frames in (1, 2):
        raise BenchError("--max-frames must be at least 3 (a keyframe pair and its intermediate)")
    if not config.methods:
        raise BenchError(f"no method selected; choose from {', '.join(METHODS)}")
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise BenchError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")


def run_bench(config: BenchConfig, progress=None) -> BenchResult:
    """Score every method of ``config`` on every clip of its dataset.

    ``progress`` (optional) gets ``start(total_frames_or_None, description)`` and
    ``advance(n)`` for every output frame produced. Raises ``BenchError`` (or another
    ``StvsrError``) with a one-line message for anything the user can fix.
    """
    _check_config(config)
    methods = tuple(m for m in METHODS if m in config.methods)
    sources, warnings = find_clips(config.dataset, config.data, config.degradation == "bicubic_aa", config.max_frames)
    if config.limit:
        sources = sources[: config.limit]
    engines, facts = build_engines(methods, config.model, config.device, config.precision)
    luma = config.metric == "y"
    examples_dir = Path(config.save_examples) if config.save_examples else None
    if examples_dir is not None:
        try:
            examples_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BenchError(f"cannot create the --save-examples folder {examples_dir}: {e.strerror or e}") from None
    if progress is not None:
        known = all(s.frames for s in sources)
        progress.start(sum(s.frames for s in sources) * len(engines) if known else None, "bench")

    totals = {m: {"frames": 0, "seconds": 0.0, "peak": 0.0} for m in methods}
    sequences = []
    for source in sources:
        try:
            clip = source.load()
        except SkippedClip as e:
            warnings.append(str(e))
            continue
        if not sequences:  # warm-up (allocations, kernels): not timed
            for engine in engines:
                engine.run(clip.lr[:2])
        entry = {
            "name": clip.name,
            "lr_size": [clip.lr[0].shape[1], clip.lr[0].shape[0]],
            "hr_size": [2 * clip.lr[0].shape[1], 2 * clip.lr[0].shape[0]],
            "frames": clip.out_frames,
            "scored_key": sum(1 for t in clip.gt if t % 2 == 0),
            "scored_mid": sum(1 for t in clip.gt if t % 2),
            "results": [],
        }
        picked: dict[str, np.ndarray] = {}
        example_t = _example_t(clip)
        for engine in engines:
            outputs, seconds, peak = measure(lambda e=engine, lr=clip.lr: e.run(lr), engine.device)
            for row in engine.rows:
                frames = outputs[row]
                if len(frames) != clip.out_frames:
                    raise StvsrError(f"{row} produced {len(frames)} frames for {clip.name}, expected {clip.out_frames}")
                result = {
                    "method": row,
                    **score(frames, clip.gt, luma),
                    "seconds": seconds,
                    "fps": clip.out_frames / seconds if seconds > 0 else None,
                    "peak_mem_mb": peak,
                }
                entry["results"].append(result)
                totals[row]["frames"] += clip.out_frames
                totals[row]["seconds"] += seconds
                totals[row]["peak"] = max(totals[row]["peak"], peak)
                if examples_dir is not None:
                    picked[row] = frames[example_t]
            del outputs
            if progress is not None:
                progress.advance(clip.out_frames)
        entry["results"].sort(key=lambda r: methods.index(r["method"]))
        if examples_dir is not None:
            from .examples import save_examples

            try:
                save_examples(examples_dir, clip, example_t, picked, entry["results"], facts.get("upscale_row"))
            except OSError as e:
                raise BenchError(f"cannot write examples into {examples_dir}: {e.strerror or e}") from None
        sequences.append(entry)

    if not sequences:
        raise BenchError(f"no {config.dataset} sequence in {config.data} could be scored: {'; '.join(warnings)}")
    device_of = {row: e.device for e in engines for row in e.rows}
    summary = []
    for m in methods:
        rows = [r for s in sequences for r in s["results"] if r["method"] == m]
        item: dict[str, Any] = {"method": m}
        for key in ("key_psnr", "mid_psnr", "key_ssim", "mid_ssim") + (("key_psnr_y", "mid_psnr_y") if luma else ()):
            item[key] = _mean([r[key] for r in rows if r[key] is not None])
        t = totals[m]
        item["fps"] = t["frames"] / t["seconds"] if t["seconds"] > 0 else None
        item["ms_per_frame"] = 1000 * t["seconds"] / t["frames"] if t["frames"] else None
        item["peak_mem_mb"] = t["peak"]
        item["device"] = device_name(device_of[m])
        item["sequences"] = len(rows)
        summary.append(item)

    protocol = {
        "text": protocol_text(config.dataset, config.degradation),
        "dataset": config.dataset,
        "data": str(config.data),
        "degradation": config.degradation if config.dataset != "fisr" else "given (FISR LR frames)",
        "metric": config.metric,
        "psnr_cap_db": PSNR_CAP,
        "ssim": "Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, L 255, valid windows, per RGB channel, averaged",
        "methods": list(methods),
        "sequences": len(sequences),
        "limit": config.limit,
        "max_frames": config.max_frames,
        "device": device_name(next((e.device for e in engines if e.name == "model"), torch.device("cpu"))),
        "memory": "peak above the start of each method's run (CUDA: max_memory_allocated; CPU: peak RSS)",
        "threads": torch.get_num_threads(),
        "stvsr": __version__,
        "torch": torch.__version__,
        "warnings": warnings,
        **facts,
    }
    return BenchResult(protocol, sequences, summary, warnings)


def _example_t(clip: Clip) -> int:
    """The scored intermediate nearest the middle of the clip (a keyframe if none)."""
    scored = sorted(clip.gt, key=lambda t: (t % 2 == 0, abs(t - (clip.out_frames - 1) / 2), t))
    return scored[0]


# ---------------------------------------------------------------------------------- outputs


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json(result: BenchResult, path: str | os.PathLike) -> None:
    """``{"protocol": {...}, "sequences": [...], "summary": [...]}`` (strict JSON: no NaN/inf)."""
    Path(path).write_text(json.dumps(_finite(result.to_dict()), indent=2, allow_nan=False) + "\n", encoding="utf-8")


CSV_FIELDS = (
    "sequence",
    "method",
    "key_psnr",
    "mid_psnr",
    "key_ssim",
    "mid_ssim",
    "key_psnr_y",
    "mid_psnr_y",
    "fps",
    "ms_per_frame",
    "peak_mem_mb",
)


def csv_rows(result: BenchResult) -> Iterator[dict[str, Any]]:
    """One row per (sequence, method), then one per method with ``sequence = "ALL"`` (the summary)."""
    for seq in result.sequences:
        for r in seq["results"]:
            ms = 1000 * r["seconds"] / seq["frames"]
            yield {"sequence": seq["name"], **{k: r.get(k) for k in CSV_FIELDS[1:]}, "ms_per_frame": ms}
    for s in result.summary:
        yield {"sequence": "ALL", **{k: s.get(k) for k in CSV_FIELDS[1:]}}


def summary_columns(luma: bool) -> list[tuple[str, str, int]]:
    """The quality columns of a summary table: ``(header, summary key, decimals)``."""
    cols = [("key PSNR", "key_psnr", 2), ("mid PSNR", "mid_psnr", 2), ("key SSIM", "key_ssim", 4)]
    cols += [("mid SSIM", "mid_ssim", 4)]
    return cols + ([("key PSNR-Y", "key_psnr_y", 2), ("mid PSNR-Y", "mid_psnr_y", 2)] if luma else [])


def format_value(value: float | None, digits: int) -> str:
    """A table cell: ``value`` to ``digits`` decimals, ``-`` where there is none."""
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_tables(result: BenchResult) -> str:
    """Paper-style Markdown: the summary (PSNR in dB to 2 decimals, SSIM to 4, output frames/s),
    then mid-frame PSNR per sequence and method, the table behind per-scene claims."""
    cols = summary_columns(result.protocol.get("metric") == "y") + [("frames/s", "fps", 2)]

    def table(header: list[str], rows: list[list[str]]) -> list[str]:
        align = ["---"] + ["---:"] * (len(header) - 1)
        return ["| " + " | ".join(r) + " |" for r in (header, align, *rows)]

    summary = [[s["method"], *(format_value(s.get(key), digits) for _, key, digits in cols)] for s in result.summary]
    lines = table(["method", *(c[0] for c in cols)], summary)
    methods = [s["method"] for s in result.summary]
    per_seq = []
    for seq in result.sequences:
        mids = {r["method"]: r.get("mid_psnr") for r in seq["results"]}
        per_seq.append([seq["name"], *(format_value(mids.get(m), 2) for m in methods)])
    lines += ["", "Mid-frame PSNR per sequence:", "", *table(["sequence", *methods], per_seq)]
    return "\n".join(lines) + "\n"


def write_markdown(result: BenchResult, path: str | os.PathLike) -> None:
    Path(path).write_text(markdown_tables(result), encoding="utf-8")


def write_csv(result: BenchResult, path: str | os.PathLike) -> None:
    luma = result.protocol.get("metric") == "y"
    fields = [f for f in CSV_FIELDS if luma or not f.endswith("_y")]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in csv_rows(result):
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in fields})
