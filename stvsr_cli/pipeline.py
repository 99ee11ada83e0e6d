"""The upscaling pipeline: frames in, 2N-1 frames out, streaming (memory independent of length).

``Upscaler`` is the library API over frames; ``upscale_video`` is the whole job on files
(probe, model, decode, upscale, encode, stream copy, atomic output) that the CLI calls.

Frames are RGB numpy arrays ``[H, W, 3]``, uint8 (the fast, usual path) or uint16 (input of
more than 8 bits: 10-bit video stays 10-bit); the model sees each on its own full scale as
float in [0, 1], and the output frames have the input's dtype. For input frames
``f_0 .. f_(N-1)`` the output is ``key_0, mid_0, key_1, mid_1, ..., key_(N-1)``: ``key_i`` is
``f_i`` upscaled, ``mid_i`` the frame halfway between ``f_i`` and ``f_(i+1)``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import Interrupted, OutputError, StvsrError
from .nets import DualStream
from .overlap import BackgroundIterator, BackgroundWorker
from .scene import is_cut
from .tiling import run_tiled
from .video import (
    SEGMENT_FORMAT,
    EncodeSettings,
    VideoInfo,
    VideoWriter,
    demux,
    join_segments,
    probe,
    segment_format_holds,
    write_error,
)

MODES = ("spacetime", "space", "time")
# automatic tiling: LR frames above this many pixels are processed in tiles of AUTO_TILE
AUTO_TILE_PIXELS = 1280 * 736
AUTO_TILE = 768
TILE_OVERLAP = 32  # LR pixels of context around each tile
LOSSLESS_CONTAINERS = {".mkv", ".nut", ".avi", ".mov"}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; asking for an absent device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise StvsrError("--device cuda was asked for, but no CUDA device is available (try --device cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise StvsrError("--device mps was asked for, but MPS is not available on this machine")
    if name not in ("cpu", "cuda", "mps"):
        raise StvsrError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` is fp16 on CUDA and fp32 elsewhere; half precision is refused on the CPU."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in dtypes:
        raise StvsrError(f"unknown precision {precision!r}; choose auto, fp32, fp16 or bf16")
    if precision != "fp32" and device.type == "cpu":
        raise StvsrError(f"--precision {precision} needs a GPU; on the CPU use fp32")
    return dtypes[precision]


class Upscaler:
    """Runs a ``DualStream`` over a stream of frames.

    Each input frame is spatially upscaled once and reused by the two pairs it belongs to;
    ``batch`` pairs go through the model together. Frames are padded (replicate) to the
    model's size multiple and cropped back.
    """

    def __init__(
        self,
        model: DualStream,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        batch: int = 1,
        mode: str = "spacetime",
        scene_threshold: float = 0.3,
        tile: int = 0,
    ):
        if mode not in MODES:
            raise StvsrError(f"unknown mode {mode!r}; choose {', '.join(MODES)}")
        if batch < 1:
            raise StvsrError("batch must be at least 1")
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.dtype = resolve_dtype(precision, self.device)
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.model = model.eval().to(self.device, self.dtype).to(memory_format=self.memory_format)
        self.batch = batch
        self.mode = mode
        self.scene_threshold = scene_threshold
        self.multiple = int(getattr(model, "size_multiple", 1))
        if tile and (tile < 2 * TILE_OVERLAP + self.multiple):
            raise StvsrError(f"--tile must be at least {2 * TILE_OVERLAP + self.multiple} (or 0 for automatic)")
        self.tile = tile
        self.scene_cuts = 0

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        return (width, height) if self.mode == "time" else (2 * width, 2 * height)

    def _tile_size(self, h: int, w: int) -> int:
        """LR tile side for a padded frame of ``h x w`` (0: the whole frame at once)."""
        if self.tile:
            return 0 if self.tile >= max(h, w) else self.tile
        # automatic: whole frames up to 720p input, tiles beyond, so that memory stays bounded
        # whatever the frame size (1080p -> 4K whole takes 2.9 GB on the CPU, tiled about half)
        return 0 if h * w <= AUTO_TILE_PIXELS else AUTO_TILE

    def _run(self, fn, lr: list[torch.Tensor], hr: list[torch.Tensor]) -> torch.Tensor:
        h, w = lr[0].shape[-2:]
        tile = self._tile_size(h, w)
        if not tile:
            return fn(lr, hr)
        return run_tiled(fn, lr, hr, tile, TILE_OVERLAP, self.multiple, self.model.scale)

    def _to_tensor(self, frames: list[np.ndarray]) -> torch.Tensor:
        """uint8 or uint16 RGB frames -> float ``[B, 3, h, w]`` in [0, 1] (each type on its own
        full scale), padded to the model's size multiple."""
        peak = float(np.iinfo(frames[0].dtype).max)
        x = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2)  # [B, 3, h, w]
        x = x.to(self.dtype) / peak
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x.contiguous(memory_format=self.memory_format)

    @staticmethod
    def _to_frames(x: torch.Tensor, height: int, width: int, dtype=np.uint8) -> list[np.ndarray]:
        """Float ``[B, 3, H, W]`` -> ``dtype`` (uint8 or uint16) RGB frames, cropped."""
        peak = np.iinfo(dtype).max
        target = torch.uint8 if dtype == np.uint8 else torch.uint16
        # not in place: x may be a frame the next pair still needs
        x = (x[..., :height, :width].float().clamp(0, 1) * peak).round().to(target)
        return list(x.permute(0, 2, 3, 1).cpu().numpy())

    @torch.inference_mode()
    def _process(self, frames: list[np.ndarray], prev: dict | None) -> tuple[list[tuple[str, np.ndarray]], dict]:
        """Upscale a chunk of consecutive frames; returns (outputs in order, state for the next)."""
        h, w = frames[0].shape[:2]
        dtype = frames[0].dtype
        out_w, out_h = self.output_size(w, h)
        lr = self._to_tensor(frames)
        if self.mode == "time":
            hr = lr
        else:
            hr = self._run(lambda lo, _: self.model.upscale(lo[0]), [lr], [])
        keys = self._to_frames(hr, out_h, out_w, dtype)
        lr_all, hr_all, raw = lr, hr, frames
        if prev is not None:
            lr_all = torch.cat((prev["lr"], lr))
            hr_all = torch.cat((prev["hr"], hr))
            raw = [prev["raw"], *frames]
        mids: list[np.ndarray] = []
        n_pairs = len(raw) - 1
        if self.mode != "space" and n_pairs > 0:
            l0, l1 = lr_all[:-1], lr_all[1:]
            if self.mode == "time":
                t = self.model.temporal
                mid = self._run(lambda lo, _: t.synthesize(lo[0], lo[1], t.estimate(lo[0], lo[1])), [l0, l1], [])
            else:
                mid = self._run(
                    lambda lo, hi: self.model.interpolate(lo[0], lo[1], hi[0], hi[1]),
                    [l0, l1],
                    [hr_all[:-1], hr_all[1:]],
                )
            mids = self._to_frames(mid, out_h, out_w, dtype)
            prev_keys = [prev["key"]] + keys if prev is not None else keys
            for i in range(n_pairs):
                if is_cut(raw[i], raw[i + 1], self.scene_threshold):
                    mids[i] = prev_keys[i]  # no blending across a cut: the earlier side
                    self.scene_cuts += 1
        outputs: list[tuple[str, np.ndarray]] = []
        for i, key in enumerate(keys):
            if prev is not None or i > 0:
                if self.mode != "space":
                    outputs.append(("mid", mids[i if prev is not None else i - 1]))
            outputs.append(("key", key))
        state = {"lr": lr[-1:], "hr": hr[-1:], "raw": frames[-1], "key": keys[-1]}
        return outputs, state

    def process(self, frames: Iterable[tuple[np.ndarray, Any]]) -> Iterator[tuple[np.ndarray, str, Any]]:
        """Yield ``(frame, kind, tag)``: ``kind`` is ``"key"`` (``tag`` is the input frame's tag)
        or ``"mid"`` (``tag`` is the pair of tags of its neighbours). Order is display order."""
        chunk: list[np.ndarray] = []
        tags: list[Any] = []
        prev = None
        prev_tag = None

        def flush():
            nonlocal prev, prev_tag
            outputs, prev_state = self._process(chunk, prev)
            all_tags = ([prev_tag] if prev is not None else []) + tags
            key_i = 0 if prev is None else 1
            for kind, frame in outputs:
                if kind == "key":
                    yield frame, "key", all_tags[key_i]
                    key_i += 1
                else:
                    yield frame, "mid", (all_tags[key_i - 1], all_tags[key_i])
            prev, prev_tag = prev_state, tags[-1]
            chunk.clear()
            tags.clear()

        shape = None
        for frame, tag in frames:
            if shape is None:
                shape = frame.shape
                if frame.dtype not in (np.uint8, np.uint16):
                    raise StvsrError(f"frames must be uint8 or uint16 RGB, not {frame.dtype}")
            elif frame.shape != shape:
                raise StvsrError(
                    f"frame size changed mid-stream from {shape[1]}x{shape[0]} to {frame.shape[1]}x{frame.shape[0]}"
                )
            chunk.append(np.ascontiguousarray(frame))
            tags.append(tag)
            if len(chunk) >= self.batch:
                yield from flush()
        if chunk:
            yield from flush()

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Frames in, frames out (2N-1 of them in the default mode)."""
        for frame, _, _ in self.process((f, i) for i, f in enumerate(frames)):
            yield frame


@dataclass
class UpscaleOptions:
    model: str | os.PathLike | None = None  # None: the bundled weights
    device: str = "auto"
    precision: str = "auto"
    batch: int = 1
    mode: str = "spacetime"
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    tile: int = 0
    scene_threshold: float = 0.3
    overwrite: bool = False
    max_frames: int = 0  # > 0: only the first N input frames (a quick preview); audio is cut there too
    resume: bool = False  # work in segments kept beside the output, so that a rerun continues
    segment_frames: int = 0  # input frames per segment with ``resume``; 0: about 10 seconds


@dataclass
class Summary:
    input_frames: int
    output_frames: int
    seconds: float
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    device: str
    scene_cuts: int = 0
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        fps = self.output_frames / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.input_frames} frames {self.input_size[0]}x{self.input_size[1]} -> "
            f"{self.output_frames} frames {self.output_size[0]}x{self.output_size[1]} "
            f"in {self.seconds:.1f} s ({fps:.2f} frames/s on {self.device}"
            + (f", {self.scene_cuts} scene cut(s)" if self.scene_cuts else "")
            + ")"
        )


def check_output_path(src: Path, dst: Path, overwrite: bool, encode: EncodeSettings) -> None:
    """Refuse what would lose data or cannot work, before any heavy work starts."""
    import av

    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"output is the same file as the input: {dst}")
    if dst.is_dir():
        raise OutputError(f"output is a folder: {dst}")
    if dst.exists() and not overwrite:
        raise OutputError(f"output exists: {dst} (use --overwrite to replace it)")
    if not dst.parent.exists():
        raise OutputError(f"output folder does not exist: {dst.parent}")
    if not os.access(dst.parent, os.W_OK):
        raise OutputError(f"output folder is not writable: {dst.parent}")
    if not dst.suffix:
        raise OutputError(f"output has no file extension to choose a container from: {dst}")
    if encode.lossless and dst.suffix.lower() not in LOSSLESS_CONTAINERS:
        raise OutputError(f"--lossless writes RGB FFV1, which {dst.suffix} cannot hold: use a .mkv output")
    try:
        av.format.ContainerFormat(dst.suffix.lstrip(".").lower(), "w")
        return
    except (ValueError, av.error.FFmpegError):
        pass
    probe_path = dst.with_name(f".{dst.name}.stvsr-check-{os.getpid()}{dst.suffix}")
    try:
        av.open(str(probe_path), mode="w").close()
    except (ValueError, av.error.FFmpegError):
        raise OutputError(f"no video container is known for the extension {dst.suffix!r}: {dst}") from None
    finally:
        probe_path.unlink(missing_ok=True)


class _StopSignals:
    """Turns SIGINT/SIGTERM into ``Interrupted`` while a job runs (main thread only)."""

    def __enter__(self):
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    @staticmethod
    def _handle(signum, _frame):
        raise Interrupted(f"stopped by {signal.Signals(signum).name}; no output was written")

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        return False


def upscale_video(
    src: str | os.PathLike, dst: str | os.PathLike, options: UpscaleOptions | None = None, progress=None
) -> Summary:
    """Upscale the video file ``src`` into ``dst`` (see the module doc for the frame layout).

    The output appears only when complete: it is written to a hidden temporary file beside
    ``dst`` and renamed at the end; on any error or interruption the temporary file is removed
    and ``dst`` is untouched. Raises ``StvsrError`` subclasses with one-line messages.

    With ``options.resume`` the job runs in segments (see ``_run_in_segments``): an
    interrupted run keeps its finished segments, and running it again continues from there.
    """
    from .weights import load_model

    options = options or UpscaleOptions()
    src, dst = Path(src), Path(dst)
    if options.mode not in MODES:
        raise StvsrError(f"unknown mode {options.mode!r}; choose {', '.join(MODES)}")
    check_output_path(src, dst, options.overwrite, options.encode)
    if options.resume and not segment_format_holds(options.encode.codec):
        raise OutputError(f"--resume cannot keep segments encoded with {options.encode.codec}; choose another codec")
    info = probe(src)
    device = resolve_device(options.device)
    resolve_dtype(options.precision, device)
    model = load_model(options.model)
    upscaler = Upscaler(
        model, device, options.precision, options.batch, options.mode, options.scene_threshold, options.tile
    )
    job = _Job(src, dst, info, options, upscaler, progress)
    if info.has_alpha:
        job.warnings.append(f"the input's alpha channel ({info.pix_fmt}) is dropped: the output is opaque")
    start = time.perf_counter()
    with _StopSignals():
        n_in, n_out = _run_in_segments(job) if options.resume else _run_whole(job)
    return Summary(
        n_in,
        n_out,
        time.perf_counter() - start,
        (info.width, info.height),
        job.out_size,
        str(device),
        upscaler.scene_cuts,
        job.warnings,
    )


@dataclass
class _Job:
    """One ``upscale_video`` run: what its steps share."""

    src: Path
    dst: Path
    info: VideoInfo
    options: UpscaleOptions
    upscaler: Upscaler
    progress: Any = None
    warnings: list[str] = field(default_factory=list)

    @property
    def out_size(self) -> tuple[int, int]:
        return self.upscaler.output_size(self.info.width, self.info.height)

    def writer(self, path: Path, container_format: str | None = None) -> VideoWriter:
        """The output video writer; the final output (no ``container_format``) also copies
        the input's audio/subtitle streams and tags."""
        rate = self.info.rate if self.options.mode == "space" else 2 * self.info.rate
        args = (path, self.info, *self.out_size, self.options.encode)
        if container_format is None:
            return VideoWriter.for_input(*args, warnings=self.warnings, rate=rate)
        return VideoWriter(*args, warnings=self.warnings, rate=rate, container_format=container_format)

    def frames(self, copy_other_streams: bool, skip_frames: int = 0):
        return demux(
            self.src,
            copy_other_streams=copy_other_streams,
            max_frames=self.options.max_frames,
            warnings=self.warnings,
            deep=self.info.deep,
            skip_frames=skip_frames,
        )

    def start_progress(self) -> None:
        if self.progress is not None:
            n = min(self.info.frames, self.options.max_frames) if self.options.max_frames else self.info.frames
            self.progress.start(n and (n if self.options.mode == "space" else 2 * n - 1))

    def advance(self, n: int = 1) -> None:
        if self.progress is not None and n:
            self.progress.advance(n)

    def nominal_step(self) -> int:
        """One input frame's duration in the input time base (for a clip of one frame)."""
        return max(1, round(1 / (self.info.rate * self.info.time_base)))

    def upscale(self, frames, write, prev_pts: int | None = None, has_more=lambda: False) -> int:
        """Run the model over ``frames`` (``(rgb, pts)``, pts in the input time base) and call
        ``write(frame, pts, duration)`` for every output frame in display order, in half the
        input time base. Returns the number of frames written.

        Each frame is written when the next one arrives, so that it knows its duration; the
        last lasts as long as the input's last frame did (its gap from ``prev_pts``, the
        frame before ``frames``, when it is the only one). When ``has_more()`` is true at the
        end, the last output (the key of a frame that starts the next segment) is not written.
        """
        held = None
        last_key_pts = prev_pts
        input_step = 0
        n_out = 0
        for frame, kind, tag in self.upscaler.process(frames):
            pts = 2 * tag if kind == "key" else tag[0] + tag[1]
            if held is not None:
                write(held[0], held[1], pts - held[1])
                n_out += 1
                self.advance()
            if kind == "key":
                if last_key_pts is not None:
                    input_step = tag - last_key_pts
                last_key_pts = tag
            held = (frame, pts)
        if held is not None and not has_more():
            write(held[0], held[1], 2 * (input_step or self.nominal_step()))
            n_out += 1
            self.advance()
        return n_out


