"""The whole job on files: probe, model, decode, upscale, encode, stream copy, atomic output
(``upscale_video``, what the CLI calls), and the checks made before any work starts.

The frames-only pipeline is ``stvsr_cli.upscaler.Upscaler``; options and the summary are in
``stvsr_cli.options``. Both are importable from here too.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from .compiling import COMPILE_MODES, compile_networks, should_compile
from .distributed import Ranks, process_group
from .errors import Interrupted, OutputError, Terminated, UsageError
from .images import check_picture_output, is_image_sequence_input, is_pattern, probe_pictures
from .jobs import Job, run_whole
from .names import MODES
from .nets.dual_stream import MID_FROM
from .options import Summary, UpscaleOptions, check_size, parse_size
from .resume import run_in_segments
from .upscaler import Upscaler, precision_name, resolve_device, resolve_dtype
from .video import EncodeSettings, probe, segment_format_holds

# the library API, importable from here as before the split
__all__ = [
    "Summary",
    "UpscaleOptions",
    "Upscaler",
    "check_output_path",
    "parse_size",
    "precision_name",
    "resolve_device",
    "resolve_dtype",
    "upscale_video",
]

LOSSLESS_CONTAINERS = {".mkv", ".nut", ".avi", ".mov"}
# outputs that name pictures, not a video: a printf pattern (out/%05d.png) or an image file
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".exr", ".dpx"}


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
    if should_compile(o.compile):
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
