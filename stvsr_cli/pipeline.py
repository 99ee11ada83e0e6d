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

import copy
import os
import re
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .compiling import COMPILE_MODES, compile_networks, should_compile
from .distributed import Ranks, process_group
from .errors import Interrupted, OutputError, StvsrError, Terminated, UsageError
from .images import check_picture_output, is_image_sequence_input, is_pattern, probe_pictures
from .jobs import Job, run_whole
from .nets import DualStream
from .nets.dual_stream import MID_FROM
from .resume import run_in_segments
from .scene import is_cut
from .tiling import pad_to_multiple, run_tiled
from .video import EncodeSettings, probe, segment_format_holds

MODES = ("spacetime", "space", "time")
# automatic tiling: LR frames above this many pixels are processed in tiles of AUTO_TILE
AUTO_TILE_PIXELS = 1280 * 736
AUTO_TILE = 768
TILE_OVERLAP = 32  # LR pixels of context around each tile
LOSSLESS_CONTAINERS = {".mkv", ".nut", ".avi", ".mov"}
# outputs that name pictures, not a video: a printf pattern (out/%05d.png) or an image file
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".exr", ".dpx"}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; asking for an absent device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda:") and name[5:].isdigit() and torch.cuda.is_available():
        return torch.device(name)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StvsrError("--device cuda was asked for, but no CUDA device is available (try --device cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise StvsrError("--device mps was asked for, but MPS is not available on this machine")
    if name not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX-512 BF16 or AMX: Intel since
    Cooper Lake / Sapphire Rapids, AMD since Zen 4); elsewhere bf16 is emulated and slower."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The arithmetic dtype of the model's convolutions.

    ``auto``: fp16 on CUDA; on the CPU bf16 where it runs natively (1.5-2x faster, within
    0.01 dB of fp32 on val, see docs/BENCHMARKS.md), else fp32; fp32 elsewhere. fp16 is
    refused on the CPU, and bf16 where the CPU would only emulate it."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in dtypes:
        raise UsageError(f"unknown precision {precision!r}; choose auto, fp32, fp16 or bf16")
    if device.type == "cpu" and precision == "fp16":
        raise UsageError("--precision fp16 needs a GPU; on the CPU use bf16 (where the CPU has it) or fp32")
    if device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        raise UsageError("--precision bf16: this CPU has no native bf16 (AVX-512 BF16 or AMX); use fp32")
    return dtypes[precision]


def precision_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]