def _replace(tmp: Path, dst: Path) -> None:
    try:
        os.replace(tmp, dst)
    except OSError as e:
        raise write_error(dst, e) from None


def _run_whole(job: _Job) -> tuple[int, int]:
    """The whole video in one go: decode, model and encode overlap in threads."""
    dst = job.dst
    tmp = dst.with_name(f".{dst.name}.stvsr-partial-{os.getpid()}{dst.suffix}")
    n_in = 0
    writer = reader = worker = None
    try:
        writer = job.writer(tmp)
        # decode and encode run in their own threads, overlapping the model
        reader = BackgroundIterator(job.frames(copy_other_streams=True))
        worker = BackgroundWorker()
        job.start_progress()

        def frames():
            nonlocal n_in
            for kind, item in reader:
                if kind == "packet":
                    worker.submit(writer.copy_packet, item)
                else:
                    n_in += 1
                    yield item

        n_out = job.upscale(frames(), lambda *args: worker.submit(writer.write, *args))
        if n_out == 0:
            raise StvsrError(f"no video frame could be decoded from {job.src}")
        worker.finish()
        worker = None
        writer.close()
        writer = None
        _replace(tmp, dst)
    except BaseException:
        if reader is not None:
            reader.close()
        if worker is not None:
            worker.abandon()
        if writer is not None:
            writer.abort()
        tmp.unlink(missing_ok=True)
        raise
    reader.close()
    return n_in, n_out


