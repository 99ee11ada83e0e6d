"""Evaluation clips read from each dataset's native layout (see the package docstring)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import StvsrError
from ..files import natural_key
from .protocol import DATASETS, BenchError, SkippedClip


@dataclass
class Clip:
    """One scored sequence: ``lr`` N frames ``[h, w, 3]`` uint8; ``gt`` maps ``t`` to ``[2h, 2w, 3]``.
    ``multi`` output frames per input interval: keyframes at ``t`` multiple of it (2: even ``t``)."""

    name: str
    lr: list[np.ndarray]
    gt: dict[int, np.ndarray]
    multi: int = 2

    @property
    def out_frames(self) -> int:
        return self.multi * (len(self.lr) - 1) + 1


@dataclass
class ClipSource:
    """A clip not read yet: ``load()`` decodes it. ``frames`` is 2N-1 when known, else 0."""

    name: str
    load: Callable[[], Clip]
    frames: int = 0


def _even_crop(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def clip_from_hr(name: str, hr: list[np.ndarray], antialias: bool = True, multi: int = 2) -> Clip:
    """The protocol's clip for real frames ``hr`` (``multi (N-1) + 1`` uint8 RGB ``[H, W, 3]``,
    2N-1 by default): truth cropped to even size, LR = every ``multi``-th frame (the even ones
    by default) downscaled ×0.5 (``degrade``) and rounded."""
    from ..degradation import degrade

    if len(hr) % multi != 1 % multi or len(hr) < 1:
        raise BenchError(f"{name}: a clip needs {multi}(N-1)+1 frames, got {len(hr)}")
    hr = [_even_crop(f) for f in hr]
    if any(f.shape != hr[0].shape for f in hr):
        raise BenchError(f"{name}: frames differ in size ({hr[0].shape[1]}x{hr[0].shape[0]} and others)")
    if hr[0].shape[0] < 2 or hr[0].shape[1] < 2:
        raise BenchError(f"{name}: frames are too small ({hr[0].shape[1]}x{hr[0].shape[0]})")
    x = torch.from_numpy(np.stack(hr[0::multi])).permute(0, 3, 1, 2).float() / 255.0  # [N, 3, H, W]
    lr = (degrade(x, antialias=antialias) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return Clip(name, [np.ascontiguousarray(f) for f in lr], dict(enumerate(hr)), multi)


def _image_clip(name: str, paths: list[Path], antialias: bool) -> ClipSource:
    from ..data import read_image

    return ClipSource(name, lambda: clip_from_hr(name, [read_image(p) for p in paths], antialias), len(paths))


def _vimeo(root: Path, antialias: bool) -> tuple[list[ClipSource], list[str]]:
    from ..data import read_list

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
    for folder in sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name)):
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
    for (vid, fr), files in sorted(groups.items(), key=lambda kv: (natural_key(kv[0][0]), natural_key(kv[0][1]))):
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
    from ..data import read_image

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


def _videos(root: Path, antialias: bool, max_frames: int, multi: int = 2) -> tuple[list[ClipSource], list[str]]:
    from ..data import VIDEO_EXTENSIONS
    from ..video import probe

    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS),
        key=lambda p: natural_key(str(p.relative_to(root))),
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
        frames = (count - 1) // multi * multi + 1 if count else 0
        sources.append(ClipSource(name, lambda n=name, p=path: _video_clip(n, p, antialias, max_frames, multi), frames))
    return sources, warnings


def _video_clip(name: str, path: Path, antialias: bool, max_frames: int, multi: int = 2) -> Clip:
    from ..video import read_frames

    hr = [rgb for rgb, _ in read_frames(path, max_frames=max_frames)]
    if len(hr) < multi + 1:
        raise SkippedClip(f"videos: {name} skipped: needs at least {multi + 1} frames, has {len(hr)}")
    return clip_from_hr(name, hr[: (len(hr) - 1) // multi * multi + 1], antialias, multi)


_LAYOUT_HINTS = {
    "vimeo90k": "tri_testlist.txt or sep_testlist.txt with sequences/XXXXX/YYYY/im*.png",
    "ucf101": "<id>/frame_00.png, frame_01_gt.png, frame_02.png (or frame0/1/2.png)",
    "middlebury": "other-data/<S>/frame10.png, frame11.png and other-gt-interp/<S>/frame10i11.png",
    "fisr": "LR_vid_<v>_fr_<n>_seq_{1,3,5,7,9}.png and HR_vid_<v>_fr_<n>_seq_{2..8}.png",
    "videos": "video files (.mp4, .mkv, .mov, .webm, .y4m, ...)",
}


def find_clips(
    dataset: str, root: str | os.PathLike, antialias: bool = True, max_frames: int = 0, multi: int = 2
) -> tuple[list[ClipSource], list[str]]:
    """The clips of ``root`` in ``dataset``'s native layout, sorted, and warnings about skipped
    ones. Raises ``BenchError`` for an unknown dataset, a missing folder or no usable clip.
    ``multi`` other than 2 (inputs ``multi`` frames apart) needs truth at every frame: ``videos``."""
    if multi != 2 and dataset != "videos":
        raise BenchError(f"--multi {multi} needs truth at every frame between inputs: use --dataset videos")
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
        sources, warnings = _videos(root, antialias, max_frames, multi)
    if not sources:
        raise BenchError(f"no {dataset} sequences found in {root} (expected {_LAYOUT_HINTS[dataset]})")
    return sources, warnings
