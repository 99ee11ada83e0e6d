"""Training data: real frame triplets from several layouts, degraded to LR on the fly.

Layouts (``detect_layout``): ``vimeo_triplet`` (``sequences/XXXXX/YYYY/im1-3.png`` with
``tri_trainlist.txt``/``tri_testlist.txt``), ``vimeo_septuplet`` (``im1-7.png`` with
``sep_trainlist.txt``/``sep_testlist.txt``), ``videos`` (a folder of video files),
``frame_folders`` (a folder of folders of images, each one sequence), ``stills`` (photos
moved synthetically: exact ground truth for motion).

A sample is an HR triplet ``[3 frames, 3, H, W]`` uint8 (frames t-1, t, t+1); ``degrade``
makes the LR frames. Sample ``i`` depends only on ``(seed, i)``, which keeps resumed runs
identical to uninterrupted ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .degradation import degrade  # noqa: F401 (training data is degraded by the protocol's own)
from .errors import StvsrError
from .names import VIDEO_MEMORY_GIB
from .scene import coarse_view

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".y4m"}
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
LAYOUTS = ("vimeo_triplet", "vimeo_septuplet", "videos", "frame_folders", "stills")


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file to uint8 RGB ``[H, W, 3]`` (through PyAV's image decoders)."""
    import av

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, StopIteration, OSError) as e:
        raise StvsrError(f"cannot read image {path}: {e}") from None