# --- resumable jobs -------------------------------------------------------------------------

SEGMENT_SECONDS = 10  # default segment length with --resume, in seconds of input


class _Lookahead:
    """Frames ``(rgb, pts)`` from an iterator, with a peek at the next one: a segment's last
    frame pair needs the first frame of the next segment."""

    _EMPTY = object()

    def __init__(self, iterable):
        self._it = iter(iterable)
        self._next: Any = self._EMPTY
        self.consumed = 0
        self.last_pts: int | None = None

    def peek(self):
        if self._next is self._EMPTY:
            self._next = next(self._it, None)
        return self._next

    def pop(self):
        item, self._next = self.peek(), self._EMPTY
        if item is not None:
            self.consumed += 1
            self.last_pts = item[1]
        return item

    def take(self, k: int):
        """The next ``k`` frames, then a look at the one after (left for the next segment)."""
        for _ in range(k):
            item = self.pop()
            if item is None:
                return
            yield item
        ahead = self.peek()
        if ahead is not None:
            yield ahead


class _SegmentStore:
    """The hidden folder beside the output (``.OUT.stvsr-segments/``) where a resumable job
    keeps its finished segments and ``manifest.json``: what job they belong to (input path,
    size and mtime; model; every option that changes the pixels) and, in order, each finished
    segment (file, input frames, output frames, last pts and duration, whether it is the last).
    """

    def __init__(self, dst: Path, job_key: dict, warnings: list[str]):
        self.folder = dst.with_name(f".{dst.name}.stvsr-segments")
        self.manifest = self.folder / "manifest.json"
        self.job_key = job_key
        self.segments: list[dict] = []
        if self.manifest.exists():
            self._load(warnings)
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as e:
            raise write_error(self.folder, e) from None

    def _load(self, warnings: list[str]) -> None:
        try:
            saved = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            saved = {}
        segments = saved.get("segments", []) if isinstance(saved, dict) else []
        if saved.get("job") == self.job_key and all((self.folder / s["file"]).is_file() for s in segments):
            self.segments = segments
            return
        warnings.append(f"started over: the unfinished job in {self.folder} was for another input or other options")
        self.clear()

    def path(self, index: int) -> Path:
        return self.folder / f"segment-{index:05d}.{SEGMENT_FORMAT}"

    @property
    def complete(self) -> bool:
        return bool(self.segments) and self.segments[-1]["last"]

    def add(self, entry: dict) -> None:
        self.segments.append(entry)
        tmp = self.manifest.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"job": self.job_key, "segments": self.segments}, indent=1))
            os.replace(tmp, self.manifest)
        except OSError as e:
            raise write_error(self.manifest, e) from None

    def clear(self) -> None:
        """Delete what this store wrote (and nothing else)."""
        for path in self.folder.glob(f"segment-*.{SEGMENT_FORMAT}*"):
            path.unlink(missing_ok=True)
        for path in (self.manifest, self.manifest.with_suffix(".tmp")):
            path.unlink(missing_ok=True)
        self.segments = []

    def remove(self) -> None:
        self.clear()
        try:
            self.folder.rmdir()
        except OSError:
            pass  # something else was put there: leave it