class Upscaler:
    """Runs a ``DualStream`` over a stream of frames.

    Each input frame is spatially upscaled once and reused by the two pairs it belongs to;
    ``batch`` pairs go through the model together. Frames are padded (replicate) to the
    size multiple each network needs and cropped back (``keyframes``, ``pair_inputs``).

    Precision: images between the networks stay float32; with fp16/bf16 the weights are
    stored in that dtype and the networks run under autocast (``arithmetic()``), so the
    convolutions run in half precision while flows, sampling grids and the residuals added to
    images keep float32 (the networks make sure of that where it matters).
    """

    def __init__(
        self,
        model: DualStream,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        batch: int = 1,
        mode: str = "spacetime",
        scene_threshold: float = 0.3,
        tile: int = 0,
        multi: int = 2,
    ):
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; choose {', '.join(MODES)}")
        if multi < 2:
            raise UsageError(f"--multi must be at least 2, not {multi}")
        if multi != 2 and mode == "space":
            raise UsageError("--multi makes new frames: it does not go with --mode space")
        if multi != 2 and not getattr(model.temporal, "takes_timestep", False):
            raise UsageError(
                f"--multi {multi} needs frames at any time between two inputs, and this model's temporal network "
                f"({model.config.temporal}) makes only the frame halfway: use the default model"
            )
        if batch < 1:
            raise UsageError("batch must be at least 1")
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.dtype = resolve_dtype(precision, self.device)
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        # a copy (tens of MB at most), converted: the caller's model keeps its dtype, device and mode
        self.model = copy.deepcopy(model).eval().to(self.device, self.dtype).to(memory_format=self.memory_format)
        self.precision = precision_name(self.dtype)
        self.batch = batch
        self.mode = mode
        self.multi = multi  # output frames per input interval: new frames at t = k / multi
        self.scene_threshold = scene_threshold
        self.multiple = int(getattr(model, "size_multiple", 1))
        if tile and (tile < 2 * TILE_OVERLAP + self.multiple):
            raise UsageError(f"--tile must be at least {2 * TILE_OVERLAP + self.multiple} (or 0 for automatic)")
        self.tile = tile
        self.scene_cuts = 0
        self.compiled = False  # whether the networks were given to torch.compile (stvsr_cli.compiling)

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        return (width, height) if self.mode == "time" else (2 * width, 2 * height)

    def _tile_size(self, h: int, w: int) -> int:
        """LR tile side for a padded frame of ``h x w`` (0: the whole frame at once)."""
        if self.tile:
            return 0 if self.tile >= max(h, w) else self.tile
        # automatic: whole frames up to 720p input, tiles beyond, so that memory stays bounded
        # whatever the frame size (1080p -> 4K whole takes 2.9 GB on the CPU, tiled about half)
        return 0 if h * w <= AUTO_TILE_PIXELS else AUTO_TILE

    def arithmetic(self) -> torch.autocast:
        """The context the networks run in: autocast to ``self.dtype`` (off for fp32)."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def _run(self, fn, lr: list[torch.Tensor], hr: list[torch.Tensor], multiple: int | None = None) -> torch.Tensor:
        h, w = lr[0].shape[-2:]
        tile = self._tile_size(h, w)
        with self.arithmetic():
            if not tile:
                out = fn(lr, hr)
            else:
                out = run_tiled(fn, lr, hr, tile, TILE_OVERLAP, multiple or self.multiple, self.model.scale)
        return out.float()

    def to_tensor(self, frames: list[np.ndarray]) -> torch.Tensor:
        """uint8 or uint16 RGB frames -> float32 ``[B, 3, h, w]`` in [0, 1] (each type on its
        own full scale), on the device, not padded."""
        peak = float(np.iinfo(frames[0].dtype).max)
        x = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2)  # [B, 3, h, w]
        return (x.float() / peak).contiguous(memory_format=self.memory_format)

    def keyframes(self, lr: torch.Tensor) -> torch.Tensor:
        """MS alone: ``[B, 3, h, w] -> [B, 3, 2h, 2w]``. The LR frames are padded only to MS's
        own size multiple (and cropped back), so a keyframe does not depend on what the
        temporal net needs."""
        h, w = lr.shape[-2:]
        multiple = int(getattr(self.model.spatial, "size_multiple", 1))
        hr = self._run(lambda lo, _: self.model.upscale(lo[0]), [pad_to_multiple(lr, multiple)], [], multiple)
        return hr[..., : 2 * h, : 2 * w]

    def pair_inputs(self, lr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LR frames and their keyframes padded to the whole model's size multiple (LR) and
        twice that (HR), as the streams need them; outputs are cropped back to ``2h x 2w``."""
        padded = pad_to_multiple(lr, self.multiple)
        return padded, pad_to_multiple(hr, self.model.scale * self.multiple)

    @staticmethod
    def to_frames(x: torch.Tensor, height: int, width: int, dtype=np.uint8) -> list[np.ndarray]:
        """Float ``[B, 3, H, W]`` -> ``dtype`` (uint8 or uint16) RGB frames, cropped."""
        peak = np.iinfo(dtype).max
        target = torch.uint8 if dtype == np.uint8 else torch.uint16
        # not in place: x may be a frame the next pair still needs
        x = (x[..., :height, :width].float().clamp(0, 1) * peak).round().to(target)
        return list(x.permute(0, 2, 3, 1).cpu().numpy())

    def _new_frames(self, l0, l1, h0, h1, t: float) -> torch.Tensor:
        """The new frames at ``t`` for the pairs ``(l0, l1)`` (LR, padded) with keyframes
        ``(h0, h1)``: the model's, or in ``--mode time`` MT's on the LR pairs."""
        if self.mode == "time":
            mt = self.model.temporal
            return self._run(lambda lo, _: mt.synthesize(lo[0], lo[1], mt.estimate(lo[0], lo[1], t), t), [l0, l1], [])
        return self._run(lambda lo, hi: self.model.interpolate(lo[0], lo[1], hi[0], hi[1], t), [l0, l1], [h0, h1])

    def pair_times(self, a: Any, b: Any) -> list[Fraction]:
        """The times ``t`` in (0, 1) of the new frames between inputs tagged ``a`` and ``b``
        (``k / multi``, or what ``times`` given to ``process`` says)."""
        return [Fraction(k, self.multi) for k in range(1, self.multi)]

    @torch.inference_mode()
    def _process(
        self, frames: list[np.ndarray], prev: dict | None, times: list[list[Fraction]]
    ) -> tuple[list[tuple[str, np.ndarray, int]], dict]:
        """Upscale a chunk of consecutive frames; ``times[i]``: the new frames' t for pair ``i``
        (the pairs from ``prev``'s frame on). Returns (outputs in order, state for the next)."""
        h, w = frames[0].shape[:2]
        dtype = frames[0].dtype
        out_w, out_h = self.output_size(w, h)
        x = self.to_tensor(frames)
        hr = x if self.mode == "time" else self.keyframes(x)
        keys = self.to_frames(hr, out_h, out_w, dtype)
        lr, hr = self.pair_inputs(x, hr) if self.mode == "spacetime" else (pad_to_multiple(x, self.multiple), hr)
        lr_all, hr_all, raw = lr, hr, frames
        if prev is not None:
            lr_all = torch.cat((prev["lr"], lr))
            hr_all = torch.cat((prev["hr"], hr))
            raw = [prev["raw"], *frames]
        n_pairs = len(raw) - 1
        # mids[i][t]: the new frame at t between pair i's frames; pairs wanting the same t run together
        mids: list[dict[Fraction, np.ndarray]] = [{} for _ in range(n_pairs)]
        if self.mode != "space" and n_pairs > 0:
            by_t: dict[Fraction, list[int]] = {}
            for i in range(n_pairs):
                for t in times[i]:
                    by_t.setdefault(t, []).append(i)
            for t, pairs in sorted(by_t.items()):
                if pairs == list(range(pairs[0], pairs[-1] + 1)):  # consecutive (always with --multi): views
                    idx = slice(pairs[0], pairs[-1] + 1)
                    nxt = slice(pairs[0] + 1, pairs[-1] + 2)
                else:
                    idx = torch.tensor(pairs, device=lr_all.device)
                    nxt = idx + 1
                lo0, lo1, hi0, hi1 = lr_all[idx], lr_all[nxt], hr_all[idx], hr_all[nxt]
                new = self.to_frames(self._new_frames(lo0, lo1, hi0, hi1, float(t)), out_h, out_w, dtype)
                for i, frame in zip(pairs, new, strict=True):
                    mids[i][t] = frame
            prev_keys = [prev["key"]] + keys if prev is not None else keys
            for i in range(n_pairs):
                if mids[i] and is_cut(raw[i], raw[i + 1], self.scene_threshold):
                    mids[i] = dict.fromkeys(mids[i], prev_keys[i])  # no blending across a cut: the earlier side
                    self.scene_cuts += 1
        outputs: list[tuple[str, np.ndarray, Fraction]] = []
        for i, key in enumerate(keys):
            if prev is not None or i > 0:
                pair = i if prev is not None else i - 1
                outputs.extend(("mid", frame, t) for t, frame in sorted(mids[pair].items()))
            outputs.append(("key", key, Fraction(0)))
        state = {"lr": lr[-1:], "hr": hr[-1:], "raw": frames[-1], "key": keys[-1]}
        return outputs, state

    def process(self, frames: Iterable[tuple[np.ndarray, Any]], times=None) -> Iterator[tuple[np.ndarray, str, Any]]:
        """Yield ``(frame, kind, tag)``: ``kind`` is ``"key"`` (``tag`` is the input frame's tag)
        or ``"mid"`` (``tag`` is ``(tag before, tag after, t)``: the new frame at ``t``, a
        ``Fraction`` in (0, 1), between its neighbours). Order is display order.

        ``times(tag_a, tag_b) -> [t, ...]``: where new frames go between two inputs (default
        ``pair_times``: ``k / multi``); a 0 in it is ignored (that is the keyframe)."""
        times = times or self.pair_times
        chunk: list[np.ndarray] = []
        tags: list[Any] = []
        prev = None
        prev_tag = None

        def flush():
            nonlocal prev, prev_tag
            all_tags = ([prev_tag] if prev is not None else []) + tags
            wanted = [[t for t in times(a, b) if 0 < t < 1] for a, b in zip(all_tags, all_tags[1:])]
            outputs, prev_state = self._process(chunk, prev, wanted)
            key_i = 0 if prev is None else 1
            for kind, frame, t in outputs:
                if kind == "key":
                    yield frame, "key", all_tags[key_i]
                    key_i += 1
                else:
                    yield frame, "mid", (all_tags[key_i - 1], all_tags[key_i], t)
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
        """Frames in, frames out (``multi * (N - 1) + 1`` of them, 2N-1 by default; N in ``--mode space``)."""
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