def read_list(path: Path) -> list[str]:
    """Read a Vimeo list file: one ``XXXXX/YYYY`` per line; CRLF, blanks and spaces tolerated."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")  # -sig: a leading BOM is not data
    return [line.strip() for line in text.splitlines() if line.strip()]


def detect_layout(root: Path) -> str:
    if not root.is_dir():
        raise StvsrError(f"training data folder not found: {root}")
    if (root / "tri_trainlist.txt").exists() or (root / "tri_testlist.txt").exists():
        return "vimeo_triplet"
    if (root / "sep_trainlist.txt").exists() or (root / "sep_testlist.txt").exists():
        return "vimeo_septuplet"
    files = [p for p in root.rglob("*") if p.is_file()]
    if any(p.suffix.lower() in VIDEO_EXTENSIONS for p in files):
        return "videos"
    subdirs = [d for d in root.iterdir() if d.is_dir()]
    if any(_images_in(d) for d in [root, *subdirs]):
        return "frame_folders" if any(len(_images_in(d)) >= 3 for d in [root, *subdirs]) else "stills"
    raise StvsrError(f"no training data found in {root} (no Vimeo-90K lists, videos or image folders)")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


class Sequence:
    """A list of frames, decoded lazily (paths) or held in memory (decoded video)."""

    def __init__(self, name: str, paths: list[Path] | None = None, frames: np.ndarray | None = None):
        self.name = name
        self.paths = paths
        self.frames = frames  # [T, H, W, 3] uint8

    def __len__(self) -> int:
        return len(self.paths) if self.paths is not None else len(self.frames)

    def frame(self, i: int) -> np.ndarray:
        return read_image(self.paths[i]) if self.paths is not None else self.frames[i]


def _vimeo_sequences(root: Path, list_name: str, frames_per_seq: int) -> list[Sequence]:
    seq_root = root / "sequences" if (root / "sequences").is_dir() else root
    out = []
    for entry in read_list(root / list_name):
        folder = seq_root / entry
        paths = [folder / f"im{k}.png" for k in range(1, frames_per_seq + 1)]
        if all(p.exists() for p in paths):
            out.append(Sequence(entry, paths=paths))
    return out


def video_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


# Decoded video is held in memory (uint8 RGB) for the whole run; VIDEO_MEMORY_GIB bounds it.
WINDOW_FRAMES = 24  # consecutive frames per window when a clip is kept in windows


def share_memory(needs: list[int], budget: int) -> list[int]:
    """Split ``budget`` bytes among clips that need ``needs`` bytes each: a clip that needs less
    than an equal share gets all it needs, the others share what is left equally."""
    shares = [0] * len(needs)
    left = budget
    order = sorted(range(len(needs)), key=needs.__getitem__)
    for k, i in enumerate(order):
        shares[i] = min(needs[i], left // (len(needs) - k))
        left -= shares[i]
    return shares


def frame_windows(total: int, keep: int, window: int = WINDOW_FRAMES) -> list[tuple[int, int]]:
    """Which frames ``[(start, end), ...]`` of a clip of ``total`` frames to hold when only
    ``keep`` fit: all of them if they do, else windows of ``window`` consecutive frames (fewer
    when ``keep`` is smaller) spread evenly from the clip's start to its end."""
    if keep >= total:
        return [(0, total)]
    window = max(3, min(window, keep))
    count = max(1, keep // window)
    starts = sorted({round(i * (total - window) / max(count - 1, 1)) for i in range(count)})
    return [(start, start + window) for start in starts]


def video_sequences(
    files: list[Path], max_frames: int, memory_gib: float = VIDEO_MEMORY_GIB, names: list[str] | None = None
) -> list[list[Sequence]]:
    """Decode training clips into memory, at most ``max_frames`` frames each and about
    ``memory_gib`` GiB in all: clips too long or too large for their share are held as windows
    of consecutive frames spread over their length (a sequence per window, named ``name@start``),
    so memory stays bounded on a folder of long 4K clips too. Returns each file's sequences."""
    from .video import probe, read_frames

    infos = [probe(p) for p in files]
    totals = []
    for info in infos:
        estimate = info.frames or round(info.duration * float(info.rate))
        totals.append(min(estimate, max_frames) if estimate > 0 else max_frames)
    frame_bytes = [info.width * info.height * 3 for info in infos]
    shares = share_memory([n * b for n, b in zip(totals, frame_bytes)], int(memory_gib * 2**30))
    per_file = []
    for k, path in enumerate(files):
        sequences = []
        name = names[k] if names else path.name
        windows = frame_windows(totals[k], max(3, shares[k] // frame_bytes[k]))
        kept: dict[int, list[np.ndarray]] = {start: [] for start, _ in windows}
        for index, (rgb, _) in enumerate(read_frames(path, max_frames=windows[-1][1])):
            for start, end in windows:
                if start <= index < end:
                    kept[start].append(rgb)
        for start, end in windows:
            if kept[start]:
                label = name if (start, end) == (0, totals[k]) else f"{name}@{start}"
                sequences.append(Sequence(label, frames=np.stack(kept[start])))
        if not sequences:
            raise StvsrError(f"no frames decoded from {path}")
        per_file.append(sequences)
    return per_file


def load_sequences(
    root: Path,
    layout: str | None = None,
    split: str = "train",
    max_frames: int = 400,
    video_memory: float = VIDEO_MEMORY_GIB,
) -> list[Sequence]:
    """All sequences of ``root`` for ``split`` (``train`` or ``test``; only Vimeo layouts have a
    test list; other layouts return everything for ``train`` and nothing for ``test``). Videos
    are decoded into memory within ``video_memory`` GiB (see ``video_sequences``)."""
    root = Path(root)
    if not root.is_dir():  # also when the layout is forced: no traceback from iterdir()
        raise StvsrError(f"training data folder not found: {root}")
    layout = layout or detect_layout(root)
    if layout not in LAYOUTS:
        raise StvsrError(f"unknown data layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout in ("vimeo_triplet", "vimeo_septuplet"):
        prefix, n = ("tri", 3) if layout == "vimeo_triplet" else ("sep", 7)
        list_file = root / f"{prefix}_{split}list.txt"
        return _vimeo_sequences(root, list_file.name, n) if list_file.exists() else []
    if split != "train":
        return []
    if layout == "videos":
        files = video_files(root)
        names = [str(p.relative_to(root)) for p in files]
        return [seq for seqs in video_sequences(files, max_frames, video_memory, names) for seq in seqs]
    if layout == "stills":
        return [
            Sequence(p.stem, paths=[p])
            for d in [root, *sorted(x for x in root.iterdir() if x.is_dir())]
            for p in _images_in(d)
        ]
    folders = [root, *sorted(d for d in root.rglob("*") if d.is_dir())]
    return [Sequence(str(d.relative_to(root)) or ".", paths=_images_in(d)) for d in folders if len(_images_in(d)) >= 3]


@dataclass(frozen=True)
class SampleConfig:
    crop: int = 128  # HR crop side, even
    strides: tuple[int, ...] = (1, 2, 3)  # frame strides (more motion from larger ones)
    # strides from a sample's first frame to its last: n = 2 gives the frame halfway (t = 1/2);
    # n > 2 gives the frame k strides in, k in 1..n-1 (t = k/n), for frames at any t
    spans: tuple[int, ...] = (2,)
    max_still_shift: int = 12  # HR pixels per frame for synthetic pans of stills
    # each sample's content is shown at a random scale s in [min_scale, 1]: a crop of side
    # crop / s is resized to crop (antialiased bicubic). s < 1 turns soft or compressed source
    # footage into sharper, cleaner HR truth (and shrinks its motion by s); 1: no resampling
    min_scale: float = 1.0
    # the enlarged crop is capped at a small source's side (False: mirror-padded past it, how
    # samples were drawn before the cap existed; kept so that the recipe reruns such a stage)
    cap_to_source: bool = True


class TripletSampler:
    """Deterministic random triplets from sequences (real motion) and stills (synthetic pans)."""

    def __init__(
        self,
        sequences: list[Sequence],
        stills: list[Sequence] | None = None,
        config: SampleConfig = SampleConfig(),
        seed: int = 0,
        still_fraction: float = 0.15,
    ):
        self.sequences = [s for s in sequences if len(s) >= 3]
        self.stills = stills or []
        if not self.sequences and not self.stills:
            raise StvsrError("no usable training sequences (each needs at least 3 frames)")
        self.config = config
        self.seed = seed
        self.still_fraction = still_fraction if self.stills else 0.0
        # sequences drawn in proportion to the square root of their length, among those long
        # enough for the span (n + 1 frames)
        self.weights = {}
        for n in config.spans:
            weights = np.array([math.sqrt(len(s)) * (len(s) > n) for s in self.sequences], dtype=np.float64)
            if self.sequences and not weights.sum():
                raise StvsrError(f"no training sequence has the {n + 1} frames a span of {n} needs (--spans)")
            self.weights[n] = weights / weights.sum() if len(weights) else weights
        self._still_cache: dict[int, np.ndarray] = {}

    def sample(self, index: int) -> torch.Tensor:
        """HR triplet ``[3, 3, crop, crop]`` uint8 for sample ``index`` (``sample_timed``)."""
        return self.sample_timed(index)[0]

    def sample_timed(self, index: int) -> tuple[torch.Tensor, float]:
        """HR frames ``[3, 3, crop, crop]`` uint8 for sample ``index``: the first and the last
        frame, and between them (second) the truth at time ``t`` in (0, 1), also returned."""
        k, n = self.interval(index)
        rng = np.random.default_rng([self.seed, index])
        crop = self.config.crop
        if self.config.min_scale < 1.0:  # drawn only then: the default samples stay as they were
            crop = 2 * round(crop / rng.uniform(self.config.min_scale, 1.0) / 2)
        if self.sequences and rng.random() >= self.still_fraction:
            frames = self._from_sequence(rng, crop, (0, k, n))
        else:
            frames = self._from_still(rng, crop, (0, k, n))
        if frames.shape[1] != self.config.crop:
            frames = resize_frames(frames, self.config.crop)
        if rng.random() < 0.5:
            frames = frames[:, :, ::-1]  # horizontal flip
        if rng.random() < 0.5:
            frames = frames[:, ::-1]  # vertical flip
        if rng.random() < 0.5:
            frames, k = frames[::-1], n - k  # temporal reversal
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2), k / n

    def interval(self, index: int) -> tuple[int, int]:
        """``(k, n)`` of sample ``index`` before any reversal: its frames are 0, k and n strides
        from its start. Drawn apart from the rest of the sample, so that samples with only
        ``n = 2`` stay what they were before ``spans`` existed."""
        if self.config.spans == (2,):
            return 1, 2
        rng = np.random.default_rng([self.seed, index, 1])
        n = int(self.config.spans[rng.integers(len(self.config.spans))])
        return int(rng.integers(1, n)), n

    def _from_sequence(self, rng: np.random.Generator, crop: int, positions: tuple[int, int, int]) -> np.ndarray:
        for _ in range(8):  # a triplet across a shot cut teaches nothing: draw another
            span = positions[-1]
            seq = self.sequences[rng.choice(len(self.sequences), p=self.weights[span])]
            strides = [s for s in self.config.strides if span * s < len(seq)] or [1]
            stride = strides[rng.integers(len(strides))]
            start = int(rng.integers(0, len(seq) - span * stride))
            frames = np.stack([seq.frame(start + p * stride) for p in positions])
            frames = self._crop(frames, rng, self._fit(crop, min(frames.shape[1:3])))
            if not looks_like_cut(frames[0], frames[2]):
                break
        return frames

    def _fit(self, crop: int, side: int) -> int:
        """``crop`` (enlarged for ``min_scale``) capped at the source's usable ``side``, so a
        small source is shown at the smallest scale it allows rather than mirror-padded; never
        below the configured crop (a source smaller than that is still reflection-padded)."""
        if not self.config.cap_to_source:
            return crop
        return max(self.config.crop, min(crop, side - side % 2))

    @staticmethod
    def _crop(frames: np.ndarray, rng: np.random.Generator, c: int) -> np.ndarray:
        _, h, w, _ = frames.shape
        if h < c or w < c:  # small frames: pad by reflection up to the crop size
            frames = np.pad(frames, ((0, 0), (0, max(c - h, 0)), (0, max(c - w, 0)), (0, 0)), mode="reflect")
            _, h, w, _ = frames.shape
        y = int(rng.integers(0, h - c + 1))
        x = int(rng.integers(0, w - c + 1))
        return frames[:, y : y + c, x : x + c]

    def _from_still(self, rng: np.random.Generator, c: int, positions: tuple[int, int, int]) -> np.ndarray:
        k = int(rng.integers(len(self.stills)))
        if k not in self._still_cache:
            self._still_cache[k] = self.stills[k].frame(0)
        img = self._still_cache[k]
        m = self.config.max_still_shift
        # integer HR shifts: exact ground truth, and odd shifts are half-pixel moves at LR
        dx, dy = (int(v) for v in rng.integers(-m, m + 1, size=2))
        h, w = img.shape[:2]
        n = positions[-1]  # the pan moves (dx, dy) per stride
        c = self._fit(c, min(h - n * abs(dy), w - n * abs(dx)))
        need_h, need_w = c + n * abs(dy), c + n * abs(dx)
        if h < need_h or w < need_w:
            img = np.pad(img, ((0, max(need_h - h, 0)), (0, max(need_w - w, 0)), (0, 0)), mode="reflect")
            h, w = img.shape[:2]
        y0 = int(rng.integers(0, h - need_h + 1)) + (n * abs(dy) if dy < 0 else 0)
        x0 = int(rng.integers(0, w - need_w + 1)) + (n * abs(dx) if dx < 0 else 0)
        return np.stack([img[y0 + p * dy : y0 + p * dy + c, x0 + p * dx : x0 + p * dx + c] for p in positions])

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, 3 frames, 3, crop, crop]`` uint8 and the middle frames' times ``[B]`` float32."""
        samples = [self.sample_timed(i) for i in indices]
        return torch.stack([f for f, _ in samples]), torch.tensor([t for _, t in samples], dtype=torch.float32)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 frames ``[T, h, w, 3]`` -> ``[T, size, size, 3]``, antialiased bicubic, rounded."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def looks_like_cut(a: np.ndarray, b: np.ndarray, threshold: float = 0.25) -> bool:
    """True when two RGB frames differ like two shots, not like motion: their coarse (1/8 size)
    pictures differ by more than ``threshold`` on average (0..1 scale). Stricter than the
    pipeline's ``scene.cut_score`` (layout alone, colours may match): see ``stvsr_cli.scene``."""
    return float(np.abs(coarse_view(a) - coarse_view(b)).mean()) > threshold