def _job_key(job: _Job, segment_frames: int) -> dict:
    """What must not change between an interrupted run and the one that continues it."""
    from .weights import default_weights_path

    def file_key(path: Path) -> dict:
        st = path.stat()
        return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    o = job.options
    return {
        "version": 1,
        "input": file_key(job.src),
        "model": file_key(Path(o.model) if o.model else default_weights_path()),
        "options": {
            "mode": o.mode,
            "batch": o.batch,
            "tile": o.tile,
            "scene_threshold": o.scene_threshold,
            "device": job.upscaler.device.type,
            "dtype": str(job.upscaler.dtype),
            "encode": asdict(o.encode),
            "max_frames": o.max_frames,
            "segment_frames": segment_frames,
        },
    }


def _run_in_segments(job: _Job) -> tuple[int, int]:
    """A resumable job: the input is processed ``K`` input frames at a time, each segment
    written as a finished file into a ``_SegmentStore``; at the end the segments are joined
    into the output (remuxed, not re-encoded) with the input's audio and subtitles, and the
    folder is removed. A rerun skips the finished segments (their frames are decoded but not
    upscaled) and gives the same frames an uninterrupted run would.

    Segment ``k`` holds the outputs of input frames ``kK .. kK+K-1``: each key and the mid
    frame after it. Its last mid frame needs frame ``kK+K`` too, so that frame is upscaled
    twice (here, and as the first key of segment ``k+1``); the model state carries over
    by recomputing that boundary pair.
    """
    info, options = job.info, job.options
    k = options.segment_frames or max(1, round(SEGMENT_SECONDS * info.rate))
    store = _SegmentStore(job.dst, _job_key(job, k), job.warnings)
    tmp = job.dst.with_name(f".{job.dst.name}.stvsr-partial-{os.getpid()}{job.dst.suffix}")
    part = None
    reader = writer = worker = None
    skipped = sum(s["frames"] for s in store.segments)
    n_in = skipped
    try:
        if not store.complete:
            frames = (item for kind, item in job.frames(copy_other_streams=False, skip_frames=skipped))
            reader = BackgroundIterator(frames)
            source = _Lookahead(reader)
            job.start_progress()
            job.advance(sum(s["outputs"] for s in store.segments))
            for _ in range(skipped):
                if source.pop() is None:
                    raise StvsrError(f"the input has fewer frames than the finished segments in {store.folder}")
            while source.peek() is not None:
                index = len(store.segments)
                part = store.path(index).with_name(store.path(index).name + ".part")
                writer = job.writer(part, container_format=SEGMENT_FORMAT)
                worker = BackgroundWorker()
                last: dict = {}

                def write(frame, pts, duration, worker=worker, writer=writer, last=last):
                    last.update(pts=pts, duration=duration)
                    worker.submit(writer.write, frame, pts, duration)

                first = source.consumed
                prev_pts = source.last_pts
                n_out = job.upscale(source.take(k), write, prev_pts, has_more=lambda: source.peek() is not None)
                worker.finish()
                worker = None
                writer.close()
                writer = None
                _replace(part, store.path(index))
                part = None
                n_in += source.consumed - first
                store.add(
                    {
                        "file": store.path(index).name,
                        "frames": source.consumed - first,
                        "outputs": n_out,
                        "last_pts": last["pts"],
                        "last_duration": last["duration"],
                        "last": source.peek() is None,
                    }
                )
            reader.close()
            reader = None
        if not store.segments:
            raise StvsrError(f"no video frame could be decoded from {job.src}")
        final = store.segments[-1]
        out_time_base = Fraction(info.time_base) / 2
        end_time = None
        if options.max_frames:  # a preview: the audio stops where the video does
            end_time = (final["last_pts"] + final["last_duration"]) * out_time_base
        segments = [store.folder / s["file"] for s in store.segments]
        join_segments(segments, tmp, job.src, info, final["last_duration"] * out_time_base, job.warnings, end_time)
        _replace(tmp, job.dst)
    except BaseException as e:
        if reader is not None:
            reader.close()
        if worker is not None:
            worker.abandon()
        if writer is not None:
            writer.abort()
        for path in (part, tmp):
            if path is not None:
                path.unlink(missing_ok=True)
        if not store.segments:
            store.remove()
        elif isinstance(e, StvsrError):  # interrupted, disk full...: the finished work is kept
            raise type(e)(
                f"{e}; {len(store.segments)} finished segment(s) are kept in {store.folder}: "
                "run the same command with --resume to continue"
            ) from None
        raise
    n_out = sum(s["outputs"] for s in store.segments)
    store.remove()
    return n_in, n_out