def check_output_path(src: Path, dst: Path, overwrite: bool, encode: EncodeSettings) -> None:
    """Refuse what would lose data or cannot work, before any heavy work starts."""
    import av

    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"output is the same file as the input: {dst}")
    if is_pattern(dst):
        check_picture_output(dst, overwrite)
        if is_pattern(src) and src.resolve() == dst.resolve():
            raise OutputError(f"output is the same image sequence as the input: {dst}")
        return
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
    if dst.suffix.lower() in IMAGE_SUFFIXES:
        raise UsageError(f"a picture output needs a numbered name such as out/%05d{dst.suffix}, not {dst.name}")
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
        error = Terminated if signum == signal.SIGTERM else Interrupted
        raise error(f"stopped by {signal.Signals(signum).name}; no output was written")

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        return False


def upscale_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    options: UpscaleOptions | None = None,
    progress=None,
    ranks: Ranks | None = None,
) -> Summary:
    """Upscale the video file ``src`` into ``dst`` (see the module doc for the frame layout).

    ``ranks`` (under ``torchrun``, from ``Ranks.from_env()``): every process calls this with the
    same arguments; the job runs in segments shared among the processes, each on its own device,
    and rank 0 writes the output (see ``resume.run_in_segments``); ``progress`` is used on
    rank 0 only. The summary counts the whole job on rank 0.

    The output appears only when complete: it is written to a hidden temporary file beside
    ``dst`` and renamed at the end; on any error or interruption the temporary file is removed
    and ``dst`` is untouched. Raises ``StvsrError`` subclasses with one-line messages.

    With ``options.resume`` the job runs in segments (see ``resume.run_in_segments``): an
    interrupted run keeps its finished segments, and running it again continues from there.
    """
    from .weights import load_model, resolve_weights

    options = options or UpscaleOptions()
    src, dst = Path(src), Path(dst)
    if options.mode not in MODES:
        raise UsageError(f"unknown mode {options.mode!r}; choose {', '.join(MODES)}")
    if options.size is not None:
        check_size(options.size)
    if options.fps is not None:
        if options.mode == "space":
            raise UsageError("--fps makes new frames: it does not go with --mode space")
        if options.multi != 2:
            raise UsageError("--fps and --multi both set the frame rate: give one of them")
    options = replace(options, encode=options.encode.for_output(dst))
    check_output_path(src, dst, options.overwrite, options.encode)
    if options.resume and is_pattern(dst):
        raise UsageError("--resume keeps video segments: write pictures without it, or a video file with it")
    if options.resume and not segment_format_holds(options.encode.codec):
        raise OutputError(f"--resume cannot keep segments encoded with {options.encode.codec}; choose another codec")
    info = probe_pictures(src, options.input_fps) if is_image_sequence_input(src) else probe(src)
    if ranks is not None:
        if is_pattern(dst):
            raise UsageError("under torchrun the output is joined from segments: write a video file, not pictures")
        options = replace(options, resume=True)
        if not ranks.main:
            progress = None
    device = ranks.device(options.device) if ranks is not None else resolve_device(options.device)
    resolve_dtype(options.precision, device)
    model = load_model(options.model)
    if options.mid_from is not None:
        if options.mid_from not in MID_FROM:
            raise UsageError(f"unknown --mid-from {options.mid_from!r}; choose {', '.join(MID_FROM)}")
        model.config = replace(model.config, mid_from=options.mid_from)
    o = options
    upscaler = Upscaler(model, device, o.precision, o.batch, o.mode, o.scene_threshold, o.tile, o.multi)
    if o.fps is not None and o.mode != "space" and not getattr(model.temporal, "takes_timestep", False):
        raise UsageError(
            f"--fps needs frames at any time between two inputs, and this model's temporal network "
            f"({model.config.temporal}) makes only the frame halfway: use the default model"
        )
    if o.compile not in COMPILE_MODES:
        raise UsageError(f"unknown --compile {o.compile!r}; choose {', '.join(COMPILE_MODES)}")
    job = Job(src, dst, info, options, upscaler, progress)
    frames = min(info.frames, o.max_frames) if o.max_frames else info.frames
    tiled = bool(upscaler._tile_size(info.height, info.width))
    if should_compile(o.compile, upscaler.device, frames, tiled, o.batch):
        compile_networks(upscaler.model, job.warnings.append)
        upscaler.compiled = True
    for stream in info.uncopied_streams:
        job.warnings.append(f"dropped {stream}: only the first video stream is upscaled, with audio and subtitles")
    if info.has_alpha:
        job.warnings.append(f"the input's alpha channel ({info.pix_fmt}) is dropped: the output is opaque")
    if is_pattern(dst) and (info.audio_streams or info.subtitle_streams):
        job.warnings.append("the input's audio and subtitles are not written: an image sequence holds pictures only")
    start = time.perf_counter()
    with _StopSignals():
        if ranks is not None:
            with process_group(device):
                n_in, n_out = run_in_segments(job, ranks)
        else:
            n_in, n_out = run_in_segments(job) if options.resume else run_whole(job)
    return Summary(
        n_in,
        n_out,
        time.perf_counter() - start,
        (info.width, info.height),
        job.out_size,
        str(device),
        upscaler.scene_cuts,
        job.warnings,
        upscaler.precision,
        input=str(src),
        output=str(dst),
        model=str(resolve_weights(options.model)),
        mode=options.mode,
        input_rate=Fraction(info.rate),
        output_rate=job.output_rate,
        segments=job.segments,
    )
